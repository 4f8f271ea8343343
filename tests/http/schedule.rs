//! Scheduled sends (`send_at`), their cancellation, and a send's own validity
//! (`validity_period`), through HTTP with short timers.

use std::time::Duration;

use agentmessage::service::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{for_each_backend, Backend, TestApp};

const FROM: &str = "+15551112222";
const TO: &str = "+15554443333";

/// An app whose sends may be scheduled from one second to an hour ahead.
async fn scheduling_app(backend: Backend) -> TestApp {
    let settings = Settings {
        schedule_min_lead: Duration::from_secs(1),
        schedule_max_lead: Duration::from_secs(3600),
        ..Settings::default()
    };
    TestApp::start_with(backend, settings).await
}

/// RFC 3339 `ms` milliseconds from now (to the millisecond), written with a +02:00 offset.
fn from_now(ms: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(ms);
    at.with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Schedules `text` to `TO` `ms` milliseconds from now; the message's id.
async fn schedule(app: &TestApp, key: &str, text: &str, ms: i64) -> String {
    let reply = app
        .send(
            key,
            json!({"from": FROM, "to": TO, "text": text, "send_at": from_now(ms)}),
        )
        .await;
    reply.assert_success(202)["id"].as_str().unwrap().to_owned()
}

async fn events(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let reply = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}/events"),
            Some(key),
            None,
        )
        .await;
    reply.assert_success(200).as_array().unwrap().clone()
}

async fn cancel(app: &TestApp, key: &str, id: &str) -> crate::support::Reply {
    app.call(
        Method::POST,
        &format!("/v1/messages/{id}/cancel"),
        Some(key),
        None,
    )
    .await
}

fn terminal(status: &str) -> bool {
    matches!(status, "delivered" | "undelivered" | "failed" | "canceled")
}

/// A scheduled message is `scheduled` (listed under `status=scheduled`, its `send_at` shown),
/// becomes `queued` at its time (an event), and is delivered — never sent before its time.
async fn a_scheduled_message_is_released_at_its_time_and_delivered(backend: Backend) {
    let app = scheduling_app(backend).await;
    let org = app.sender(FROM, TO).await;
    let _worker = app.run_worker(Duration::from_secs(3600));
    let send_at = from_now(2000);
    let reply = app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "later", "send_at": send_at}),
        )
        .await;
    let data = reply.assert_success(202).clone();
    assert_eq!(data["status"], "scheduled", "{data}");
    let id = data["id"].as_str().unwrap().to_owned();
    let shown_at = chrono::DateTime::parse_from_rfc3339(data["send_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        shown_at,
        chrono::DateTime::parse_from_rfc3339(&send_at).unwrap(),
        "{data}"
    );
    let listed = app
        .call(
            Method::GET,
            "/v1/messages?status=scheduled",
            Some(&org.key),
            None,
        )
        .await;
    let listed = listed.assert_success(200).as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], json!(id));
    // Still waiting well before its time.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let waiting = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(waiting.assert_success(200)["status"], "scheduled");
    let delivered = app
        .wait_for(&org.key, &id, Duration::from_secs(15), terminal)
        .await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    let sent_at =
        chrono::DateTime::parse_from_rfc3339(delivered["sent_at"].as_str().unwrap()).unwrap();
    assert!(
        sent_at >= shown_at,
        "sent at {sent_at}, before its send_at {shown_at}"
    );
    let statuses: Vec<String> = events(&app, &org.key, &id)
        .await
        .iter()
        .filter(|e| e["kind"] == "transition")
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses[..2], ["scheduled", "queued"], "{statuses:?}");
    assert_eq!(app.carrier.submissions(id.parse().unwrap()), 1);
}

/// A canceled message is `canceled` and never reaches the carrier; cancel again, or cancel a
/// message sent at once, is 409 `MESSAGE_NOT_CANCELABLE` with its status.
async fn a_canceled_message_never_reaches_the_carrier(backend: Backend) {
    let app = scheduling_app(backend).await;
    let org = app.sender(FROM, TO).await;
    let _worker = app.run_worker(Duration::from_secs(3600));
    let id = schedule(&app, &org.key, "never", 1500).await;
    let canceled = cancel(&app, &org.key, &id).await;
    assert_eq!(canceled.assert_success(200)["status"], "canceled");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let shown = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(shown.assert_success(200)["status"], "canceled");
    assert_eq!(app.carrier.submissions(id.parse().unwrap()), 0);
    let again = cancel(&app, &org.key, &id).await;
    let error = again.assert_error(409, "MESSAGE_NOT_CANCELABLE");
    assert_eq!(error["details"]["status"], "canceled", "{error}");
    let kinds: Vec<String> = events(&app, &org.key, &id)
        .await
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["scheduled", "canceled"]);
    // A message sent at once cannot be canceled.
    let now = app
        .send(&org.key, json!({"from": FROM, "to": TO, "text": "now"}))
        .await;
    let now_id = now.assert_success(202)["id"].as_str().unwrap().to_owned();
    let refused = cancel(&app, &org.key, &now_id).await;
    let error = refused.assert_error(409, "MESSAGE_NOT_CANCELABLE");
    assert!(
        matches!(
            error["details"]["status"].as_str(),
            Some("queued" | "sending" | "sent" | "delivered")
        ),
        "{error}"
    );
    // Another organization's message is not found; so is a malformed id.
    let other = app.org().await;
    cancel(&app, &other.key, &id)
        .await
        .assert_error(404, "NOT_FOUND");
    cancel(&app, &org.key, "not-an-id")
        .await
        .assert_error(404, "NOT_FOUND");
}

