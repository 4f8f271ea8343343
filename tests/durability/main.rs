//! Durability under kill -9, in its own test binary (load; nothing else runs beside it): the real
//! server (with its worker) is killed with SIGKILL while clients send; after a restart on the
//! same database every message it answered 202 exists, each is delivered, and none was submitted
//! to the carrier twice — on SQLite and on PostgreSQL.

#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../http/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::{
    process::{Child, Command, Stdio},
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

fn serve(url: &str, port: u16) -> Child {
    Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
        ])
        .args(["--receipt-delay", "20ms", "--lease", "2s"])
        .env("AGENTMESSAGE_LOG", "warn")
        .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
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
    let mut server = serve(&url, port);
    up(&client, &base).await;
    client
        .put(format!("{base}/v1/consents/+12125550100"))
        .bearer_auth(&key)
        .json(&json!({"source": "api"}))
        .send()
        .await
        .unwrap();
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
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
                let Ok(response) = sent else { return };
                if response.status() != 202 {
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else { return };
                accepted.lock().unwrap().push(body["data"]["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL
    let _ = server.wait();
    for sender in senders {
        let _ = sender.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > 50,
        "{} sends were answered 202 before the kill",
        accepted.len()
    );
    let mut server = serve(&url, port);
    up(&client, &base).await;
    // Every message answered 202 exists and reaches `delivered` (the lease of one the dead
    // worker held runs out, then it is attempted — once).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for id in &accepted {
        loop {
            let shown = get(&client, &key, &format!("{base}/v1/messages/{id}")).await;
            assert_eq!(
                shown["success"], true,
                "message {id} answered 202 was lost: {shown}"
            );
            let status = shown["data"]["status"].as_str().unwrap().to_owned();
            if status == "delivered" || status == "failed" {
                // A part whose hand-over was cut by the kill is failed (SUBMISSION_UNCERTAIN),
                // never sent again.
                if status == "failed" {
                    assert_eq!(
                        shown["data"]["error_code"], "SUBMISSION_UNCERTAIN",
                        "{shown}"
                    );
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
    eprintln!("{}: {} sends answered 202 before the kill, every one found after the restart and finished, none submitted twice", url.split(':').next().unwrap(), accepted.len());
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
    if let Some(url) = support::fresh_postgres_database().await {
        nothing_answered_202_is_lost_and_nothing_is_submitted_twice(url).await;
    }
}
