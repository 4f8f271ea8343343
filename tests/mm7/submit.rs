//! Submissions to the MMSC: what a SubmitReq carries, how each answer is classified, and the
//! media rules applied before anything is written to the MMSC.

use serde_json::json;

use crate::{cat, dog, fixture, sha256, support::Backend, Mm7App, Mmsc, CAP, FROM, TO, VASP};

fn terminal(status: &str) -> bool {
    matches!(status, "delivered" | "undelivered" | "failed")
}

/// An MMS with text and two images is one SubmitReq — envelope, MIME structure, Content-IDs, a
/// SMIL presentation and the images' bytes checked by the MMSC — then `sent` under the
/// MMSC's MessageID, `delivered` once a DeliveryReportReq says Retrieved, and a ReadReplyReq
/// leaves a `read_reply` event.
async fn an_mms_with_text_and_two_images_is_one_submit_req_then_delivered(backend: Backend) {
    let mut mmsc = Mmsc::start().await;
    let app = Mm7App::start(backend, &mmsc).await;
    let id = app
        .send_mms(
            "Your order 7421 <shipped> & on its way",
            &["cat.png", "dog.jpg"],
        )
        .await;
    let submitted = mmsc.next_submission().await;
    let fields = &submitted["fields"];
    assert_eq!(fields["version"], "6.8.0");
    assert_eq!(
        fields["namespace"],
        "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
    );
    assert_eq!(fields["vasp_id"], VASP);
    assert_eq!(fields["vas_id"], "alerts");
    assert_eq!(fields["service_code"], "svc-42");
    assert_eq!(fields["sender"], FROM);
    assert_eq!(fields["recipient"], TO);
    assert_eq!(fields["delivery_report"], "true");
    assert_eq!(fields["smil"], true);
    assert_eq!(
        fields["transaction_id"],
        json!(format!("am-{}", id.replace('-', "")))
    );
    let items = submitted["items"].as_array().unwrap();
    let shown: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["content_type"].as_str().unwrap(),
                i["sha256"].as_str().unwrap(),
            )
        })
        .collect();
    let (cat, dog) = (sha256(&cat()), sha256(&dog()));
    let text = sha256("Your order 7421 <shipped> & on its way".as_bytes());
    assert_eq!(
        shown,
        [
            ("text/plain", text.as_str()),
            ("image/png", cat.as_str()),
            ("image/jpeg", dog.as_str())
        ]
    );
    let sent = app.wait(&id, |s| s != "queued" && s != "sending").await;
    assert_eq!(sent["status"], "sent", "{sent}");
    let message_id = submitted["message_id"].as_str().unwrap();
    // The MMSC reports the retrieval, as its vendors' documentation shows the request.
    let report = fixture(
        "delivery_report_req.xml",
        &[("MESSAGE_ID", message_id), ("STATUS", "Retrieved")],
    );
    let (status, answer) = app.mmsc_post("text/xml", report.into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("DeliveryReportRsp"), "{answer}");
    assert!(answer.contains(">1000<"), "{answer}");
    assert!(answer.contains("<mm7:TransactionID"), "{answer}");
    let delivered = app.wait(&id, terminal).await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    let read = fixture("read_reply_req.mime", &[("MESSAGE_ID", message_id)]);
    let (status, answer) = app
        .mmsc_post(
            "multipart/related; type=\"text/xml\"; start=\"<soap-start>\"; boundary=\"----=_Part_7_1\"",
            read.into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("ReadReplyRsp"), "{answer}");
    let events = app.events(&id).await;
    let read = events
        .iter()
        .find(|e| e["kind"] == "read_reply")
        .unwrap_or_else(|| panic!("no read_reply event: {events:#?}"));
    assert_eq!(read["stat"], "Read");
    assert_eq!(read["status"], "delivered");
    assert_eq!(mmsc.times_submitted(&id), 1);
}

