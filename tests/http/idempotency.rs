//! `Idempotency-Key` on `POST /v1/messages`: replays, reuse, a key still running, what is and is
//! not recorded, retention and takeover — on SQLite and PostgreSQL.

use std::time::Duration;

use agentmessage::service::Settings;
use reqwest::Method;

use crate::support::{json, read, Backend, Reply, TestApp};

const FROM: &str = "+15551112222";
const TO: &str = "+12125550100";

/// `POST /v1/messages` with `key` as `Idempotency-Key` and `body` as raw text.
async fn send_raw(app: &TestApp, api_key: &str, idempotency: &str, body: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .bearer_auth(api_key)
        .header("Idempotency-Key", idempotency)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    read(response).await
}

async fn message_count(app: &TestApp, key: &str) -> usize {
    let reply = app
        .call(Method::GET, "/v1/messages?limit=100", Some(key), None)
        .await;
    reply.assert_success(200).as_array().unwrap().len()
}

async fn app_with(backend: Backend, settings: Settings) -> TestApp {
    TestApp::start_with(backend, settings).await
}

async fn a_retry_gets_the_first_answer_byte_for_byte_whatever_the_key_order(backend: Backend) {
    let app = app_with(backend, Settings::default()).await;
    let org = app.sender(FROM, TO).await;
    let first = send_raw(
        &app,
        &org.key,
        "order-7421-attempt",
        r#"{"from":"+15551112222","to":"+12125550100","text":"hi"}"#,
    )
    .await;
    first.assert_success(202);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = send_raw(
        &app,
        &org.key,
        "order-7421-attempt",
        "{ \"text\": \"hi\",\n \"to\": \"+12125550100\", \"from\": \"+15551112222\" }",
    )
    .await;
    assert_eq!(again.status.as_u16(), 202);
    assert_eq!(again.text, first.text, "the same body byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.header("x-request-id"),
        first.header("x-request-id"),
        "the original request id"
    );
    assert_eq!(message_count(&app, &org.key).await, 1);
    // Another body under the key: refused, nothing sent.
    let other = send_raw(
        &app,
        &org.key,
        "order-7421-attempt",
        r#"{"from":"+15551112222","to":"+12125550100","text":"hello"}"#,
    )
    .await;
    other.assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(message_count(&app, &org.key).await, 1);
    // The same key under another operation or mode is another key.
    let test_key = app.test_key(&org).await;
    app.call(
        Method::PUT,
        &format!("/v1/consents/{TO}"),
        Some(&test_key),
        Some(json!({"source": "web_form"})),
    )
    .await
    .assert_success(200);
    let test_mode = send_raw(
        &app,
        &test_key,
        "order-7421-attempt",
        r#"{"from":"+15551112222","to":"+12125550100","text":"hello"}"#,
    )
    .await;
    test_mode.assert_success(202);
    assert_eq!(test_mode.header("idempotent-replayed"), None);
}

async fn a_malformed_key_is_400_naming_the_header_and_runs_nothing(backend: Backend) {
    let app = app_with(backend, Settings::default()).await;
    let org = app.sender(FROM, TO).await;
    let body = r#"{"from":"+15551112222","to":"+12125550100","text":"hi"}"#;
    for bad in ["x".repeat(256), "tab\there".to_owned()] {
        let reply = send_raw(&app, &org.key, &bad, body).await;
        let error = reply.assert_error(400, "BAD_REQUEST");
        assert!(error["details"]["Idempotency-Key"].is_string(), "{error}");
    }
    let empty = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .bearer_auth(&org.key)
        .header("Idempotency-Key", "")
        .json(&json!({"from": FROM, "to": TO, "text": "hi"}))
        .send()
        .await
        .unwrap();
    read(empty).await.assert_error(400, "BAD_REQUEST");
    assert_eq!(message_count(&app, &org.key).await, 0);
}

