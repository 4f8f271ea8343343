//! The real server (`agentmessage serve --mms-carrier mm7`) killed with -9 while its worker has
//! SubmitReqs outstanding at a slow MMSC, then started again on the same database: every MMS it
//! answered 202 ends `sent` (submitted once, by the MMSC's own count) or `failed` as
//! SUBMISSION_UNCERTAIN (submitted at most once) — none is submitted twice.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{json, Value};

use crate::{
    child,
    deployment::{free_port, up, BIN},
    Mmsc, OUTBOUND_PASSWORD, OUTBOUND_USER, VASP,
};

const MESSAGES: usize = 40;
const CONCURRENCY: usize = 4;

/// A migrated database with an organization, its key and its number; the key.
fn set_up(url: &str) -> String {
    crate::deployment::set_up(
        url,
        "messages:send,messages:read,consents:write",
        crate::FROM,
    )
}

fn serve(url: &str, port: u16, mmsc: &Mmsc) -> child::Reaped {
    child::Reaped(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", url])
            .args(["--mms-carrier", "mm7", "--mm7-url", &mmsc.url()])
            .args(["--mm7-username", OUTBOUND_USER, "--mm7-vasp-id", VASP])
            .args([
                "--mm7-timeout",
                "5s",
                "--mm7-concurrency",
                &CONCURRENCY.to_string(),
            ])
            .args(["--mms-allow-http", "--media-allow-private", "--lease", "2s"])
            .env("AGENTMESSAGE_MM7_PASSWORD", OUTBOUND_PASSWORD)
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn killed_during_submissions_no_mms_is_submitted_twice(url: String) {
    let mut mmsc = Mmsc::start().await;
    // Every answer takes 300 ms: the worker holds its whole concurrency outstanding.
    mmsc.answer(&["slow:300"; MESSAGES]).await;
    let media = crate::media_server().await;
    let key = set_up(&url);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = serve(&url, port, &mmsc);
    up(&client, &base).await;
    let opted = client
        .put(format!("{base}/v1/consents/{}", crate::TO))
        .bearer_auth(&key)
        .json(&json!({"source": "web_form"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opted.status(), 200);
    let mut ids = Vec::new();
    for n in 0..MESSAGES {
        let sent = client
            .post(format!("{base}/v1/messages"))
            .bearer_auth(&key)
            .json(&json!({"from": crate::FROM, "to": crate::TO, "text": format!("mms {n}"), "media_urls": [format!("{media}/cat.png")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 202);
        let body: Value = sent.json().await.unwrap();
        ids.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    // Killed once some SubmitReqs were answered, with others outstanding.
    let mut seen = 0;
    while seen < 6 {
        mmsc.next("submit").await;
        seen += 1;
    }
    server.kill().unwrap(); // SIGKILL
    let _ = server.wait();
    mmsc.drain();
    let at_kill = mmsc.submissions.len();
    assert!(
        at_kill < MESSAGES,
        "every MMS was submitted before the kill"
    );
    let mut server = serve(&url, port, &mmsc);
    up(&client, &base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let (mut sent, mut uncertain) = (0, 0);
    for id in &ids {
        loop {
            let shown: Value = client
                .get(format!("{base}/v1/messages/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let status = shown["data"]["status"].as_str().unwrap().to_owned();
            mmsc.drain();
            let times = mmsc.times_submitted(id);
            assert!(
                times <= 1,
                "MMS {id} ({status}) reached the MMSC {times} times"
            );
            match status.as_str() {
                "sent" => {
                    assert_eq!(times, 1, "sent MMS {id} reached the MMSC {times} times");
                    sent += 1;
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
                "MMS {id} stayed {status} (submitted {times} times)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    eprintln!(
        "{}: {MESSAGES} MMS; {at_kill} submitted before the kill; after the restart {sent} sent (each submitted once), {uncertain} failed as uncertain",
        url.split(':').next().unwrap()
    );
    assert_eq!(sent + uncertain, MESSAGES);
    assert!(
        uncertain <= CONCURRENCY,
        "{uncertain} MMS uncertain; at most {CONCURRENCY} were outstanding"
    );
    for report in &mmsc.submissions {
        assert_eq!(report["problems"], json!([]), "{report:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_during_submissions_no_mms_is_submitted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/agentmessage.db", dir.path().display());
    killed_during_submissions_no_mms_is_submitted_twice(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_during_submissions_no_mms_is_submitted_twice() {
    let url = crate::support::fresh_postgres_database().await;
    killed_during_submissions_no_mms_is_submitted_twice(url).await;
}
