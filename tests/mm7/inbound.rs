//! The MMSC's requests to `POST /v1/carrier/mm7`: inbound MMS stored with their media and read
//! back, keywords acted on, and faults — never a 500 — for what cannot be taken.

use base64::Engine;
use reqwest::Method;
use serde_json::json;

use crate::{
    dog, fixture, mmsc_post, status_code,
    support::{Backend, TestApp},
    Mm7App, Mmsc, FROM, INBOUND_PASSWORD, INBOUND_USER,
};

const DELIVER: &str =
    "multipart/related; start=\"soap-start\"; type=\"text/xml\"; boundary=\"----=_Part_139078_1411587550.1397492135426\"";

/// A DeliverReq as vendors document it: `sender` to `recipient`, the image in base64 (or raw
/// binary when `binary`) and the text.
fn deliver_req(sender: &str, recipient: &str, linked: &str, text: &str, binary: bool) -> Vec<u8> {
    let image = base64::engine::general_purpose::STANDARD.encode(dog());
    let body = fixture(
        "deliver_req.mime",
        &[
            ("SENDER", sender),
            ("RECIPIENT", recipient),
            ("LINKED_ID", linked),
            ("TEXT", text),
            ("IMAGE_BASE64", &image),
        ],
    );
    if !binary {
        return body.into_bytes();
    }
    let encoded =
        format!("Content-Transfer-Encoding: base64\r\nContent-ID: image_0.jpg\r\n\r\n{image}");
    let (before, after) = body.split_once(&encoded).expect("the image part");
    let mut bytes = before.as_bytes().to_vec();
    bytes
        .extend_from_slice(b"Content-Transfer-Encoding: binary\r\nContent-ID: image_0.jpg\r\n\r\n");
    bytes.extend_from_slice(&dog());
    bytes.extend_from_slice(after.as_bytes());
    bytes
}

/// The inbound messages of the key's organization, newest first.
async fn inbound(app: &TestApp, key: &str) -> Vec<serde_json::Value> {
    let reply = app
        .call(
            Method::GET,
            "/v1/messages?direction=inbound",
            Some(key),
            None,
        )
        .await;
    reply.assert_success(200).as_array().unwrap().clone()
}

