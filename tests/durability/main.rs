//! Durability under kill -9, in its own test binary (load; nothing else runs beside it): the real
//! server (with its worker, over SMPP to the `smpp` npm package's SMSC) is killed with SIGKILL
//! while clients send; after a restart on the same database every message it answered 202
//! exists and ends delivered (or failed as uncertain), and the SMSC — not the server's own
//! records — saw no message submitted twice and every delivered one submitted once; on SQLite
//! and on PostgreSQL. Also: a worker killed while holding a backlog strands no more than its SMPP
//! window, and inbound STOPs arriving across a kill are each applied exactly once.

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
    collections::HashMap,
    io::BufRead,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{json, Value};

use deployment::{free_port, up, BIN};

/// A migrated database with an organization, its key (send, read, consents) and its number
/// `+15551112222`; the key.
fn set_up(url: &str) -> String {
    deployment::set_up(
        url,
        "messages:send,messages:read,consents:read,consents:write",
        "+15551112222",
    )
}

/// The `smpp` npm package's SMSC (tests/tools/smsc.js) on a free port; counts every submit_sm by
/// its text. It outlives the server's kill, as a carrier would.
struct Smsc {
    port: u16,
    submitted: Arc<Mutex<HashMap<String, usize>>>,
    _child: child::Reaped,
}

impl Smsc {
    fn start() -> Smsc {
        Smsc::start_with(&[])
    }

    /// The SMSC with `args` besides its port (`--respond-after MS`: a slow SMSC).
    fn start_with(args: &[&str]) -> Smsc {
        let dir = tools::tool_dir("node")
            .parent()
            .and_then(|p| p.parent())
            .expect("tests/tools")
            .to_owned();
        let mut child = child::Reaped(
            Command::new("node")
                .args(["smsc.js", "0"])
                .args(args)
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
        let port = first["port"].as_u64().unwrap() as u16;
        let submitted: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counts = submitted.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let report: Value = serde_json::from_str(&line).unwrap_or_default();
                if report["event"] == "submit_sm" {
                    let text = report["message"].as_str().unwrap_or_default().to_owned();
                    *counts.lock().unwrap().entry(text).or_default() += 1;
                }
            }
        });
        Smsc {
            port,
            submitted,
            _child: child,
        }
    }

    /// How many submit_sm it has seen.
    fn total_submitted(&self) -> usize {
        self.submitted.lock().unwrap().values().sum()
    }

    fn times_submitted(&self, text: &str) -> usize {
        self.submitted
            .lock()
            .unwrap()
            .get(text)
            .copied()
            .unwrap_or(0)
    }
}

fn serve(url: &str, port: u16, smsc: &Smsc) -> child::Reaped {
    serve_with(url, port, smsc, &[])
}

