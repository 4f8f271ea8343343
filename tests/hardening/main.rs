//! Hostile connections against the real `agentmessage serve` process, in their own test binary so
//! that hundreds of sockets neither disturb nor are disturbed by the rest of the suite. Loopback
//! only, bounded in count and time.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_agentmessage");
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// `agentmessage serve --demo` on a free port, optionally under a descriptor limit; its log lines
/// are collected.
struct Served {
    child: Child,
    addr: String,
    key: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(nofile: Option<u64>) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .args(["serve", "--demo", "--no-worker", "--listen", &addr])
            .arg("--database-url")
            .arg(format!("sqlite://{}/hardening.db", dir.path().display()))
            .args(["--header-read-timeout", "2s", "--idle-timeout", "3s"])
            // These tests hold the whole server's connections from one address; the per-address
            // cap has its own test (tests/http/requests.rs).
            .args(["--max-connections-per-address", "4096"])
            .env("AGENTMESSAGE_LOG", "info")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts (prlimit comes with util-linux)");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut key = String::new();
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(k) = line.split_whitespace().find(|w| w.starts_with("am_live_")) {
                key = k
                    .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .to_owned();
            }
            if line.contains("API reference:") {
                break;
            }
        }
        assert!(key.starts_with("am_live_"), "no demo key printed");
        let started = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Served {
            child,
            addr,
            key,
            log,
            _dir: dir,
        }
    }

    /// CPU seconds the server process has used.
    fn cpu_seconds(&self) -> f64 {
        let pid = self.server_pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// The server's own pid (prlimit execs it, so it is the child's).
    fn server_pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the seed example; the status and how long it took.
    fn send(&self) -> (u16, Duration) {
        let body =
            r#"{"from": "+15551112222", "to": "+15554443333", "text": "hello from agentmessage"}"#;
        let started = Instant::now();
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.key,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, started.elapsed())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `n` connections that each send half a request line.
fn half_requests(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(addr).ok()?;
            let _ = stream.write_all(b"POST /v1/mess");
            Some(stream)
        })
        .collect()
}

/// Opens `n` kept-alive connections, each after one answered request.
fn idle_keep_alives(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(addr).ok()?;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).ok()?;
            (n > 0).then_some(stream)
        })
        .collect()
}

/// How many of `streams` the server has closed (a read sees the end).
fn closed(streams: &mut [TcpStream]) -> usize {
    streams
        .iter_mut()
        .filter(|s| {
            let mut s: &TcpStream = s;
            let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                    Err(_) => return false,
                }
            }
        })
        .count()
}

#[test]
fn stalled_and_idle_connections_neither_lock_clients_out_nor_burn_the_cpu() {
    agentmessage::server::raise_descriptor_limit().unwrap();
    let served = Served::start(None);
    // The server raised its soft descriptor limit to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", served.server_pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit not raised: {open_files}"
    );

    let mut stalled = half_requests(&served.addr, 500);
    let mut idle = idle_keep_alives(&served.addr, 200);
    assert_eq!((stalled.len(), idle.len()), (500, 200));
    let cpu_before = served.cpu_seconds();
    let (status, took) = served.send();
    assert_eq!(status, 202);
    assert!(took < Duration::from_secs(2), "a normal send took {took:?}");
    std::thread::sleep(Duration::from_secs(1));
    let cpu = served.cpu_seconds() - cpu_before;
    assert!(cpu < 0.5, "the server used {cpu:.2} s of CPU while waiting");

    // Every stalled connection is closed within the header timeout, idle ones within theirs.
    std::thread::sleep(HEADER_TIMEOUT + Duration::from_millis(500));
    assert_eq!(closed(&mut stalled), 500, "stalled connections still open");
    std::thread::sleep(IDLE_TIMEOUT.saturating_sub(HEADER_TIMEOUT));
    assert_eq!(closed(&mut idle), 200, "idle connections still open");
}

#[test]
fn out_of_descriptors_the_server_backs_off_logs_and_recovers() {
    let served = Served::start(Some(256));
    let _stalled = half_requests(&served.addr, 500);
    let cpu_before = served.cpu_seconds();
    std::thread::sleep(Duration::from_secs(1));
    let cpu = served.cpu_seconds() - cpu_before;
    assert!(
        cpu < 0.5,
        "the server used {cpu:.2} s of CPU while out of descriptors"
    );
    // A normal client is answered once the stalled connections time out.
    let (status, took) = served.send();
    assert_eq!(status, 202);
    assert!(
        took < HEADER_TIMEOUT + Duration::from_secs(5),
        "the send took {took:?}"
    );
    let log = served.log.lock().unwrap().join("\n");
    assert!(
        log.contains("cannot accept connections"),
        "the shortage was not logged:\n{log}"
    );
}
