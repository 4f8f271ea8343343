//! `deliver_sm` from the SMSC: messages from recipients (decoded, reassembled, through the
//! keyword and consent path) and receipts for ids nobody has; each answered.

use std::{str::FromStr, time::Duration};

use rusmpp::{
    pdus::DeliverSm,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass},
    CommandStatus,
};

use crate::{quick_settings, quick_worker, smsc::Smsc, support::json, SmppApp, FROM};

const SENDER: &str = "+12125550177";

/// A message from `SENDER` to `FROM`: `body` as it goes on the wire.
fn mo(data_coding: u8, esm_class: u8, body: &[u8]) -> DeliverSm {
    DeliverSm::builder()
        .source_addr(COctetString::from_str(&SENDER[1..]).unwrap())
        .destination_addr(COctetString::from_str(&FROM[1..]).unwrap())
        .esm_class(EsmClass::from(esm_class))
        .data_coding(DataCoding::from(data_coding))
        .short_message(OctetString::from_slice(body).unwrap())
        .build()
}

/// Part `sequence` of `total` under `reference`.
fn part(reference: u8, total: u8, sequence: u8, body: &[u8]) -> DeliverSm {
    let mut bytes = vec![0x05, 0x00, 0x03, reference, total, sequence];
    bytes.extend_from_slice(body);
    mo(0, 0x40, &bytes)
}

async fn inbound_texts(app: &SmppApp, key: &str) -> Vec<String> {
    let reply = app
        .app
        .call(
            reqwest::Method::GET,
            "/v1/messages?direction=inbound",
            Some(key),
            None,
        )
        .await;
    let mut texts: Vec<String> = reply
        .assert_success(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

async fn wait_for_answers(smsc: &Smsc, n: usize) -> Vec<CommandStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answers = smsc.deliver_answers();
        if answers.len() >= n {
            return answers;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} deliver_sm not answered: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_stop_in_two_parts_is_reassembled_before_the_keyword_applies(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, SENDER).await;
    // The second part first.
    smsc.deliver(part(9, 2, 2, b"OP"));
    smsc.deliver(part(9, 2, 1, b"ST"));
    assert_eq!(
        wait_for_answers(&smsc, 2).await,
        vec![CommandStatus::EsmeRok; 2]
    );
    let reply = app
        .app
        .send(
            &org.key,
            json!({"from": FROM, "to": SENDER, "text": "after STOP"}),
        )
        .await;
    reply.assert_error(453, "CONSENT_REQUIRED");
    assert_eq!(inbound_texts(&app, &org.key).await, vec!["STOP".to_owned()]);
}

async fn texts_are_decoded_from_gsm_latin1_and_ucs2_and_incomplete_parts_kept(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, SENDER).await;
    smsc.deliver(mo(0, 0, &[0x48, 0x69, 0x1B, 0x65])); // "Hi€" in GSM 03.38
    smsc.deliver(mo(3, 0, &[0x63, 0x61, 0x66, 0xE9])); // "café" in Latin-1
    let ucs2: Vec<u8> = "Привет 👋"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    smsc.deliver(mo(8, 0, &ucs2));
    // One part of three, never completed: kept as it is after the reassembly timeout.
    smsc.deliver(part(4, 3, 1, b"first part "));
    // A receipt for an id nobody has: answered and kept.
    smsc.deliver(crate::smsc::receipt(
        &rusmpp::pdus::SubmitSm::builder()
            .source_addr(COctetString::from_str("15551112222").unwrap())
            .destination_addr(COctetString::from_str("12125550177").unwrap())
            .build(),
        "FFFF01",
        true,
    ));
    assert_eq!(
        wait_for_answers(&smsc, 5).await,
        vec![CommandStatus::EsmeRok; 5]
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut expected = vec![
        "Hi€".to_owned(),
        "café".to_owned(),
        "Привет 👋".to_owned(),
        "first part ".to_owned(),
    ];
    expected.sort();
    assert_eq!(inbound_texts(&app, &org.key).await, expected);
}

/// Parts numbered 0 or past their total are dropped (answered, stored nowhere); a set whose
/// parts are all in is one message.
async fn parts_numbered_outside_their_message_are_dropped(backend: crate::support::Backend) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, SENDER).await;
    smsc.deliver(part(5, 2, 0, b"zero"));
    smsc.deliver(part(5, 2, 3, b"three"));
    smsc.deliver(part(5, 2, 1, b"he"));
    smsc.deliver(part(5, 2, 2, b"llo"));
    assert_eq!(
        wait_for_answers(&smsc, 4).await,
        vec![CommandStatus::EsmeRok; 4]
    );
    // Past the reassembly timeout nothing else appears.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        inbound_texts(&app, &org.key).await,
        vec!["hello".to_owned()]
    );
}