/// The server with `args` besides those of [`serve`].
fn serve_with(url: &str, port: u16, smsc: &Smsc, args: &[&str]) -> child::Reaped {
    child::Reaped(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                url,
            ])
            .args([
                "--carrier",
                "smpp",
                "--smpp-address",
                &format!("127.0.0.1:{}", smsc.port),
            ])
            .args(["--lease", "2s"])
            .args(args)
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `GET url` with the key; the JSON answer.
async fn get(client: &reqwest::Client, key: &str, url: &str) -> Value {
    client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Records the opt-in of the recipient the tests send to, and checks it was recorded.
async fn opt_in(client: &reqwest::Client, base: &str, key: &str) {
    let opted_in = client
        .put(format!("{base}/v1/consents/+12125550100"))
        .bearer_auth(key)
        .json(&json!({"source": "api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opted_in.status(), 200, "the opt-in is recorded");
}

async fn nothing_answered_202_is_lost_and_nothing_is_submitted_twice(url: String) {
    let smsc = Smsc::start();
    let key = set_up(&url);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = serve(&url, port, &smsc);
    up(&client, &base).await;
    opt_in(&client, &base, &key).await;
    let accepted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for n in 0..16 {
        let (client, base, key, accepted) =
            (client.clone(), base.clone(), key.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let sent = client
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&key)
                    .json(&json!({"from": "+15551112222", "to": "+12125550100", "text": format!("durable {n}-{i}")}))
                    .send()
                    .await;
                // Once the server is killed, requests fail: this sender is done.
                let Ok(response) = sent else { return };
                if response.status() != 202 {
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else { return };
                let id = body["data"]["id"].as_str().unwrap().to_owned();
                let text = body["data"]["text"].as_str().unwrap().to_owned();
                accepted.lock().unwrap().push((id, text));
            }
        }));
    }
    // The kill comes while sends, submissions and receipts are all under way: after the first
    // 50 acceptances (however long the machine takes to get there) and a little more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 50 sends were answered 202 in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill().unwrap(); // SIGKILL
    let _ = server.wait();
    for sender in senders {
        sender.await.expect("a sender panicked");
    }
    let accepted = accepted.lock().unwrap().clone();
    let mut server = serve(&url, port, &smsc);
    up(&client, &base).await;
    // Every message answered 202 exists and reaches `delivered` (the lease of one the dead
    // worker held runs out, then it is attempted — once).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut delivered, mut uncertain) = (0, 0);
    for (id, text) in &accepted {
        loop {
            let shown = get(&client, &key, &format!("{base}/v1/messages/{id}")).await;
            assert_eq!(
                shown["success"], true,
                "message {id} answered 202 was lost: {shown}"
            );
            let status = shown["data"]["status"].as_str().unwrap().to_owned();
            let times = smsc.times_submitted(text);
            assert!(
                times <= 1,
                "message {id} ({status}) reached the SMSC {times} times"
            );
            if status == "delivered" || status == "failed" {
                // A part whose hand-over was cut by the kill is failed (SUBMISSION_UNCERTAIN),
                // never sent again.
                if status == "failed" {
                    assert_eq!(
                        shown["data"]["error_code"], "SUBMISSION_UNCERTAIN",
                        "{shown}"
                    );
                    assert!(times <= 1, "message {id} reached the SMSC {times} times");
                    uncertain += 1;
                } else {
                    assert_eq!(
                        times, 1,
                        "delivered message {id} reached the SMSC {times} times"
                    );
                    delivered += 1;
                }
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} stayed {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let events = get(
            &client,
            &key,
            &format!("{base}/v1/messages/{id}/events?limit=100"),
        )
        .await;
        let attempts = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "submission_attempt")
            .count();
        assert!(
            attempts <= 1,
            "message {id} was submitted {attempts} times: {events}"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    // Nothing the server never accepted reached the SMSC either.
    let known: std::collections::HashSet<&str> = accepted.iter().map(|(_, t)| t.as_str()).collect();
    let strays: Vec<String> = smsc
        .submitted
        .lock()
        .unwrap()
        .keys()
        .filter(|t| !known.contains(t.as_str()))
        .cloned()
        .collect();
    // A send cut by the kill after its commit (answered to no one) may still be submitted: only
    // this run's texts may appear, each at most once.
    for text in &strays {
        assert!(text.starts_with("durable "), "unknown submission {text:?}");
        assert_eq!(smsc.times_submitted(text), 1, "{text:?} submitted twice");
    }
    eprintln!(
        "{}: {} sends answered 202 before the kill; after the restart {delivered} delivered (each submitted once at the SMSC), {uncertain} failed as uncertain (at most once); {} committed but unanswered sends submitted once",
        url.split(':').next().unwrap(),
        accepted.len(),
        strays.len()
    );
}

/// A worker killed with -9 while it holds a claimed backlog behind a slow SMSC (window 10, one
/// session): at most the window's worth of messages end uncertain, every other one is
/// delivered (submitted once, at the SMSC's count), and none stays `sent`.
async fn a_killed_worker_strands_no_more_than_its_window(url: String) {
    const WINDOW: usize = 10;
    const BACKLOG: usize = 300;
    let smsc = Smsc::start_with(&["--respond-after", "100"]);
    let key = set_up(&url);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let window = WINDOW.to_string();
    let args = ["--smpp-window", window.as_str(), "--smpp-binds", "1"];
    let mut server = serve_with(&url, port, &smsc, &args);
    up(&client, &base).await;
    opt_in(&client, &base, &key).await;
    // The backlog: every send answered 202 before the kill; the worker claims them in batches
    // far larger than the window.
    let sends = (0..BACKLOG).map(|i| {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        async move {
            let text = format!("backlog {i}");
            let response = client
                .post(format!("{base}/v1/messages"))
                .bearer_auth(&key)
                .json(&json!({"from": "+15551112222", "to": "+12125550100", "text": text}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            let body: Value = response.json().await.unwrap();
            (body["data"]["id"].as_str().unwrap().to_owned(), text)
        }
    });
    let accepted: Vec<(String, String)> = futures_util::StreamExt::collect(
        futures_util::StreamExt::buffer_unordered(futures_util::stream::iter(sends), 16),
    )
    .await;
    // Killed once some of the backlog reached the SMSC, with most of it still waiting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while smsc.total_submitted() < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the SMSC saw fewer than 40 submissions in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap(); // SIGKILL
    let _ = server.wait();
    let at_kill = smsc.total_submitted();
    assert!(
        at_kill < BACKLOG / 2,
        "the backlog was mostly sent before the kill ({at_kill})"
    );
    let mut server = serve_with(&url, port, &smsc, &args);
    up(&client, &base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (mut delivered, mut uncertain) = (0, 0);
    for (id, text) in &accepted {
        loop {
            let shown = get(&client, &key, &format!("{base}/v1/messages/{id}")).await;
            let status = shown["data"]["status"].as_str().unwrap().to_owned();
            let times = smsc.times_submitted(text);
            assert!(
                times <= 1,
                "message {id} ({status}) reached the SMSC {times} times"
            );
            match status.as_str() {
                "delivered" => {
                    assert_eq!(
                        times, 1,
                        "delivered message {id} reached the SMSC {times} times"
                    );
                    delivered += 1;
                    break;
                }
                "failed" => {
                    assert_eq!(
                        shown["data"]["error_code"], "SUBMISSION_UNCERTAIN",
                        "{shown}"
                    );
                    uncertain += 1;
                    break;
                }
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} stayed {status} (submitted {times} times)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    eprintln!(
        "{}: a backlog of {BACKLOG} behind a window of {WINDOW}; {at_kill} submitted before the kill; after the restart {delivered} delivered, {uncertain} failed as uncertain",
        url.split(':').next().unwrap(),
    );
    assert_eq!(delivered + uncertain, BACKLOG);
    assert!(
        uncertain <= WINDOW,
        "{uncertain} messages were stranded as uncertain; the window held at most {WINDOW}"
    );
}

/// The server with the simulated carrier and a carrier secret (for `/v1/carrier/inbound`).
fn serve_simulated(url: &str, port: u16) -> child::Reaped {
    child::Reaped(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", url])
            .env("AGENTMESSAGE_CARRIER_SECRET", CARRIER_SECRET)
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

const CARRIER_SECRET: &str = "durability-carrier-secret";

/// The recipient `n` of the STOP stream.
fn stopper(n: usize) -> String {
    format!("+1212555{:04}", n)
}

/// The carrier delivers inbound STOP `n` (the same every time: a redelivery is identical); the
/// status it was answered with, or `None` when no answer came.
async fn deliver_stop(client: &reqwest::Client, base: &str, n: usize) -> Option<u16> {
    let sent = client
        .post(format!("{base}/v1/carrier/inbound"))
        .bearer_auth(CARRIER_SECRET)
        .json(&json!({"from": stopper(n), "to": "+15551112222", "text": "STOP", "carrier_message_id": format!("stop-{n}")}))
        .send()
        .await
        .ok()?;
    let status = sent.status().as_u16();
    sent.bytes().await.ok()?;
    Some(status)
}

/// A stream of inbound STOPs from distinct recipients, the server killed with -9 in the middle;
/// after a restart the carrier delivers again every STOP it had sent (as a carrier redelivers
/// what it has no answer for, and here also what was answered). Each STOP is then applied exactly
/// once: one inbound message, one keyword opt-out record, one keyword event, and the recipient
/// opted out and locked — whether the kill came before, during or after its transaction.
async fn every_inbound_stop_is_applied_exactly_once_across_a_kill(url: String) {
    let key = set_up(&url);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = serve_simulated(&url, port);
    up(&client, &base).await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered: Arc<Mutex<Vec<usize>>> = Arc::default();
    let mut carriers = Vec::new();
    for _ in 0..16 {
        let (client, base, next, answered) =
            (client.clone(), base.clone(), next.clone(), answered.clone());
        carriers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match deliver_stop(&client, &base, n).await {
                    Some(201) => answered.lock().unwrap().push(n),
                    Some(other) => panic!("STOP {n} answered {other}"),
                    // The server is gone: this carrier connection is done.
                    None => return,
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 100 STOPs answered in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL
    let _ = server.wait();
    for carrier in carriers {
        carrier.await.expect("a carrier connection panicked");
    }
    let sent = next.load(std::sync::atomic::Ordering::SeqCst);
    let answered_before = answered.lock().unwrap().len();
    let mut server = serve_simulated(&url, port);
    up(&client, &base).await;
    // Every STOP sent is delivered again: the unanswered ones for the first time as far as the
    // carrier knows, the answered ones as duplicates.
    for n in 0..sent {
        let status = deliver_stop(&client, &base, n).await;
        assert!(
            matches!(status, Some(200 | 201)),
            "redelivered STOP {n} answered {status:?}"
        );
    }
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let backend = sea_orm::ConnectionTrait::get_database_backend(&db);
    let count = |sql: String| {
        let db = db.clone();
        async move {
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &db,
                sea_orm::Statement::from_string(backend, sql),
            )
            .await
            .unwrap()
            .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    let per_sender = |table_sql: &str| format!("SELECT COUNT(*) AS n FROM ({table_sql}) AS t");
    // Recipients with other than exactly one inbound message, keyword opt-out and keyword event.
    let wrong_messages = count(per_sender(
        "SELECT from_number FROM messages WHERE direction = 'inbound' AND from_number LIKE '+1212555%'          GROUP BY from_number HAVING COUNT(*) <> 1",
    ))
    .await;
    let messages = count("SELECT COUNT(DISTINCT from_number) AS n FROM messages WHERE direction = 'inbound' AND from_number LIKE '+1212555%'".into()).await;
    let wrong_consents = count(per_sender(
        "SELECT phone_number FROM consents WHERE source = 'keyword' AND status = 'opted_out'          AND phone_number LIKE '+1212555%' GROUP BY phone_number HAVING COUNT(*) <> 1",
    ))
    .await;
    let consents = count("SELECT COUNT(DISTINCT phone_number) AS n FROM consents WHERE source = 'keyword' AND phone_number LIKE '+1212555%'".into()).await;
    let wrong_events = count(per_sender(
        "SELECT m.id FROM messages m LEFT JOIN message_events e ON e.message_id = m.id AND e.kind = 'keyword'          WHERE m.direction = 'inbound' AND m.from_number LIKE '+1212555%' GROUP BY m.id HAVING COUNT(e.message_id) <> 1",
    ))
    .await;
    eprintln!(
        "{}: {sent} STOPs sent, {answered_before} answered before the kill; after redelivery {messages} recipients with one inbound message, {consents} with one keyword opt-out",
        url.split(':').next().unwrap()
    );
    assert_eq!((wrong_messages, wrong_consents, wrong_events), (0, 0, 0));
    assert_eq!(messages as usize, sent, "every STOP sent is stored once");
    assert_eq!(
        consents as usize, sent,
        "every STOP sent opted its recipient out once"
    );
    for n in [0, sent / 2, sent - 1] {
        let shown = get(&client, &key, &format!("{base}/v1/consents/{}", stopper(n))).await;
        assert_eq!(shown["data"]["status"], "opted_out", "{shown}");
        assert_eq!(shown["data"]["locked"], true, "{shown}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// The load tests of this binary take turns: nothing else runs beside one.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `run` alone, on a fresh SQLite file, then on a fresh PostgreSQL database (never both at
/// once).
async fn alone_on_sqlite_then_postgresql<F, Fut>(run: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    run(format!("sqlite://{}/durability.db", dir.path().display())).await;
    run(support::fresh_postgres_database().await).await;
}

/// A worker process beside the server, over the same SMSC and database.
fn second_worker(url: &str, smsc: &Smsc) -> child::Reaped {
    child::Reaped(
        Command::new(BIN)
            .args(["worker", "--database-url", url])
            .args([
                "--carrier",
                "smpp",
                "--smpp-address",
                &format!("127.0.0.1:{}", smsc.port),
            ])
            .args(["--lease", "2s", "--sweep-every", "50ms", "--poll", "20ms"])
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Two workers (the server's and a second process) release scheduled messages as their times
/// come; the second is killed with -9 in the middle of the releases and started again. Every
/// message is released once: the SMSC — not our records — saw each delivered message once and
/// none twice, and none stays `scheduled`.
async fn every_scheduled_message_is_released_once_across_a_kill(url: String) {
    const MESSAGES: usize = 60;
    let smsc = Smsc::start();
    let key = set_up(&url);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let args = [
        "--schedule-min-lead",
        "1s",
        "--sweep-every",
        "50ms",
        "--poll",
        "20ms",
    ];
    let mut server = serve_with(&url, port, &smsc, &args);
    up(&client, &base).await;
    opt_in(&client, &base, &key).await;
    let mut worker = second_worker(&url, &smsc);
    // Their times spread over two seconds, starting two seconds from now.
    let start = chrono::Utc::now() + chrono::Duration::seconds(2);
    let mut accepted = Vec::new();
    for i in 0..MESSAGES {
        let at = start + chrono::Duration::milliseconds((i as i64) * 2000 / MESSAGES as i64);
        let text = format!("scheduled {i}");
        let response = client
            .post(format!("{base}/v1/messages"))
            .bearer_auth(&key)
            .json(&json!({"from": "+15551112222", "to": "+12125550100", "text": text, "send_at": at.to_rfc3339()}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["status"], "scheduled");
        accepted.push((body["data"]["id"].as_str().unwrap().to_owned(), text));
    }
    // Killed while the releases are under way, then started again.
    let until_middle = (start + chrono::Duration::seconds(1) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until_middle).await;
    worker.kill().unwrap(); // SIGKILL
    let _ = worker.wait();
    let at_kill = smsc.total_submitted();
    let mut worker = second_worker(&url, &smsc);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut delivered, mut uncertain) = (0, 0);
    for (id, text) in &accepted {
        loop {
            let shown = get(&client, &key, &format!("{base}/v1/messages/{id}")).await;
            let status = shown["data"]["status"].as_str().unwrap().to_owned();
            let times = smsc.times_submitted(text);
            assert!(
                times <= 1,
                "message {id} ({status}) reached the SMSC {times} times"
            );
            match status.as_str() {
                "delivered" => {
                    assert_eq!(
                        times, 1,
                        "delivered message {id} reached the SMSC {times} times"
                    );
                    delivered += 1;
                    break;
                }
                "failed" => {
                    assert_eq!(
                        shown["data"]["error_code"], "SUBMISSION_UNCERTAIN",
                        "{shown}"
                    );
                    uncertain += 1;
                    break;
                }
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} stayed {status} (submitted {times} times)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = server.kill();
    let _ = server.wait();
    eprintln!(
        "{}: {MESSAGES} scheduled over two seconds, two workers, one killed with -9 in the middle ({at_kill} submitted then); {delivered} delivered (each submitted once), {uncertain} failed as uncertain",
        url.split(':').next().unwrap(),
    );
    assert_eq!(delivered + uncertain, MESSAGES);
    assert!(delivered > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_messages_are_released_once_across_a_kill_on_sqlite_then_postgresql() {
    alone_on_sqlite_then_postgresql(every_scheduled_message_is_released_once_across_a_kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_on_sqlite_then_postgresql() {
    alone_on_sqlite_then_postgresql(nothing_answered_202_is_lost_and_nothing_is_submitted_twice)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_strands_no_more_than_its_window_on_sqlite_then_postgresql() {
    alone_on_sqlite_then_postgresql(a_killed_worker_strands_no_more_than_its_window).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inbound_stop_is_applied_exactly_once_across_a_kill_on_sqlite_then_postgresql() {
    alone_on_sqlite_then_postgresql(every_inbound_stop_is_applied_exactly_once_across_a_kill).await;
}