async fn rule_refusals_are_recorded_but_rate_limits_are_not(backend: Backend) {
    let app = app_with(backend, Settings::default()).await;
    let org = app.org_with_rate(1, 2).await;
    app.add_number(&org, FROM).await;
    // 453 is the operation's own answer: recorded, and replayed even after the opt-in.
    let body = r#"{"from":"+15551112222","to":"+12125550100","text":"no consent yet"}"#;
    let first = send_raw(&app, &org.key, "k-453", body).await;
    first.assert_error(453, "CONSENT_REQUIRED");
    app.opt_in(&org, TO).await;
    let again = send_raw(&app, &org.key, "k-453", body).await;
    assert_eq!(
        (again.status.as_u16(), again.text.as_str()),
        (453, first.text.as_str())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The replay spent no token: one is left for a new send, then 429 — not recorded, so the
    // same key runs again once the limit allows.
    send_raw(
        &app,
        &org.key,
        "k-ok",
        r#"{"from":"+15551112222","to":"+12125550100","text":"one"}"#,
    )
    .await
    .assert_success(202);
    let limited = send_raw(
        &app,
        &org.key,
        "k-429",
        r#"{"from":"+15551112222","to":"+12125550100","text":"two"}"#,
    )
    .await;
    limited.assert_error(429, "RATE_LIMITED");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = send_raw(
        &app,
        &org.key,
        "k-429",
        r#"{"from":"+15551112222","to":"+12125550100","text":"two"}"#,
    )
    .await;
    later.assert_success(202);
    assert_eq!(later.header("idempotent-replayed"), None);
}

async fn a_hundred_concurrent_sends_with_one_key_make_one_message(backend: Backend) {
    let app = app_with(backend, Settings::default()).await;
    let org = app.sender(FROM, TO).await;
    let body = r#"{"from":"+15551112222","to":"+12125550100","text":"exactly once"}"#;
    let replies =
        futures_util::future::join_all((0..100).map(|_| send_raw(&app, &org.key, "once", body)))
            .await;
    let mut bodies = std::collections::HashSet::new();
    let (mut accepted, mut conflicts) = (0, 0);
    for reply in &replies {
        match reply.status.as_u16() {
            202 => {
                accepted += 1;
                bodies.insert(reply.text.clone());
            }
            409 => {
                reply.assert_error(409, "IDEMPOTENCY_CONFLICT");
                assert!(reply
                    .header("retry-after")
                    .is_some_and(|v| v.parse::<u64>().unwrap() >= 1));
                conflicts += 1;
            }
            other => panic!("answered {other}: {}", reply.text),
        }
    }
    assert!(accepted >= 1, "{accepted} accepted, {conflicts} conflicts");
    assert_eq!(bodies.len(), 1, "every 202 has the same body");
    assert_eq!(
        message_count(&app, &org.key).await,
        1,
        "exactly one message"
    );
}

async fn after_the_retention_the_key_sends_again_and_a_dead_holder_is_taken_over(backend: Backend) {
    let settings = Settings {
        idempotency_retention: Duration::from_millis(400),
        idempotency_takeover: Duration::from_millis(300),
        ..Settings::default()
    };
    let app = app_with(backend, settings).await;
    let org = app.sender(FROM, TO).await;
    let body = r#"{"from":"+15551112222","to":"+12125550100","text":"kept a while"}"#;
    let first = send_raw(&app, &org.key, "short-lived", body).await;
    let first_id = first.assert_success(202)["id"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = send_raw(&app, &org.key, "short-lived", body).await;
    assert_ne!(
        later.assert_success(202)["id"],
        first_id,
        "a new message after the retention"
    );
    assert_eq!(message_count(&app, &org.key).await, 2);
    // The worker's sweep deletes records past their retention.
    let records = || async {
        use sea_orm::{EntityTrait, PaginatorTrait};
        entity::idempotency_record::Entity::find()
            .count(app.store.connection())
            .await
            .unwrap()
    };
    assert_eq!(records().await, 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    app.worker(Default::default()).sweep().await.unwrap();
    assert_eq!(records().await, 0, "purged after the retention");

    // A request that took a key and died without an outcome: 409 until the takeover time, then a
    // retry runs.
    let caller = app.services.authenticate(&org.key).await.unwrap();
    let print =
        agentmessage::domain::idempotency::fingerprint(&serde_json::from_str(body).unwrap());
    let keyed = agentmessage::service::idempotency::Keyed {
        operation: "messages_create",
        key: "orphan",
        fingerprint: &print,
        request_id: "01JTBQH2FZ8K1RXC0WJ4Z9P3VM",
    };
    assert!(matches!(
        app.services
            .begin_idempotent(&caller, &keyed)
            .await
            .unwrap(),
        agentmessage::domain::idempotency::Begun::Run(_)
    ));
    send_raw(&app, &org.key, "orphan", body)
        .await
        .assert_error(409, "IDEMPOTENCY_CONFLICT");
    tokio::time::sleep(Duration::from_millis(350)).await;
    send_raw(&app, &org.key, "orphan", body)
        .await
        .assert_success(202);
    assert_eq!(message_count(&app, &org.key).await, 3);
}

crate::support::for_each_backend!(
    a_retry_gets_the_first_answer_byte_for_byte_whatever_the_key_order,
    a_malformed_key_is_400_naming_the_header_and_runs_nothing,
    rule_refusals_are_recorded_but_rate_limits_are_not,
    a_hundred_concurrent_sends_with_one_key_make_one_message,
    after_the_retention_the_key_sends_again_and_a_dead_holder_is_taken_over,
    a_lookup_is_replayed_and_its_replays_spend_no_token,
);

/// `POST /v1/lookups` with `Idempotency-Key`.
async fn look_up_keyed(app: &TestApp, api_key: &str, idempotency: &str, number: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/v1/lookups", app.base))
        .bearer_auth(api_key)
        .header("Idempotency-Key", idempotency)
        .json(&json!({"phone_number": number}))
        .send()
        .await
        .expect("request");
    read(response).await
}

async fn a_lookup_is_replayed_and_its_replays_spend_no_token(backend: Backend) {
    let app = app_with(backend, Settings::default()).await;
    let org = app.org_with_rate(1, 2).await;
    let first = look_up_keyed(&app, &org.key, "lookup-1", "+12125550120").await;
    first.assert_success(201);
    for _ in 0..3 {
        let again = look_up_keyed(&app, &org.key, "lookup-1", "+12125550120").await;
        assert_eq!(
            (again.status.as_u16(), again.text.as_str()),
            (201, first.text.as_str())
        );
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    look_up_keyed(&app, &org.key, "lookup-1", "+12125550121")
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    // One token left after the first lookup: the replays and the refusal spent none.
    look_up_keyed(&app, &org.key, "lookup-2", "+12125550121")
        .await
        .assert_success(201);
    look_up_keyed(&app, &org.key, "lookup-3", "+12125550122")
        .await
        .assert_error(429, "RATE_LIMITED");
    assert_eq!(app.lookups.calls(), 2, "the vendor was asked twice");
}
