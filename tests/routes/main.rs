//! Named carrier connections and routes, end to end: the real server (and a second worker
//! process) started with a configuration file of `[connections]` and `[[routes]]`, over two
//! SMSCs of the `smpp` npm package (`tests/tools/smsc.js`, an implementation this project did
//! not write); counted at the SMSCs, not in our own records. Messages split by prefix as routed
//! (the longest prefix wins), a stopped SMSC's traffic moves to the next connection of the route
//! and comes back when it returns, and a connection's throughput holds across two workers. In
//! its own test binary: its timing measurements want the machine to themselves.

#[path = "../common/child.rs"]
mod child;
#[path = "../common/deployment.rs"]
mod deployment;
#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../http/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;
#[path = "../common/tools.rs"]
#[allow(dead_code)]
mod tools;

use std::{
    io::BufRead,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use deployment::{free_port, up, BIN};

/// One test at a time: they measure time.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const FROM: &str = "+15551112222";

/// A `submit_sm` as the SMSC reported it, and when it arrived.
#[derive(Clone, Debug)]
struct Submitted {
    to: String,
    text: String,
    at: Instant,
}

/// The `smpp` npm package's SMSC on `port` (0: any free one), recording every submit_sm.
struct Smsc {
    port: u16,
    submitted: Arc<Mutex<Vec<Submitted>>>,
    child: Option<child::Reaped>,
    /// How many times it was started.
    runs: u32,
}

impl Smsc {
    fn start(port: u16) -> Smsc {
        let submitted = Arc::default();
        let mut smsc = Smsc {
            port,
            submitted,
            child: None,
            runs: 0,
        };
        smsc.run();
        smsc
    }

    /// Starts (again) on its port, handing out ids it did not hand out before; what it saw
    /// before is kept.
    fn run(&mut self) {
        let first_id = 0x1000 + 0x10000 * self.runs;
        self.runs += 1;
        let dir = tools::tool_dir("node")
            .parent()
            .and_then(|p| p.parent())
            .expect("tests/tools")
            .to_owned();
        let mut child = child::Reaped(
            Command::new("node")
                .args(["smsc.js", &self.port.to_string()])
                .args(["--first-id", &first_id.to_string()])
                .current_dir(dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("node runs tests/tools/smsc.js"),
        );
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["event"], "listening", "{first}");
        self.port = first["port"].as_u64().unwrap() as u16;
        let record = self.submitted.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let report: Value = serde_json::from_str(&line).unwrap_or_default();
                if report["event"] == "submit_sm" {
                    record.lock().unwrap().push(Submitted {
                        to: report["destination_addr"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        text: report["message"].as_str().unwrap_or_default().to_owned(),
                        at: Instant::now(),
                    });
                }
            }
        });
        self.child = Some(child);
    }

    /// Stops it as a crashed SMSC stops: its sessions drop.
    fn stop(&mut self) {
        self.child = None;
    }

    fn texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = self
            .submitted
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.text.clone())
            .collect();
        texts.sort();
        texts
    }

    fn submitted(&self) -> Vec<Submitted> {
        self.submitted.lock().unwrap().clone()
    }
}

/// A configuration file in `dir` with `body`; its path.
fn config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("agentmessage.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// An SMPP connection's table to the SMSC on `port`.
fn smpp_connection(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[connections.{name}]\nkind = \"smpp\"\naddress = \"127.0.0.1:{port}\"\nsystem_id = \"agentmessage\"\n{extra}\n"
    )
}

/// Short timers for every connection (they inherit the single-carrier settings).
const QUICK: [&str; 16] = [
    "--smpp-reconnect-min",
    "50ms",
    "--smpp-reconnect-max",
    "200ms",
    "--smpp-enquire-link",
    "1s",
    "--smpp-response-timeout",
    "2s",
    "--poll",
    "20ms",
    "--sweep-every",
    "100ms",
    "--lease",
    "2s",
    "--retry-backoff",
    "200ms",
];

