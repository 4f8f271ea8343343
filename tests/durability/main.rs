//! Durability under kill -9, in its own test binary (load; nothing else runs beside it): the real
//! server (with its worker, over SMPP to the `smpp` npm package's SMSC) is killed with SIGKILL
//! while clients send; after a restart on the same database every message it answered 202
//! exists and ends delivered (or failed as uncertain), and the SMSC — not the server's own
//! records — saw no message submitted twice and every delivered one submitted once; on SQLite
//! and on PostgreSQL.

#[path = "../common/child.rs"]
mod child;
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

const BIN: &str = env!("CARGO_BIN_EXE_agentmessage");

fn admin(url: &str, args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .arg("admin")
        .args(args)
        .args(["--database-url", url])
        .env("AGENTMESSAGE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
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
        let dir = tools::tool_dir("node")
            .parent()
            .and_then(|p| p.parent())
            .expect("tests/tools")
            .to_owned();
        let mut child = child::Reaped(
            Command::new("node")
                .args(["smsc.js", "0"])
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
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
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

async fn nothing_answered_202_is_lost_and_nothing_is_submitted_twice(url: String) {
    let smsc = Smsc::start();
    let migrated = Command::new(BIN)
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let org = admin(
        &url,
        &[
            "create-org",
            "--name",
            "durability",
            "--rate-per-second",
            "100000",
            "--burst",
            "100000",
        ],
    );
    let org = org["id"].as_str().unwrap().to_owned();
    let key = admin(
        &url,
        &[
            "create-key",
            "--org",
            &org,
            "--scopes",
            "messages:send,messages:read,consents:write",
        ],
    );
    let key = key["key"].as_str().unwrap().to_owned();
    admin(
        &url,
        &["add-number", "--org", &org, "--number", "+15551112222"],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = serve(&url, port, &smsc);
    up(&client, &base).await;
    let opted_in = client
        .put(format!("{base}/v1/consents/+12125550100"))
        .bearer_auth(&key)
        .json(&json!({"source": "api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opted_in.status(), 200, "the opt-in is recorded");
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

/// One test, so that the two backends' runs never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_on_sqlite_then_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    nothing_answered_202_is_lost_and_nothing_is_submitted_twice(format!(
        "sqlite://{}/durability.db",
        dir.path().display()
    ))
    .await;
    nothing_answered_202_is_lost_and_nothing_is_submitted_twice(
        support::fresh_postgres_database().await,
    )
    .await;
}