/// With room for two waiting messages, a part of a third is answered with a temporary error
/// (the SMSC delivers it again later); parts of the waiting ones are still taken.
async fn waiting_parts_are_bounded(backend: crate::support::Backend) {
    let smsc = Smsc::start().await;
    let mut settings = quick_settings(smsc.addr);
    settings.reassembly_max_sets = 2;
    settings.reassembly_timeout = Duration::from_secs(30);
    let app = SmppApp::start(backend, settings, quick_worker()).await;
    let org = app.app.sender(FROM, SENDER).await;
    smsc.deliver(part(1, 2, 1, b"a"));
    smsc.deliver(part(2, 2, 1, b"b"));
    assert_eq!(
        wait_for_answers(&smsc, 2).await,
        vec![CommandStatus::EsmeRok; 2]
    );
    smsc.deliver(part(3, 2, 1, b"c"));
    assert_eq!(
        wait_for_answers(&smsc, 3).await[2],
        CommandStatus::EsmeRxTAppn
    );
    smsc.deliver(part(1, 2, 2, b"A"));
    assert_eq!(wait_for_answers(&smsc, 4).await[3], CommandStatus::EsmeRok);
    assert_eq!(inbound_texts(&app, &org.key).await, vec!["aA".to_owned()]);
}

/// A part answered `ESME_ROK` is stored: the first half of a STOP reaches one carrier session,
/// that carrier stops, and the second half reaching a new one completes the STOP.
async fn an_answered_part_survives_a_restart(backend: crate::support::Backend) {
    use agentmessage::delivery::Carrier;
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.sender(FROM, SENDER).await;
    smsc.deliver(part(7, 2, 1, b"ST"));
    assert_eq!(
        wait_for_answers(&smsc, 1).await,
        vec![CommandStatus::EsmeRok]
    );
    app.carrier.close().await;
    let restarted = agentmessage::delivery::SmppCarrier::start(
        app.app.services.clone(),
        "smpp",
        quick_settings(smsc.addr),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while restarted.health().bound < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new carrier did not bind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    smsc.deliver(part(7, 2, 2, b"OP"));
    assert_eq!(
        wait_for_answers(&smsc, 2).await,
        vec![CommandStatus::EsmeRok; 2]
    );
    assert_eq!(inbound_texts(&app, &org.key).await, vec!["STOP".to_owned()]);
    let reply = app
        .app
        .send(
            &org.key,
            json!({"from": FROM, "to": SENDER, "text": "after STOP"}),
        )
        .await;
    reply.assert_error(453, "CONSENT_REQUIRED");
    restarted.close().await;
}

crate::support::for_each_backend!(
    parts_numbered_outside_their_message_are_dropped,
    waiting_parts_are_bounded,
    an_answered_part_survives_a_restart,
    a_stop_in_two_parts_is_reassembled_before_the_keyword_applies,
    texts_are_decoded_from_gsm_latin1_and_ucs2_and_incomplete_parts_kept,
);