/// `agentmessage COMMAND` with the file at `path`, short timers and `args`; its ops address.
fn start(command: &str, url: &str, path: &Path, args: &[&str]) -> (child::Reaped, String) {
    let ops = free_port();
    let child = child::Reaped(
        Command::new(BIN)
            .args([command, "--config", path.to_str().unwrap()])
            .args(["--ops-listen", &format!("127.0.0.1:{ops}")])
            .args(["--database-url", url])
            .args(QUICK)
            .args(args)
            .env("AGENTMESSAGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (child, format!("http://127.0.0.1:{ops}"))
}

/// `agentmessage serve` (its worker too) with the file at `path`; its API and ops addresses.
fn serve(url: &str, path: &Path, args: &[&str]) -> (child::Reaped, String, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--listen", &listen];
    all.extend_from_slice(args);
    let (child, ops) = start("serve", url, path, &all);
    (child, format!("http://{listen}"), ops)
}

/// `agentmessage worker` with the file at `path`; its ops address.
fn worker(url: &str, path: &Path, args: &[&str]) -> (child::Reaped, String) {
    start("worker", url, path, args)
}

struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn opt_in(&self, number: &str) {
        let answer = self
            .client
            .put(format!("{}/v1/consents/{number}", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"source": "api"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "the opt-in of {number}");
    }

    /// Sends `text` to `to`; the message id.
    async fn send(&self, to: &str, text: &str) -> String {
        let answer = self
            .client
            .post(format!("{}/v1/messages", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"from": FROM, "to": to, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
        let body: Value = answer.json().await.unwrap();
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> Value {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.json::<Value>().await.unwrap()["data"].clone()
    }

    /// Waits until message `id` is `status`.
    async fn wait_for(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let message = self.get(&format!("/v1/messages/{id}")).await;
            if message["status"] == status {
                return;
            }
            if Instant::now() >= deadline {
                let events = self.get(&format!("/v1/messages/{id}/events")).await;
                panic!(
                    "message {id} is {} and not {status}: {message}\n{events}",
                    message["status"]
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The connection each of message `id`'s events names: the carrier's answer's (its `sent`
    /// transition) and its receipt's.
    async fn connections_of(&self, id: &str) -> (Value, Value) {
        let events = self.get(&format!("/v1/messages/{id}/events")).await;
        let events = events.as_array().unwrap();
        let sent = events
            .iter()
            .find(|e| e["status"] == "sent")
            .map(|e| e["connection"].clone())
            .unwrap_or(Value::Null);
        let receipt = events
            .iter()
            .find(|e| e["kind"] == "receipt")
            .map(|e| e["connection"].clone())
            .unwrap_or(Value::Null);
        (sent, receipt)
    }
}

/// The server up at `base` with the deployment's key.
async fn api(base: String, key: String) -> Api {
    let client = reqwest::Client::new();
    up(&client, &base).await;
    Api { client, base, key }
}

/// `/readyz` of the ops listener at `ops` (null while it does not answer yet).
async fn readyz(ops: &str) -> Value {
    match reqwest::get(format!("{ops}/readyz")).await {
        Ok(answer) => answer.json().await.unwrap(),
        Err(_) => Value::Null,
    }
}

/// Waits until `/readyz` at `ops` shows connection `name` in `state`.
async fn wait_state(ops: &str, name: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = readyz(ops).await;
        if ready["checks"]["connections"][name]["state"] == state {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "connection {name} is not {state}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn set_up(url: &str) -> String {
    deployment::set_up(
        url,
        "messages:send,messages:read,consents:read,consents:write",
        FROM,
    )
}

/// Messages to +44 go to `uk`, except those to +4420 (a longer prefix) and every other
/// recipient, which go to `rest`; each message's events name the connection.
async fn messages_split_by_prefix_as_routed(url: String) {
    let (uk_smsc, rest_smsc) = (Smsc::start(0), Smsc::start(0));
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "{}{}\
         [[routes]]\nchannel = \"sms\"\nprefix = \"+44\"\nconnections = [\"uk\"]\n\n\
         [[routes]]\nchannel = \"sms\"\nprefix = \"4420\"\nconnections = [\"rest\"]\n\n\
         [[routes]]\nchannel = \"sms\"\nconnections = [\"rest\"]\n",
        smpp_connection("uk", uk_smsc.port, "binds = 2"),
        smpp_connection("rest", rest_smsc.port, "window = 5"),
    );
    let path = config(dir.path(), &file);
    let key = set_up(&url);
    let (_server, base, ops) = serve(&url, &path, &[]);
    let api = api(base, key).await;
    let (uk, london, us) = ("+447700900123", "+442071234567", "+12125550100");
    for number in [uk, london, us] {
        api.opt_in(number).await;
    }
    let mut sent = Vec::new();
    for i in 0..6 {
        for (to, label) in [(uk, "uk"), (london, "london"), (us, "us")] {
            let text = format!("{label} {i}");
            sent.push((api.send(to, &text).await, label, text));
        }
    }
    for (id, _, _) in &sent {
        api.wait_for(id, "delivered").await;
    }
    let expect = |labels: &[&str]| {
        let mut texts: Vec<String> = sent
            .iter()
            .filter(|(_, l, _)| labels.contains(l))
            .map(|(_, _, t)| t.clone())
            .collect();
        texts.sort();
        texts
    };
    assert_eq!(uk_smsc.texts(), expect(&["uk"]), "the +44 SMSC's messages");
    assert_eq!(
        rest_smsc.texts(),
        expect(&["london", "us"]),
        "the other SMSC's messages (+4420 is routed apart from +44)"
    );
    assert!(uk_smsc.submitted().iter().all(|s| s.to == "447700900123"));
    for (id, label, _) in &sent {
        let connection = if *label == "uk" { "uk" } else { "rest" };
        assert_eq!(
            api.connections_of(id).await,
            (json!(connection), json!(connection)),
            "the events of the {label} message {id}"
        );
    }
    let ready = readyz(&ops).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["checks"]["connections"]["uk"]["bound"], 2, "{ready}");
    assert_eq!(
        ready["checks"]["connections"]["rest"]["state"], "bound",
        "{ready}"
    );
    let metrics = reqwest::get(format!("{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "agentmessage_connection_sessions_bound{connection=\"uk\"} 2",
        "agentmessage_connection_state{connection=\"rest\",state=\"bound\"} 1",
        "agentmessage_carrier_submits_total{connection=\"uk\",result=\"accepted\"} 6",
        "agentmessage_carrier_submits_total{connection=\"rest\",result=\"accepted\"} 12",
    ] {
        assert!(metrics.lines().any(|l| l == line), "/metrics shows {line}");
    }
}

/// A route of two connections: its traffic goes to the first; with the first's SMSC stopped
/// for longer than `--failover-after`, to the second; when the first binds again, back to it.
/// Nothing is lost on the way.
async fn a_stopped_connection_fails_over_and_comes_back(url: String) {
    let mut primary_smsc = Smsc::start(free_port());
    let backup_smsc = Smsc::start(0);
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "{}{}\
         [[routes]]\nchannel = \"sms\"\nconnections = [\"primary\", \"backup\"]\n",
        smpp_connection("primary", primary_smsc.port, ""),
        smpp_connection("backup", backup_smsc.port, ""),
    );
    let path = config(dir.path(), &file);
    let key = set_up(&url);
    let (_server, base, ops) = serve(&url, &path, &["--failover-after", "1s"]);
    let api = api(base, key).await;
    let to = "+12125550100";
    api.opt_in(to).await;
    wait_state(&ops, "primary", "bound").await;
    let round = |name: &'static str| {
        let api = &api;
        async move {
            let mut ids = Vec::new();
            for i in 0..5 {
                ids.push(api.send(to, &format!("{name} {i}")).await);
            }
            for id in &ids {
                api.wait_for(id, "delivered").await;
            }
            ids
        }
    };
    let before = round("before").await;
    primary_smsc.stop();
    let ready = wait_state(&ops, "primary", "passed_over").await;
    assert_eq!(
        ready["ready"], true,
        "the route still has a bound connection: {ready}"
    );
    let during = round("during").await;
    primary_smsc.run();
    wait_state(&ops, "primary", "bound").await;
    let after = round("after").await;
    let texts = |prefix: &str| -> Vec<String> { (0..5).map(|i| format!("{prefix} {i}")).collect() };
    let at_primary = primary_smsc.texts();
    let at_backup = backup_smsc.texts();
    let of = |seen: &[String], prefix: &str| -> Vec<String> {
        seen.iter()
            .filter(|t| t.starts_with(&format!("{prefix} ")))
            .cloned()
            .collect()
    };
    assert_eq!(
        (of(&at_primary, "before"), of(&at_backup, "before")),
        (texts("before"), vec![]),
        "before the stop: the first connection"
    );
    assert_eq!(
        (of(&at_primary, "during"), of(&at_backup, "during")),
        (vec![], texts("during")),
        "while it is passed over: the next one"
    );
    assert_eq!(
        (of(&at_primary, "after"), of(&at_backup, "after")),
        (texts("after"), vec![]),
        "once it binds again: the first one again"
    );
    for (ids, connection) in [
        (&before, "primary"),
        (&during, "backup"),
        (&after, "primary"),
    ] {
        for id in ids {
            assert_eq!(api.connections_of(id).await.0, json!(connection));
        }
    }
    let metrics = reqwest::get(format!("{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "agentmessage_connection_failovers_total{connection=\"primary\"} 1"),
        "/metrics counts the failover"
    );
}

async fn alone_on_sqlite_then_postgresql<F, Fut>(run: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    run(format!("sqlite://{}/routes.db", dir.path().display())).await;
    run(support::fresh_postgres_database().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_split_by_prefix_as_routed_on_sqlite_then_postgresql() {
    alone_on_sqlite_then_postgresql(messages_split_by_prefix_as_routed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_connection_fails_over_and_comes_back_on_sqlite_then_postgresql() {
    alone_on_sqlite_then_postgresql(a_stopped_connection_fails_over_and_comes_back).await;
}

/// A connection's `throughput` of 50 messages a second holds across two workers on PostgreSQL
/// (the server's and a second process, each with its own session): with a queue that never runs
/// dry, the SMSC counts 1,000 submit_sm ± 10 % over 20 seconds, and both workers submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_throughput_holds_across_two_workers_on_postgresql() {
    let _alone = ALONE.lock().await;
    let url = support::fresh_postgres_database().await;
    throughput_holds(url, true, Duration::from_secs(20)).await;
}

/// On SQLite, where one process keeps the rate itself: 500 ± 10 % over 10 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_throughput_holds_in_one_process_on_sqlite() {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/paced.db", dir.path().display());
    throughput_holds(url, false, Duration::from_secs(10)).await;
}

async fn throughput_holds(url: String, two_workers: bool, window: Duration) {
    const RATE: usize = 50;
    let smsc = Smsc::start(0);
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "{}[[routes]]\nchannel = \"sms\"\nconnections = [\"contracted\"]\n",
        smpp_connection("contracted", smsc.port, &format!("throughput = {RATE}")),
    );
    let path = config(dir.path(), &file);
    let key = set_up(&url);
    let (_server, base, server_ops) = serve(&url, &path, &[]);
    let api = api(base, key).await;
    let to = "+12125550100";
    api.opt_in(to).await;
    let mut workers = vec![server_ops];
    let _second = if two_workers {
        let (child, ops) = worker(&url, &path, &[]);
        wait_state(&ops, "contracted", "bound").await;
        workers.push(ops);
        Some(child)
    } else {
        None
    };
    // More than the window takes, queued faster than it drains.
    let total = RATE * (window.as_secs() as usize + 8);
    let queued = Instant::now();
    let sends = futures_util::future::join_all((0..8).map(|lane| {
        let api = &api;
        async move {
            for i in (lane..total).step_by(8) {
                api.send(to, &format!("paced {i}")).await;
            }
        }
    }));
    sends.await;
    let queued_in = queued.elapsed();
    // Measured from two seconds after the first submission.
    let first = loop {
        if let Some(first) = smsc.submitted().first().map(|s| s.at) {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let from = first + Duration::from_secs(2);
    let until = from + window;
    while Instant::now() < until + Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = smsc.submitted();
    let counted = seen.iter().filter(|s| s.at >= from && s.at < until).count();
    let expected = RATE * window.as_secs() as usize;
    println!(
        "throughput {RATE}/s, {} worker(s): {counted} submit_sm in {window:?} at the SMSC (expected {expected} ± 10 %); {total} queued in {queued_in:?}; {} submitted in all",
        workers.len(),
        seen.len()
    );
    assert!(
        seen.len() < total,
        "the queue ran dry before the window ended: {} of {total}",
        seen.len()
    );
    assert!(
        counted.abs_diff(expected) * 10 <= expected,
        "{counted} submit_sm in {window:?}, not {expected} ± 10 %"
    );
    // Every worker took its share.
    for ops in &workers {
        let metrics = reqwest::get(format!("{ops}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let accepted: f64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "agentmessage_carrier_submits_total{connection=\"contracted\",result=\"accepted\"} ",
                )
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(
            accepted >= (expected / 10) as f64,
            "the worker at {ops} submitted {accepted}: every worker submits through the connection"
        );
        assert!(
            metrics
                .lines()
                .any(|l| l
                    == "agentmessage_connection_throughput_limit{connection=\"contracted\"} 50")
        );
    }
}