/// The MMSC's answers, classified: a 2xxx is refused for good (`failed`, CARRIER_REFUSED, the
/// code and text kept); a 3xxx, a Server fault and an HTTP 503 are tried again after the backoff
/// (and then accepted); no answer within the timeout is SUBMISSION_UNCERTAIN, never sent again.
async fn the_mmscs_answers_are_refused_deferred_or_uncertain(backend: Backend) {
    let mut mmsc = Mmsc::start().await;
    let app = Mm7App::start(backend, &mmsc).await;

    mmsc.answer(&["2002"]).await;
    let id = app.send_mms("refused", &["cat.png"]).await;
    let failed = app.wait(&id, terminal).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "CARRIER_REFUSED", "{failed}");
    let said = failed["error_message"].as_str().unwrap();
    assert!(
        said.contains("2002") && said.contains("Address Error"),
        "{said}"
    );

    for (answer, code) in [
        ("3001", "3001"),
        ("fault", "SOAP_SERVER"),
        ("http503", "HTTP_503"),
    ] {
        mmsc.answer(&[answer]).await;
        let id = app.send_mms(answer, &["cat.png"]).await;
        let sent = app.wait(&id, |s| s == "sent" || terminal(s)).await;
        assert_eq!(sent["status"], "sent", "{answer}: {sent}");
        let events = app.events(&id).await;
        let deferred: Vec<_> = events.iter().filter(|e| e["kind"] == "deferred").collect();
        assert_eq!(deferred.len(), 1, "{answer}: {events:#?}");
        assert_eq!(deferred[0]["err"], code, "{answer}");
        mmsc.drain();
        assert_eq!(mmsc.times_submitted(&id), 2, "{answer}");
    }

    mmsc.answer(&["hang"]).await;
    let id = app.send_mms("no answer", &["cat.png"]).await;
    let failed = app.wait(&id, terminal).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "SUBMISSION_UNCERTAIN", "{failed}");
    // Well past the backoff: still submitted once.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    mmsc.drain();
    assert_eq!(mmsc.times_submitted(&id), 1);
    for report in &mmsc.submissions {
        assert_eq!(report["problems"], json!([]), "{report:#}");
    }
}

/// Each media failure is its own catalogue code, and nothing reaches the MMSC; an image over the
/// cap reaches it re-encoded as JPEG under the cap, with a `media_converted` event.
async fn media_failures_never_reach_the_mmsc_and_large_images_are_re_encoded(backend: Backend) {
    let mut mmsc = Mmsc::start().await;
    let app = Mm7App::start(backend, &mmsc).await;
    for (name, code) in [
        ("missing.png", "MEDIA_UNAVAILABLE"),
        ("page.html", "MEDIA_TYPE_UNSUPPORTED"),
        ("big.pdf", "MEDIA_TOO_LARGE"),
    ] {
        let id = app.send_mms("media", &[name]).await;
        let failed = app.wait(&id, terminal).await;
        assert_eq!(failed["status"], "failed", "{name}: {failed}");
        assert_eq!(failed["error_code"], code, "{name}: {failed}");
        mmsc.drain();
        assert_eq!(mmsc.times_submitted(&id), 0, "{name}");
    }
    let id = app.send_mms("a large photo", &["photo.png"]).await;
    let submitted = mmsc.next_submission().await;
    let items = submitted["items"].as_array().unwrap();
    let image = &items[1];
    assert_eq!(image["content_type"], "image/jpeg", "{submitted:#}");
    let size = image["size"].as_u64().unwrap();
    assert!(size + "a large photo".len() as u64 <= CAP, "{size}");
    let sent = app.wait(&id, |s| s == "sent" || terminal(s)).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    let events = app.events(&id).await;
    let converted = events
        .iter()
        .find(|e| e["kind"] == "media_converted")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert!(
        converted["note"].as_str().unwrap().contains("image/jpeg"),
        "{converted}"
    );
}

for_each_backend!(
    an_mms_with_text_and_two_images_is_one_submit_req_then_delivered,
    the_mmscs_answers_are_refused_deferred_or_uncertain,
    media_failures_never_reach_the_mmsc_and_large_images_are_re_encoded,
);
