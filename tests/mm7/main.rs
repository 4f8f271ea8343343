//! MMS over MM7 end to end: the app with its worker submitting MMS to an MMS centre — the
//! test MMSC of `tests/tools/mmsc.py`, written from 3GPP TS 23.140's tables with Python's
//! standard library, which checks every SubmitReq field by field and answers as scripted — and
//! the MMSC's requests to `POST /v1/carrier/mm7` (fixtures shaped as MMSC vendors document
//! them). In its own test binary: the MMSC is a process of its own, and the kill -9 test runs
//! the real server.

#[allow(dead_code, unused_macros, unused_imports)]
#[macro_use]
#[path = "../http/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "../common/child.rs"]
mod child;
#[allow(dead_code)]
#[path = "../common/deployment.rs"]
mod deployment;
#[path = "../common/noise.rs"]
mod noise;
#[allow(dead_code)]
#[path = "../common/tools.rs"]
mod tools;

mod inbound;
mod kill;
mod submit;
mod tls;

use std::{process::Stdio, sync::Arc, time::Duration};

use agentmessage::{
    delivery::{Mm7Carrier, Mm7Settings, SimulatedCarrier, Worker, WorkerSettings},
    service::{MediaRules, Mm7Inbound, Settings},
};
use poem::{
    handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Path,
    Response, Route,
};
use serde_json::Value;
use sha2::Digest;
use support::{json, Backend, Org, TestApp};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

pub const FROM: &str = "+15551112222";
pub const TO: &str = "+15554443333";
pub const VASP: &str = "agentmessage-vasp";
/// The MMSC's credentials towards this server (`POST /v1/carrier/mm7`).
pub const INBOUND_USER: &str = "mmsc";
pub const INBOUND_PASSWORD: &str = "mmsc-inbound-secret";
/// This server's credentials towards the MMSC.
pub const OUTBOUND_USER: &str = "vasp";
pub const OUTBOUND_PASSWORD: &str = "vasp-secret";
/// The size cap of these tests' MMS.
pub const CAP: u64 = 64 * 1024;

/// The test MMSC: its reports, and its stdin for scripted answers.
pub struct Mmsc {
    pub port: u16,
    /// Whether it speaks TLS.
    pub tls: bool,
    reports: mpsc::UnboundedReceiver<Value>,
    /// Every submission reported so far.
    pub submissions: Vec<Value>,
    child: Child,
}

impl Mmsc {
    pub async fn start() -> Mmsc {
        Mmsc::start_with(&[]).await
    }