/// A cancel under an `Idempotency-Key` is answered the same when retried, and the key cannot
/// be used for another message.
async fn a_cancel_retried_under_its_key_is_answered_the_same(backend: Backend) {
    let app = scheduling_app(backend).await;
    let org = app.sender(FROM, TO).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let reply = app
            .send(
                &org.key,
                json!({"from": FROM, "to": TO, "text": format!("later {n}"), "send_at": from_now(60_000)}),
            )
            .await;
        ids.push(reply.assert_success(202)["id"].as_str().unwrap().to_owned());
    }
    let keyed = |id: &str| {
        app.client
            .post(format!("{}/v1/messages/{id}/cancel", app.base))
            .bearer_auth(&org.key)
            .header("Idempotency-Key", "cancel-1")
    };
    let first = keyed(&ids[0]).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let first_body: Value = first.json().await.unwrap();
    let again = keyed(&ids[0]).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again_body: Value = again.json().await.unwrap();
    assert_eq!(again_body, first_body);
    let other = keyed(&ids[1]).send().await.unwrap();
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["error"]["code"], "IDEMPOTENCY_KEY_REUSED", "{other}");
}

/// A recipient who texts STOP before a scheduled message's time makes it `failed`
/// (`CONSENT_REVOKED`) at its time: consent is checked again then.
async fn a_stop_before_the_time_makes_it_failed(backend: Backend) {
    let app = scheduling_app(backend).await;
    let org = app.sender(FROM, TO).await;
    let _worker = app.run_worker(Duration::from_secs(3600));
    let id = schedule(&app, &org.key, "sale!", 1500).await;
    app.carrier_call(
        "/v1/carrier/inbound",
        json!({"from": TO, "to": FROM, "text": "STOP"}),
    )
    .await
    .assert_success(201);
    let failed = app
        .wait_for(&org.key, &id, Duration::from_secs(15), terminal)
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "CONSENT_REVOKED", "{failed}");
    assert_eq!(app.carrier.submissions(id.parse().unwrap()), 0);
}

/// `send_at` must be an RFC 3339 time with an offset within the deployment's leads;
/// `validity_period` 60 seconds up to the deployment's validity: else 422 naming the field,
/// and nothing is stored.
async fn send_at_and_validity_period_are_checked(backend: Backend) {
    let app = scheduling_app(backend).await;
    let org = app.sender(FROM, TO).await;
    for (field, value, said) in [
        (
            "send_at",
            json!(from_now(-60_000)),
            "must be between 1s and 1h from now",
        ),
        (
            "send_at",
            json!(from_now(200)),
            "must be between 1s and 1h from now",
        ),
        (
            "send_at",
            json!(from_now(2 * 3600 * 1000)),
            "must be between 1s and 1h from now",
        ),
        (
            "send_at",
            json!("2026-12-24T09:00:00"),
            "must be an RFC 3339 time with an offset",
        ),
        (
            "send_at",
            json!("tomorrow"),
            "must be an RFC 3339 time with an offset",
        ),
        (
            "validity_period",
            json!(59),
            "must be a whole number of seconds, at least 60",
        ),
        (
            "validity_period",
            json!("600"),
            "must be a whole number of seconds, at least 60",
        ),
        (
            "validity_period",
            json!(48 * 3600 + 1),
            "must be between 60 and 172800 seconds",
        ),
    ] {
        let mut body = json!({"from": FROM, "to": TO, "text": "checked"});
        body[field] = value.clone();
        let reply = app.send(&org.key, body).await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        let told = error["details"][field].as_str().unwrap_or_default();
        assert!(told.starts_with(said), "{field} {value}: {error}");
    }
    let listed = app
        .call(Method::GET, "/v1/messages", Some(&org.key), None)
        .await;
    assert_eq!(listed.assert_success(200).as_array().unwrap().len(), 0);
}

/// A message with a `validity_period` of its own that no carrier took within it ends
/// `undelivered` (`EXPIRED`), while the deployment's validity (an hour) has far to run.
async fn a_validity_period_expires_a_message_the_carrier_never_took(backend: Backend) {
    let app = scheduling_app(backend).await;
    let org = app.sender(FROM, TO).await;
    // No worker takes it: only the sweep runs (as a worker whose carrier is down would).
    let reply = app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "code 123456", "validity_period": 60}),
        )
        .await;
    let id = reply.assert_success(202)["id"].as_str().unwrap().to_owned();
    app.services.sweep(Duration::from_secs(3600)).await.unwrap();
    let waiting = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(waiting.assert_success(200)["status"], "queued");
    tokio::time::sleep(Duration::from_secs(61)).await;
    app.services.sweep(Duration::from_secs(3600)).await.unwrap();
    let expired = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    let expired = expired.assert_success(200);
    assert_eq!(expired["status"], "undelivered", "{expired}");
    assert_eq!(expired["error_code"], "EXPIRED", "{expired}");
}

for_each_backend!(
    a_scheduled_message_is_released_at_its_time_and_delivered,
    a_canceled_message_never_reaches_the_carrier,
    a_cancel_retried_under_its_key_is_answered_the_same,
    a_stop_before_the_time_makes_it_failed,
    send_at_and_validity_period_are_checked,
    a_validity_period_expires_a_message_the_carrier_never_took,
);
