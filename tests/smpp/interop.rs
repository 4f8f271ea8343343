//! Against an SMSC this project did not write: the `smpp` npm package's server
//! (`tests/tools/smsc.js`), started here on loopback. It decodes each `submit_sm` itself and
//! reports it; its receipts write the id in hexadecimal (with the TLVs) or in decimal (text only).

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use crate::{quick_settings, quick_worker, support::json, tools, SmppApp, FROM};

/// The npm SMSC: its reports, and its stdin for commands.
struct NodeSmsc {
    port: u16,
    reports: mpsc::UnboundedReceiver<Value>,
    /// Every report read so far.
    read: Vec<Value>,
    child: Child,
}

impl NodeSmsc {
    async fn start() -> NodeSmsc {
        let bin = tools::tool_dir("node");
        let dir = bin
            .parent()
            .and_then(|p| p.parent())
            .expect("tests/tools")
            .to_owned();
        let mut child = Command::new("node")
            .arg("smsc.js")
            .arg("0")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/tools/smsc.js");
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
        let mut smsc = NodeSmsc {
            port: 0,
            reports,
            read: Vec::new(),
            child,
        };
        let listening = smsc.next("listening").await;
        smsc.port = listening["port"].as_u64().unwrap() as u16;
        smsc
    }

    /// The next report of `event` (others before it are dropped).
    async fn next(&mut self, event: &str) -> Value {
        let wait = async {
            loop {
                let report = self.reports.recv().await.expect("the SMSC is running");
                self.read.push(report.clone());
                assert_ne!(report["event"], json!("error"), "{report}");
                if report["event"] == json!(event) {
                    return report;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| panic!("no {event} from the SMSC"))
    }

    /// Waits until `n` reports of `event` were printed; returns them.
    async fn all(&mut self, event: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Ok(report) = self.reports.try_recv() {
                self.read.push(report);
            }
            let found: Vec<Value> = self
                .read
                .iter()
                .filter(|r| r["event"] == json!(event))
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} {event}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn command(&mut self, command: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }
}

const TO: &str = "+15554443333";

/// The organization's inbound messages, newest first.
async fn inbound(app: &SmppApp, key: &str) -> Vec<Value> {
    let reply = app
        .app
        .call(
            reqwest::Method::GET,
            "/v1/messages?direction=inbound",
            Some(key),
            None,
        )
        .await;
    reply.assert_success(200).as_array().unwrap().clone()
}

/// The carrier id on a message's `sent` event and on its first receipt event.
async fn carrier_ids(app: &SmppApp, key: &str, id: &str) -> (Value, Value) {
    let events = app
        .app
        .call(
            reqwest::Method::GET,
            &format!("/v1/messages/{id}/events"),
            Some(key),
            None,
        )
        .await;
    let events = events.assert_success(200).as_array().unwrap().clone();
    let sent = events
        .iter()
        .find(|e| e["status"] == json!("sent"))
        .expect("a sent event");
    let receipt = events
        .iter()
        .find(|e| e["kind"] == json!("receipt"))
        .expect("a receipt event");
    (
        sent["carrier_message_id"].clone(),
        receipt["carrier_message_id"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smpp_npm_server_receives_what_was_sent_and_its_receipts_and_stop_apply() {
    let mut smsc = NodeSmsc::start().await;
    let addr = format!("127.0.0.1:{}", smsc.port).parse().unwrap();
    let app = SmppApp::start(
        crate::support::Backend::Sqlite,
        quick_settings(addr),
        quick_worker(),
    )
    .await;
    let bind = smsc.next("bind_transceiver").await;
    assert_eq!(bind["system_id"], json!("agentmessage"));
    assert_eq!(bind["interface_version"], json!(0x34), "binds as SMPP 3.4");
    let org = app.app.sender(FROM, TO).await;

    // GSM-7, with an extension character.
    let gsm = "Your code is 4821 {valid 10 min} €";
    let id = app.send(&org.key, TO, gsm).await;
    let submit = smsc.next("submit_sm").await;
    assert_eq!(submit["data_coding"], json!(0));
    assert_eq!(submit["message"], json!(gsm));
    assert_eq!(submit["udh"], json!([]));
    assert_eq!(submit["source_addr"], json!("15551112222"));
    assert_eq!(submit["destination_addr"], json!("15554443333"));
    assert_eq!(
        (
            submit["source_addr_ton"].clone(),
            submit["source_addr_npi"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(
        (
            submit["dest_addr_ton"].clone(),
            submit["dest_addr_npi"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(submit["registered_delivery"], json!(1));
    // The package reads the relative validity as a date: about 48 hours from now.
    let until =
        chrono::DateTime::parse_from_rfc3339(submit["validity_period"].as_str().unwrap()).unwrap();
    let left = until.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        (left - chrono::Duration::hours(48)).num_seconds().abs() < 60,
        "{submit}"
    );
    assert_eq!(submit["esm_class"], json!(0));
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("delivered"), "{data}");
    let (sent, receipt) = carrier_ids(&app, &org.key, &id).await;
    assert_eq!(sent, submit["message_id"]);
    // Even ids: the receipt's TLVs name the id as submit_sm_resp did.
    assert_eq!(receipt, submit["message_id"]);

    // UCS-2, with a character outside the BMP.
    let ucs2 = "Привет, 你好 👋";
    let id = app.send(&org.key, TO, ucs2).await;
    let submit = smsc.next("submit_sm").await;
    assert_eq!(submit["data_coding"], json!(8));
    assert_eq!(submit["message"], json!(ucs2));
    assert_eq!(
        app.final_status(&org.key, &id).await["status"],
        json!("delivered")
    );
    // Odd ids: the receipt text writes the id in decimal; it was matched to the hexadecimal one.
    let (sent, receipt) = carrier_ids(&app, &org.key, &id).await;
    assert_eq!(sent, submit["message_id"]);
    let decimal = u64::from_str_radix(submit["message_id"].as_str().unwrap(), 16).unwrap();
    assert_eq!(receipt, json!(decimal.to_string()));

    // Three segments: three submit_sm under one concatenation header.
    let long: String = (0..400)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let id = app.send(&org.key, TO, &long).await;
    let mut parts = Vec::new();
    for _ in 0..3 {
        parts.push(smsc.next("submit_sm").await);
    }
    let mut udhs: Vec<String> = parts
        .iter()
        .map(|p| p["udh"][0].as_str().unwrap().to_owned())
        .collect();
    for p in &parts {
        assert_eq!(p["esm_class"].as_u64().unwrap() & 0x40, 0x40, "UDHI set");
        assert_eq!(p["data_coding"], json!(0));
    }
    // IEI 00, length 3, one reference, 3 parts, sequence 1..3.
    let reference = udhs[0][4..6].to_owned();
    udhs.sort();
    assert_eq!(
        udhs,
        (1..=3)
            .map(|n| format!("0003{reference}03{n:02x}"))
            .collect::<Vec<_>>()
    );
    let mut by_sequence: Vec<(String, String)> = parts
        .iter()
        .map(|p| {
            (
                p["udh"][0].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    by_sequence.sort();
    assert_eq!(
        by_sequence.into_iter().map(|(_, m)| m).collect::<String>(),
        long
    );
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(
        data["status"],
        json!("delivered"),
        "every part's receipt said delivered: {data}"
    );
    assert_eq!(data["segments"], json!(3));

    // The recipient texts STOP through the SMSC: the next send is refused.
    smsc.command(json!({"inbound": {"from": "15554443333", "to": "15551112222", "text": "STOP"}}))
        .await;
    smsc.next("inbound_sent").await;
    // Answered once stored: wait for the inbound message; every deliver_sm (five receipts, one
    // per part, then the STOP) was answered ESME_ROK.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inbound(&app, &org.key).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the STOP was not stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answers = smsc.all("deliver_sm_resp", 6).await;
    assert!(
        answers.iter().all(|a| a["command_status"] == json!(0)),
        "{answers:?}"
    );
    let reply = app
        .app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "after STOP"}),
        )
        .await;
    reply.assert_error(453, "CONSENT_REQUIRED");
    let listed = inbound(&app, &org.key).await;
    assert_eq!(listed[0]["text"], json!("STOP"), "{listed:?}");
    assert_eq!(listed[0]["from"], json!(TO));

    app.shut_down().await;
    smsc.next("unbind").await;
}