    /// An MMSC started with `args` besides the credentials (`--tls-cert`, `--tls-key`).
    pub async fn start_with(args: &[&str]) -> Mmsc {
        let python = tools::tool_dir("python").join("python");
        let mut child = Command::new(python)
            .arg(tools::repo().join("tests/tools/mmsc.py"))
            .args(["--username", OUTBOUND_USER, "--password", OUTBOUND_PASSWORD])
            .args(["--vasp-id", VASP])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs tests/tools/mmsc.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "unreadable", "line": line}));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut mmsc = Mmsc {
            port: 0,
            tls: args.contains(&"--tls-cert"),
            reports,
            submissions: Vec::new(),
            child,
        };
        let listening = mmsc.next("listening").await;
        mmsc.port = listening["port"].as_u64().unwrap() as u16;
        mmsc
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/mm7", self.port)
    }

    /// The next report of `event` (submissions are kept as they pass).
    pub async fn next(&mut self, event: &str) -> Value {
        let wait = async {
            loop {
                let report = self.reports.recv().await.expect("the MMSC is running");
                assert_ne!(report["event"], json!("unreadable"), "{report}");
                assert_ne!(report["event"], json!("unauthorized"), "{report}");
                if report["event"] == json!("submit") {
                    self.submissions.push(report.clone());
                }
                if report["event"] == json!(event) {
                    return report;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no {event} from the MMSC"))
    }

    /// Reads every report already written, without waiting.
    pub fn drain(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            if report["event"] == json!("submit") {
                self.submissions.push(report);
            }
        }
    }

    /// The next submission; asserts the MMSC found nothing wrong with it.
    pub async fn next_submission(&mut self) -> Value {
        let report = self.next("submit").await;
        assert_eq!(report["problems"], json!([]), "{report:#}");
        report
    }

    /// Scripts the answers to the next submissions.
    pub async fn answer(&mut self, answers: &[&str]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        let line = format!("{}\n", json!({ "answers": answers }));
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        self.next("scripted").await;
    }

    /// How many submissions carried message `id` (its TransactionID is `am-<id, simple>`).
    pub fn times_submitted(&self, id: &str) -> usize {
        let tid = format!("am-{}", id.replace('-', ""));
        self.submissions
            .iter()
            .filter(|s| s["transaction_id"] == json!(tid))
            .count()
    }
}

/// The media server: two pictures, a page, a large document, a large photo.
#[handler]
async fn media_file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "cat.png" => Response::builder().content_type("image/png").body(cat()),
        "dog.jpg" => Response::builder().content_type("image/jpeg").body(dog()),
        "page.html" => Response::builder()
            .content_type("text/html")
            .body("<html></html>"),
        "big.pdf" => Response::builder()
            .content_type("application/pdf")
            .body(vec![b'%'; 100 * 1024]),
        "photo.png" => Response::builder()
            .content_type("image/png")
            .body(crate::noise::noise_png().to_vec()),
        _ => Response::builder().status(StatusCode::NOT_FOUND).finish(),
    }
}

/// A small PNG's bytes (any bytes: they are not decoded within the cap).
pub fn cat() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10];
    bytes.extend((0..=255u8).cycle().take(3000));
    bytes
}

/// A small JPEG's bytes, with every byte value and CR LF pairs in it.
pub fn dog() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, b'\r', b'\n', b'-', b'-'];
    bytes.extend((0..=255u8).rev().cycle().take(5000));
    bytes
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

pub async fn media_server() -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(
        poem::Server::new_with_acceptor(acceptor).run(Route::new().at("/:name", media_file)),
    );
    format!("http://{addr}")
}

/// The MM7 carrier's settings for `mmsc`, with short timers.
pub fn mm7_settings(mmsc: &Mmsc) -> Mm7Settings {
    let mut settings = Mm7Settings::new(mmsc.url());
    settings.username = OUTBOUND_USER.into();
    settings.password = OUTBOUND_PASSWORD.into();
    settings.vasp_id = VASP.into();
    settings.vas_id = "alerts".into();
    settings.service_code = "svc-42".into();
    settings.timeout = Duration::from_secs(1);
    settings.concurrency = 4;
    settings
}

/// The rules of these tests: media on this host over plain http, a 64 KiB cap, and the MMSC's
/// credentials for `/v1/carrier/mm7`.
pub fn mm7_rules() -> Settings {
    Settings {
        mms_supported: true,
        media: MediaRules {
            allow_http: true,
            allow_private: true,
            max_bytes: CAP,
            fetch_timeout: Duration::from_secs(5),
        },
        mm7_inbound: Some(Mm7Inbound {
            username: INBOUND_USER.into(),
            password: INBOUND_PASSWORD.into(),
            version: "6.8.0".into(),
            carrier_name: "mm7".into(),
        }),
        ..Settings::default()
    }
}

/// An app whose live MMS go to the MM7 carrier (SMS and test mode to the simulated one), its
/// media server, an organization sending from `FROM` to `TO`, and the worker.
pub struct Mm7App {
    pub app: TestApp,
    pub media: String,
    pub org: Org,
    _worker: support::RunningWorker,
}

impl Mm7App {
    pub async fn start(backend: Backend, mmsc: &Mmsc) -> Mm7App {
        Mm7App::start_with(backend, mm7_settings(mmsc)).await
    }

