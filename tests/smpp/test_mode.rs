//! Test mode beside a live SMPP carrier: test keys' messages complete their lifecycle through the
//! simulated carrier and the SMSC never sees them; MMS is refused in both modes, since SMPP
//! cannot carry it.

use std::time::Duration;

use crate::{quick_settings, quick_worker, smsc::Smsc, support::json, SmppApp, FROM};

async fn a_test_keys_sends_complete_while_the_smsc_sees_none(backend: crate::support::Backend) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    let org = app.app.org().await;
    app.app.add_number(&org, FROM).await;
    let test_key = app.app.test_key(&org).await;
    let delivered = "+12125550100";
    let undelivered = "+14155550145";
    for to in [delivered, undelivered] {
        let reply = app
            .app
            .call(
                reqwest::Method::PUT,
                &format!("/v1/consents/{to}"),
                Some(&test_key),
                Some(json!({"source": "web_form"})),
            )
            .await;
        reply.assert_success(200);
    }
    let first = app.send(&test_key, delivered, "test mode, delivered").await;
    let long: String = "test mode ".repeat(40);
    let second = app.send(&test_key, delivered, &long).await;
    let third = app
        .send(&test_key, undelivered, "test mode, undelivered")
        .await;
    assert_eq!(
        app.final_status(&test_key, &first).await["status"],
        json!("delivered")
    );
    assert_eq!(
        app.final_status(&test_key, &second).await["status"],
        json!("delivered")
    );
    assert_eq!(
        app.final_status(&test_key, &third).await["status"],
        json!("undelivered")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(smsc.seen().is_empty(), "the SMSC saw a test-mode message");
    // A live send of the same organization does reach it.
    app.app.opt_in(&org, delivered).await;
    let live = app.send(&org.key, delivered, "live").await;
    assert_eq!(
        app.final_status(&org.key, &live).await["status"],
        json!("delivered")
    );
    assert_eq!(smsc.seen().len(), 1);
    let listed = app
        .app
        .call(reqwest::Method::GET, "/v1/messages", Some(&test_key), None)
        .await;
    let ids: Vec<&str> = listed
        .assert_success(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&live.as_str()) && ids.contains(&first.as_str()),
        "{ids:?}"
    );
}

async fn mms_is_refused_in_both_modes_while_the_live_carrier_is_smpp(
    backend: crate::support::Backend,
) {
    let smsc = Smsc::start().await;
    let app = SmppApp::start(backend, quick_settings(smsc.addr), quick_worker()).await;
    // The carrier says what it carries, the same before it starts (what an API process reads)
    // as once it runs.
    use agentmessage::delivery::{registry::CarrierKind, Carrier};
    assert_eq!(app.carrier.capabilities(), CarrierKind::Smpp.capabilities());
    assert!(!app.carrier.capabilities().mms);
    assert_eq!(
        app.app.carrier.capabilities(),
        CarrierKind::Simulated.capabilities()
    );
    assert!(app.app.carrier.capabilities().mms);
    let to = "+12125550100";
    let org = app.app.sender(FROM, to).await;
    let test_key = app.app.test_key(&org).await;
    for key in [&org.key, &test_key] {
        let body = json!({"from": FROM, "to": to, "text": "a picture", "media_urls": ["https://example.com/a.png"]});
        let reply = app.app.send(key, body).await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        assert_eq!(
            error["details"]["media_urls"],
            json!("mms is not supported by this deployment's carrier"),
            "{error}"
        );
    }
    assert!(smsc.seen().is_empty());
}

crate::support::for_each_backend!(
    a_test_keys_sends_complete_while_the_smsc_sees_none,
    mms_is_refused_in_both_modes_while_the_live_carrier_is_smpp,
);
