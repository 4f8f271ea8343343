//! Test mode: `am_test_…` keys see and change only test data, their messages complete the whole
//! lifecycle through the simulated carrier, and the test helper plays the recipient.

use std::time::Duration;

use reqwest::Method;

use crate::support::{json, on_both_backends};

const FROM: &str = "+15551112222";
const TO: &str = "+12125550109";

fn terminal(status: &str) -> bool {
    matches!(status, "delivered" | "undelivered" | "failed")
}

on_both_backends! {
    async fn test_and_live_data_never_meet(app) {
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        let test = app.test_key(&org).await;
        assert!(test.starts_with("am_test_"));

        // Consent is per mode: a live opt-in does not let a test key send, and the reverse.
        app.opt_in(&org, TO).await;
        app.send(&test, json!({"from": FROM, "to": TO, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
        app.call(Method::PUT, &format!("/v1/consents/{TO}"), Some(&test), Some(json!({"source": "api"}))).await.assert_success(200);
        let live_id = app.send(&org.key, json!({"from": FROM, "to": TO, "text": "live"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let test_id = app.send(&test, json!({"from": FROM, "to": TO, "text": "test"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();

        // Messages: each mode lists and reads only its own.
        let listed = |key: String| {
            let app = &app;
            async move {
                let reply = app.call(Method::GET, "/v1/messages", Some(&key), None).await;
                reply.json["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        assert_eq!(listed(org.key.clone()).await, vec![live_id.clone()]);
        assert_eq!(listed(test.clone()).await, vec![test_id.clone()]);
        app.call(Method::GET, &format!("/v1/messages/{test_id}"), Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        app.call(Method::GET, &format!("/v1/messages/{live_id}"), Some(&test), None).await.assert_error(404, "NOT_FOUND");

        // Lookups too.
        app.call(Method::POST, "/v1/lookups", Some(&test), Some(json!({"phone_number": "+12125550122"}))).await.assert_success(201);
        app.call(Method::GET, "/v1/lookups/+12125550122", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        app.call(Method::GET, "/v1/lookups/+12125550122", Some(&test), None).await.assert_success(200);

        // Numbers are shared by both modes.
        let numbers = app.call(Method::GET, "/v1/numbers", Some(&test), None).await;
        assert_eq!(numbers.assert_success(200)[0]["phone_number"], json!(FROM));

        // Keys: a test key lists and makes only test keys.
        let keys = app.call(Method::GET, "/v1/api_keys", Some(&test), None).await;
        let keys = keys.assert_success(200).as_array().unwrap().clone();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["mode"], json!("test"));
        let live_keys = app.call(Method::GET, "/v1/api_keys", Some(&org.key), None).await;
        let live_key_id = live_keys.json["data"][0]["id"].as_str().unwrap().to_owned();
        app.call(Method::DELETE, &format!("/v1/api_keys/{live_key_id}"), Some(&test), None).await.assert_error(404, "NOT_FOUND");
        let made = app.call(Method::POST, "/v1/api_keys", Some(&test), Some(json!({"scopes": ["messages:read"]}))).await;
        let made = made.assert_success(201).clone();
        assert!(made["key"].as_str().unwrap().starts_with("am_test_"));
        assert_eq!(made["mode"], json!("test"));
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&test), Some(json!({"scopes": ["messages:read"], "mode": "live"}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"mode": "must be the calling key's mode (test)"}));

        // The test message completes its lifecycle through the simulated carrier.
        let _worker = app.run_worker(Duration::from_secs(60));
        let data = app.wait_for(&test, &test_id, Duration::from_secs(10), terminal).await;
        assert_eq!(data["status"], json!("delivered"));
    }

    async fn the_test_helper_plays_the_recipient_in_test_mode_only(app) {
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        let test = app.test_key(&org).await;
        app.opt_in(&org, TO).await;
        app.call(Method::PUT, &format!("/v1/consents/{TO}"), Some(&test), Some(json!({"source": "api"}))).await.assert_success(200);
        let stop = json!({"from": TO, "to": FROM, "text": "Stop."});
        // A live key does not know the path.
        app.call(Method::POST, "/v1/test_helpers/inbound", Some(&org.key), Some(stop.clone())).await.assert_error(404, "NOT_FOUND");
        // The recipient's STOP, simulated: test consent is revoked, live consent untouched.
        let reply = app.call(Method::POST, "/v1/test_helpers/inbound", Some(&test), Some(stop)).await;
        let data = reply.assert_success(201).clone();
        assert_eq!(data["keyword"], json!("STOP"));
        assert_eq!(data["message"]["direction"], json!("inbound"));
        app.send(&test, json!({"from": FROM, "to": TO, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
        app.send(&org.key, json!({"from": FROM, "to": TO, "text": "hi"})).await.assert_success(202);
        // Only the recipient's START lifts it, in test mode too.
        app.call(Method::PUT, &format!("/v1/consents/{TO}"), Some(&test), Some(json!({"source": "api"}))).await.assert_error(409, "CONSENT_LOCKED");
        app.call(Method::POST, "/v1/test_helpers/inbound", Some(&test), Some(json!({"from": TO, "to": FROM, "text": "START"}))).await.assert_success(201);
        app.send(&test, json!({"from": FROM, "to": TO, "text": "hi"})).await.assert_success(202);
        // To a number the organization does not own: 422.
        let reply = app.call(Method::POST, "/v1/test_helpers/inbound", Some(&test), Some(json!({"from": TO, "to": "+15559990000", "text": "hi"}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"to": "must be a number owned by your organization"}));
        // The live inbox does not see test traffic.
        let live = app.call(Method::GET, "/v1/messages?direction=inbound", Some(&org.key), None).await;
        assert_eq!(live.json["data"], json!([]));
    }
}