    /// An app whose MM7 carrier has `mm7` settings.
    pub async fn start_with(backend: Backend, mm7: Mm7Settings) -> Mm7App {
        let app = TestApp::start_with(backend, mm7_rules()).await;
        let media = media_server().await;
        let org = app.sender(FROM, TO).await;
        let settings = WorkerSettings {
            poll: Duration::from_millis(20),
            sweep_every: Duration::from_millis(100),
            retry_backoff: Duration::from_millis(200),
            ..Default::default()
        };
        let mm7 =
            Mm7Carrier::new(app.services.clone(), "mm7", mm7).expect("the MM7 settings are usable");
        let sms = Arc::new(SimulatedCarrier::new(
            app.services.clone(),
            Duration::from_millis(50),
        ));
        let worker =
            Worker::new(app.services.clone(), sms, settings).with_mms_carrier(Arc::new(mm7));
        let worker = support::RunningWorker::spawn(worker);
        Mm7App {
            app,
            media,
            org,
            _worker: worker,
        }
    }

    /// Sends an MMS with `text` and the media named (from the media server); its id.
    pub async fn send_mms(&self, text: &str, media: &[&str]) -> String {
        let urls: Vec<String> = media
            .iter()
            .map(|name| format!("{}/{name}", self.media))
            .collect();
        let reply = self
            .app
            .send(
                &self.org.key,
                json!({"from": FROM, "to": TO, "text": text, "media_urls": urls}),
            )
            .await;
        reply.assert_success(202)["id"].as_str().unwrap().to_owned()
    }

    /// Waits until message `id` is `status`-like; its data.
    pub async fn wait(&self, id: &str, done: impl Fn(&str) -> bool) -> Value {
        self.app
            .wait_for(&self.org.key, id, Duration::from_secs(20), done)
            .await
    }

    /// The message's events as (kind, status, err, note).
    pub async fn events(&self, id: &str) -> Vec<Value> {
        let reply = self
            .app
            .call(
                reqwest::Method::GET,
                &format!("/v1/messages/{id}/events?limit=100"),
                Some(&self.org.key),
                None,
            )
            .await;
        reply.assert_success(200).as_array().unwrap().clone()
    }

    /// Posts an MM7 request as the MMSC does, with its credentials; status and body.
    pub async fn mmsc_post(&self, content_type: &str, body: Vec<u8>) -> (u16, String) {
        mmsc_post(
            &self.app,
            content_type,
            body,
            INBOUND_USER,
            INBOUND_PASSWORD,
        )
        .await
    }
}

/// Posts `body` to `/v1/carrier/mm7` with HTTP Basic `user:password`.
pub async fn mmsc_post(
    app: &TestApp,
    content_type: &str,
    body: Vec<u8>,
    user: &str,
    password: &str,
) -> (u16, String) {
    let response = app
        .client
        .post(format!("{}/v1/carrier/mm7", app.base))
        .basic_auth(user, Some(password))
        .header("content-type", content_type)
        .header("soapaction", "\"\"")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    if status != 413 {
        assert_eq!(
            content_type.as_deref(),
            Some("text/xml; charset=utf-8"),
            "{status} {text}"
        );
    }
    (status, text)
}

/// The MM7 StatusCode in a response or fault.
pub fn status_code(xml: &str) -> u32 {
    let start = xml.find("<StatusCode>").expect("a StatusCode") + "<StatusCode>".len();
    let end = xml[start..].find('<').unwrap() + start;
    xml[start..end].parse().unwrap()
}

/// A fixture of `tests/mm7/fixtures`, its placeholders filled.
pub fn fixture(name: &str, fill: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(tools::repo().join("tests/mm7/fixtures").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (key, value) in fill {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    // The fixtures are written with LF; MIME and HTTP have CRLF.
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}
