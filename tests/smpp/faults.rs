//! What each SMSC answer does to a message, against the controllable SMSC.

use std::{collections::HashMap, time::Duration};

use agentmessage::{delivery::Carrier, domain::submission::read_udh};
use rusmpp::CommandStatus;

use crate::{
    quick_settings, quick_worker,
    smsc::{Answer, Smsc},
    support::json,
    SmppApp, FROM,
};

const TO: &str = "+12125550100";

/// A text of three GSM-7 segments.
fn three_segments() -> String {
    (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

async fn a_throttled_submission_is_requeued_then_sent_once(backend: crate::support::Backend) {
    let smsc = Smsc::start().await;
    smsc.script(&[Answer::Refuse(CommandStatus::EsmeRthrottled)]);
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "throttled first").await;
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("delivered"), "{data}");
    let seen = smsc.seen();
    assert_eq!(seen.len(), 2, "one refused, one accepted submission");
    assert_eq!(
        seen.iter().filter(|s| s.answer == Answer::Accept).count(),
        1
    );
    let events = app.events(&org.key, &id).await;
    assert!(
        events.contains(&(
            "deferred".into(),
            "queued".into(),
            Some("ESME_RTHROTTLED".into())
        )),
        "the refusal is an event: {events:?}"
    );
    let sent = app
        .app
        .call(
            reqwest::Method::GET,
            &format!("/v1/messages/{id}/events"),
            Some(&org.key),
            None,
        )
        .await;
    let sent = sent
        .assert_success(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == json!("sent"))
        .cloned()
        .unwrap();
    assert_eq!(
        sent["carrier_message_id"],
        json!(seen[1].message_id.clone().unwrap())
    );
}

async fn a_permanent_refusal_fails_the_message_with_the_status_name(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    smsc.script(&[Answer::Refuse(CommandStatus::EsmeRinvdstadr)]);
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "refused").await;
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("failed"));
    assert_eq!(data["error_code"], json!("CARRIER_REFUSED"));
    assert!(
        data["error_message"]
            .as_str()
            .unwrap()
            .contains("ESME_RINVDSTADR"),
        "{data}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smsc.seen().len(), 1, "never submitted again");
}

async fn no_response_is_submission_uncertain_and_never_submitted_again(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    smsc.script(&[Answer::Silent]);
    let mut settings = quick_settings(smsc.addr);
    settings.response_timeout = Duration::from_millis(400);
    settings.enquire_link = Duration::from_secs(60);
    let app = SmppApp::start(backend, settings, quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "into the void").await;
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("failed"));
    assert_eq!(data["error_code"], json!("SUBMISSION_UNCERTAIN"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smsc.seen().len(), 1, "exactly one submit_sm");
}

async fn a_receipt_before_the_submit_response_is_matched(backend: crate::support::Backend) {
    let smsc = Smsc::start().await;
    smsc.script(&[Answer::ReceiptFirst]);
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "early receipt").await;
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("delivered"), "{data}");
}

async fn a_throttled_part_is_the_only_one_submitted_again_with_the_same_reference(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    // Parts go out together: whichever arrives second is throttled.
    smsc.script(&[
        Answer::Accept,
        Answer::Refuse(CommandStatus::EsmeRmsgqful),
        Answer::Accept,
    ]);
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let text = three_segments();
    let id = app.send(&org.key, TO, &text).await;
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("delivered"), "{data}");
    assert_eq!(data["segments"], json!(3));
    let seen = smsc.seen();
    assert_eq!(seen.len(), 4, "three parts and one resubmission");
    let mut accepted = HashMap::new();
    let mut references = Vec::new();
    for s in &seen {
        let (at, body) = read_udh(s.pdu.short_message().as_ref()).expect("a concatenation UDH");
        references.push(at.reference);
        assert_eq!(at.total, 3);
        if s.answer == Answer::Accept {
            assert!(
                accepted.insert(at.sequence, body.to_vec()).is_none(),
                "part {} accepted twice",
                at.sequence
            );
        }
    }
    assert!(
        references.iter().all(|r| *r == references[0]),
        "one reference: {references:?}"
    );
    let refused = seen
        .iter()
        .position(|s| s.answer != Answer::Accept)
        .unwrap();
    let refused_part = read_udh(seen[refused].pdu.short_message().as_ref())
        .unwrap()
        .0
        .sequence;
    let resubmitted = read_udh(seen[3].pdu.short_message().as_ref())
        .unwrap()
        .0
        .sequence;
    assert_eq!(
        refused_part, resubmitted,
        "only the throttled part went again"
    );
    let joined: Vec<u8> = (1..=3).flat_map(|n| accepted[&n].clone()).collect();
    assert_eq!(agentmessage::domain::submission::decode_gsm7(&joined), text);
    let receipts = app
        .events(&org.key, &id)
        .await
        .iter()
        .filter(|e| e.0 == "receipt")
        .count();
    assert_eq!(receipts, 3, "every part's receipt is an event");
}