/// An inbound MMS — the image in base64, then raw binary — is stored as an inbound `mms` with
/// its text and media; the media are read back byte for byte with their Content-Type, by its
/// organization only; a redelivery stores nothing new; STOP in an MMS acts as in an SMS.
async fn an_inbound_mms_is_stored_with_its_media_and_read_back(backend: Backend) {
    let mmsc = Mmsc::start().await;
    let app = Mm7App::start(backend, &mmsc).await;
    let other = app.app.org().await;
    for (n, binary) in [(1, false), (2, true)] {
        let body = deliver_req(
            "15559990001",
            &FROM[1..],
            &format!("mo-{n}"),
            "Look at this",
            binary,
        );
        let (status, answer) = app.mmsc_post(DELIVER, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("DeliverRsp"), "{answer}");
        assert_eq!(status_code(&answer), 1000);
        assert!(answer.contains(">1000001</mm7:TransactionID>"), "{answer}");
        // The MMSC delivers it again (no answer reached it): nothing new is stored.
        let (status, _) = app.mmsc_post(DELIVER, body).await;
        assert_eq!(status, 200);
        let messages = inbound(&app.app, &app.org.key).await;
        assert_eq!(messages.len(), n, "{messages:#?}");
        let message = &messages[0];
        assert_eq!(message["channel"], "mms");
        assert_eq!(message["from"], "+15559990001");
        assert_eq!(message["to"], FROM);
        assert_eq!(message["text"], "Look at this");
        let id = message["id"].as_str().unwrap();
        let urls = message["media_urls"].as_array().unwrap();
        assert_eq!(urls, &[json!(format!("/v1/messages/{id}/media/1"))]);
        let path = urls[0].as_str().unwrap();
        let response = app
            .app
            .client
            .get(format!("{}{path}", app.app.base))
            .bearer_auth(&app.org.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(
            response.bytes().await.unwrap().to_vec(),
            dog(),
            "binary: {binary}"
        );
        for (key, path) in [
            (&other.key, path.to_owned()),
            (&app.org.key, format!("/v1/messages/{id}/media/2")),
            (&app.org.key, format!("/v1/messages/{id}/media/0")),
            (&app.org.key, format!("/v1/messages/{id}/media/x")),
        ] {
            let reply = app.app.call(Method::GET, &path, Some(key), None).await;
            reply.assert_error(404, "NOT_FOUND");
        }
    }
    // A key without messages:read is refused; no key is 401.
    let reply = app
        .app
        .call(
            Method::GET,
            "/v1/messages/00000000-0000-0000-0000-000000000000/media/1",
            None,
            None,
        )
        .await;
    reply.assert_error(401, "UNAUTHORIZED");
    // STOP by MMS: the sender is opted out.
    let sender = "+15559990002";
    app.app.opt_in(&app.org, sender).await;
    let body = deliver_req(&sender[1..], &FROM[1..], "mo-stop", "STOP", false);
    let (status, answer) = app.mmsc_post(DELIVER, body).await;
    assert_eq!(status, 200, "{answer}");
    let consent = app
        .app
        .call(
            Method::GET,
            &format!("/v1/consents/{sender}"),
            Some(&app.org.key),
            None,
        )
        .await;
    assert_eq!(
        consent.assert_success(200)["status"],
        "opted_out",
        "{consent:?}"
    );
}

/// What cannot be taken is a SOAP Fault with a 4xxx status, never a 500: wrong or missing
/// credentials (401, 4001), malformed MIME or XML and missing elements (400, 4004), an operation
/// this server does not take (400, 4003), an MMS to a number no organization owns (400, 4004).
/// A report for a MessageID no message has is kept and answered 1000.
async fn what_cannot_be_taken_is_a_soap_fault(backend: Backend) {
    let mmsc = Mmsc::start().await;
    let app = Mm7App::start(backend, &mmsc).await;
    let report = fixture(
        "delivery_report_req.xml",
        &[("MESSAGE_ID", "mmsc-unknown-1"), ("STATUS", "Retrieved")],
    );
    for (user, password) in [(INBOUND_USER, "wrong"), ("someone", INBOUND_PASSWORD)] {
        let (status, answer) = mmsc_post(
            &app.app,
            "text/xml",
            report.clone().into_bytes(),
            user,
            password,
        )
        .await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(status_code(&answer), 4001, "{answer}");
        assert!(answer.contains("<env:Fault>"), "{answer}");
    }
    let unauthenticated = app
        .app
        .client
        .post(format!("{}/v1/carrier/mm7", app.app.base))
        .header("content-type", "text/xml")
        .body(report.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.headers()["www-authenticate"],
        "Basic realm=\"agentmessage-mm7\""
    );
    let cancel = report.replace("DeliveryReportReq", "CancelReq");
    let no_status = report.replace("<MMStatus>Retrieved</MMStatus>", "");
    let unowned = deliver_req("15559990001", "15550000000", "mo-x", "hi", false);
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("text/xml", b"<not-closed".to_vec(), 4004),
        ("text/xml", b"".to_vec(), 4004),
        ("text/xml", b"<Envelope>not SOAP</Envelope>".to_vec(), 4004),
        ("application/json", b"{}".to_vec(), 4004),
        (
            "multipart/related; boundary=\"nothing-here\"",
            b"garbage".to_vec(),
            4004,
        ),
        ("multipart/related", b"--x\r\n\r\n--x--".to_vec(), 4004),
        ("text/xml", no_status.into_bytes(), 4004),
        ("text/xml", cancel.into_bytes(), 4003),
        (DELIVER, unowned, 4004),
    ];
    for (content_type, body, code) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let (status, answer) = app.mmsc_post(content_type, body).await;
        assert_eq!(status, 400, "{content_type} {shown}: {answer}");
        assert_eq!(
            status_code(&answer),
            code,
            "{content_type} {shown}: {answer}"
        );
    }
    let (status, answer) = app.mmsc_post("text/xml", report.into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(status_code(&answer), 1000);
    assert!(answer.contains("DeliveryReportRsp"), "{answer}");
}

/// A report the database cannot store is a `Server` fault with 3000 and 503, so that the MMSC
/// sends it again — not a 500, and not a 1000 that would lose it.
async fn a_report_that_cannot_be_stored_is_a_server_fault(backend: Backend) {
    let mmsc = Mmsc::start().await;
    let app = Mm7App::start(backend, &mmsc).await;
    let conn = app.app.single_connection().await;
    sea_orm::ConnectionTrait::execute_unprepared(&conn, "DROP TABLE carrier_receipts")
        .await
        .unwrap();
    let report = fixture(
        "delivery_report_req.xml",
        &[("MESSAGE_ID", "mmsc-lost-1"), ("STATUS", "Retrieved")],
    );
    let (status, answer) = app.mmsc_post("text/xml", report.into_bytes()).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(status_code(&answer), 3000, "{answer}");
    assert!(
        answer.contains("<faultcode>env:Server</faultcode>"),
        "{answer}"
    );
    assert!(
        !answer.to_lowercase().contains("carrier_receipts"),
        "{answer}"
    );
}

for_each_backend!(
    an_inbound_mms_is_stored_with_its_media_and_read_back,
    what_cannot_be_taken_is_a_soap_fault,
    a_report_that_cannot_be_stored_is_a_server_fault,
);