async fn a_restarted_smsc_is_bound_again_and_the_queue_drains_without_a_second_submission(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(app.send(&org.key, TO, &format!("restart {i}")).await);
        if i == 10 {
            smsc.restart(Duration::from_millis(300)).await;
        }
    }
    let mut statuses = HashMap::new();
    for id in &ids {
        let data = app.final_status(&org.key, id).await;
        *statuses
            .entry(data["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        if data["status"] == json!("failed") {
            assert_eq!(data["error_code"], json!("SUBMISSION_UNCERTAIN"), "{data}");
        }
    }
    assert!(smsc.binds() >= 2, "bound again after the restart");
    assert!(
        statuses.get("delivered").copied().unwrap_or(0) >= 19,
        "{statuses:?}"
    );
    let mut texts = HashMap::new();
    for s in smsc.seen() {
        *texts
            .entry(s.pdu.short_message().as_ref().to_vec())
            .or_insert(0) += 1;
    }
    assert!(
        texts.values().all(|n| *n == 1),
        "a message was submitted twice"
    );
}

async fn while_no_session_is_bound_sends_wait_and_expire_by_their_validity(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let addr = smsc.addr;
    drop(smsc); // nothing listens there
    let worker = agentmessage::delivery::WorkerSettings {
        validity: Duration::from_millis(800),
        ..quick_worker()
    };
    let app = SmppApp::start_with(backend, quick_settings(addr), worker, false).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "nobody bound").await;
    let health = app
        .app
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(
        health.assert_success(200)["carrier"],
        json!({"kind": "smpp", "sessions": 1, "bound": 0})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = app
        .app
        .call(
            reqwest::Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(
        queued.assert_success(200)["status"],
        json!("queued"),
        "waits rather than fails"
    );
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("undelivered"));
    assert_eq!(data["error_code"], json!("EXPIRED"));
}

async fn an_smsc_that_comes_up_later_takes_the_queue_and_the_validity_left(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let addr = smsc.addr;
    smsc.stop();
    let app = SmppApp::start_with(backend, quick_settings(addr), quick_worker(), false).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "late bind").await;
    smsc.restart(Duration::from_millis(200)).await;
    app.wait_bound(1).await;
    let health = app
        .app
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(health.assert_success(200)["carrier"]["bound"], json!(1));
    let data = app.final_status(&org.key, &id).await;
    assert_eq!(data["status"], json!("delivered"));
    let seen = smsc.seen();
    assert_eq!(seen.len(), 1);
    // Relative validity: the default 48 h less the time it waited.
    let validity = seen[0].pdu.validity_period.to_string();
    assert!(
        validity.starts_with("0000012359") && validity.ends_with("000R"),
        "{validity}"
    );
    assert_eq!(
        u8::from(seen[0].pdu.registered_delivery) & 0x03,
        0x01,
        "a final receipt is asked for"
    );
}

async fn the_smsc_unbinding_is_answered_and_the_session_binds_again(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    smsc.unbind_all();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while smsc.binds() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not bound again after the SMSC's unbind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.wait_bound(1).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "after unbind").await;
    assert_eq!(
        app.final_status(&org.key, &id).await["status"],
        json!("delivered")
    );
}

async fn at_shutdown_outstanding_answers_are_awaited_then_the_session_unbinds(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, TO).await;
    let id = app.send(&org.key, TO, "before shutdown").await;
    assert_eq!(
        app.final_status(&org.key, &id).await["status"],
        json!("delivered")
    );
    let carrier = app.carrier.clone();
    app.shut_down().await;
    assert_eq!(carrier.health().bound, 0, "unbound at shutdown");
}

crate::support::for_each_backend!(
    a_throttled_submission_is_requeued_then_sent_once,
    a_permanent_refusal_fails_the_message_with_the_status_name,
    no_response_is_submission_uncertain_and_never_submitted_again,
    a_receipt_before_the_submit_response_is_matched,
    a_throttled_part_is_the_only_one_submitted_again_with_the_same_reference,
    a_restarted_smsc_is_bound_again_and_the_queue_drains_without_a_second_submission,
    while_no_session_is_bound_sends_wait_and_expire_by_their_validity,
    an_smsc_that_comes_up_later_takes_the_queue_and_the_validity_left,
    the_smsc_unbinding_is_answered_and_the_session_binds_again,
    at_shutdown_outstanding_answers_are_awaited_then_the_session_unbinds,
);
