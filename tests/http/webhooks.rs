//! Webhook endpoints and deliveries through the real app: registration and its checks, signed
//! deliveries verified by the `standardwebhooks` package, retries, order, rotation, 410, the
//! deliveries list, test mode, and a restart after kill -9 — on SQLite and PostgreSQL.

use std::time::Duration;

use agentmessage::{
    delivery::{WebhookSettings, WorkerSettings},
    service::{webhooks::WebhookRules, Settings},
};
use reqwest::Method;
use serde_json::Value;

use crate::receiver::{Answer, Received, Receiver};
use crate::support::{json, Backend, Org, RunningWorker, TestApp};

const FROM: &str = "+15551112222";
const TO: &str = "+12125550100";
/// The operator key of the test apps (32 bytes, base64).
pub const SECRET_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const EVERYTHING: [&str; 6] = [
    "message.sent",
    "message.delivered",
    "message.undelivered",
    "message.failed",
    "message.received",
    "consent.updated",
];

pub(crate) fn settings(allow_private: bool) -> Settings {
    Settings {
        webhooks: WebhookRules {
            sealing: Some(std::sync::Arc::new(
                agentmessage::domain::webhooks::SealingKeys::from_setting(SECRET_KEY).unwrap(),
            )),
            allow_private,
            ..Default::default()
        },
        ..Settings::default()
    }
}

/// A worker whose dispatcher retries within milliseconds.
pub(crate) fn run_worker(app: &TestApp, allow_private: bool) -> RunningWorker {
    let settings = WorkerSettings {
        poll: Duration::from_millis(20),
        sweep_every: Duration::from_millis(100),
        webhooks: WebhookSettings {
            timeout: Duration::from_secs(2),
            schedule: vec![Duration::from_millis(50); 9],
            poll: Duration::from_millis(20),
            allow_private,
            ..Default::default()
        },
        ..Default::default()
    };
    let worker = app.worker(settings);
    RunningWorker::spawn(worker)
}

pub(crate) async fn register(
    app: &TestApp,
    key: &str,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let reply = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(key),
            Some(json!({"url": url, "events": events})),
        )
        .await;
    let data = reply.assert_success(201);
    (
        data["id"].as_str().unwrap().to_owned(),
        data["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send(app: &TestApp, org: &Org, text: &str) -> String {
    let reply = app
        .call(
            Method::POST,
            "/v1/messages",
            Some(&org.key),
            Some(json!({"from": FROM, "to": TO, "text": text})),
        )
        .await;
    reply.assert_success(202)["id"].as_str().unwrap().to_owned()
}

/// Checks every request's signatures with the `standardwebhooks` package, under each secret.
fn verified_by_standardwebhooks(got: &[Received], secrets: &[&str]) -> Vec<bool> {
    let cases: Vec<Value> = secrets
        .iter()
        .flat_map(|secret| {
            got.iter().map(move |r| {
                json!({"secret": secret, "id": r.id, "timestamp": r.timestamp.parse::<i64>().unwrap(), "body": r.body, "signature": r.signature})
            })
        })
        .collect();
    crate::webhook_signatures::verify_with_standardwebhooks(&cases)
}

async fn endpoints_are_registered_listed_changed_rotated_and_deleted(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let org = app.org().await;
    let create = json!({"url": "https://example.com/hooks", "events": ["message.delivered"], "description": "fulfilment"});
    let keyed = |body: Value| {
        app.client
            .post(format!("{}/v1/webhook_endpoints", app.base))
            .bearer_auth(&org.key)
            .header("Idempotency-Key", "endpoint-1")
            .json(&body)
            .send()
    };
    let first = crate::support::read(keyed(create.clone()).await.unwrap()).await;
    let made = first.assert_success(201).clone();
    let secret = made["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 44,
        "{secret}"
    );
    assert_eq!(made["events"], json!(["message.delivered"]));
    assert_eq!(
        (made["enabled"].clone(), made["mode"].clone()),
        (json!(true), json!("live"))
    );
    // The replay repeats the answer, secret included, and registers nothing twice.
    let again = crate::support::read(keyed(create.clone()).await.unwrap()).await;
    assert_eq!(
        (again.status.as_u16(), again.text.as_str()),
        (201, first.text.as_str())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    crate::support::read(
        keyed(json!({"url": "https://example.com/other", "events": ["message.sent"]}))
            .await
            .unwrap(),
    )
    .await
    .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    // Nothing in the database holds the secret in the clear: not the endpoint, not the answer
    // recorded for the key (the replay above showed it, opened).
    {
        use sea_orm::ConnectionTrait;
        let db = app.store.connection();
        for (table, column) in [
            ("webhook_endpoints", "secret"),
            ("idempotency_records", "response_body"),
        ] {
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT {column} AS stored FROM {table}"),
                ))
                .await
                .unwrap();
            let stored: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String>("", "stored").unwrap())
                .collect();
            assert!(!stored.is_empty(), "{table}");
            assert!(
                stored
                    .iter()
                    .all(|v| !v.contains(&secret[6..]) && !v.contains("whsec_")),
                "{table} holds the secret in the clear: {stored:?}"
            );
        }
    }

    let id = made["id"].as_str().unwrap();
    let list = app
        .call(Method::GET, "/v1/webhook_endpoints", Some(&org.key), None)
        .await;
    let listed = list.assert_success(200).as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].get("secret").is_none(),
        "a secret is never listed"
    );
    assert!(!list.text.contains(secret));
    let shown = app
        .call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    assert!(
        !shown.text.contains(secret) && shown.assert_success(200)["description"] == "fulfilment"
    );

    let changed = app
        .call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&org.key),
            Some(json!({"events": ["message.sent", "consent.updated"], "enabled": false, "description": ""})),
        )
        .await;
    let changed = changed.assert_success(200);
    assert_eq!(
        changed["events"],
        json!(["message.sent", "consent.updated"])
    );
    assert_eq!(
        (changed["enabled"].clone(), changed["description"].clone()),
        (json!(false), Value::Null)
    );
    app.call(
        Method::PATCH,
        &format!("/v1/webhook_endpoints/{id}"),
        Some(&org.key),
        Some(json!({"events": ["message.gone"]})),
    )
    .await
    .assert_error(422, "VALIDATION_FAILED");
    let changed = app
        .call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&org.key),
            Some(json!({"events": [], "enabled": "yes"})),
        )
        .await;
    assert_eq!(
        changed.assert_error(422, "VALIDATION_FAILED")["details"],
        json!({"events": "must have 1 to 7 event types", "enabled": "must be true or false"})
    );

    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{id}/rotate_secret"),
            Some(&org.key),
            None,
        )
        .await;
    let new_secret = rotated.assert_success(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    // Scopes: a key without webhooks:write cannot register; without webhooks:read cannot list.
    let (_, narrow) = app
        .services
        .insert_key(
            org.id,
            None,
            &agentmessage::domain::ScopeSet::parse_list("messages:send").unwrap(),
            agentmessage::domain::organization::KeyMode::Live,
        )
        .await
        .unwrap();
    let refused = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(&narrow),
            Some(create.clone()),
        )
        .await;
    assert_eq!(
        refused.assert_error(403, "FORBIDDEN")["details"]["required_scope"],
        "webhooks:write"
    );
    let refused = app
        .call(Method::GET, "/v1/webhook_endpoints", Some(&narrow), None)
        .await;
    assert_eq!(
        refused.assert_error(403, "FORBIDDEN")["details"]["required_scope"],
        "webhooks:read"
    );
    // Another organization sees nothing of it.
    let other = app.org().await;
    app.call(
        Method::GET,
        &format!("/v1/webhook_endpoints/{id}"),
        Some(&other.key),
        None,
    )
    .await
    .assert_error(404, "NOT_FOUND");

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(deleted.assert_success(200)["id"], id);
    app.call(
        Method::GET,
        &format!("/v1/webhook_endpoints/{id}"),
        Some(&org.key),
        None,
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

async fn private_and_metadata_destinations_are_refused_unless_allowed(backend: Backend) {
    let app = TestApp::start_with(backend, settings(false)).await;
    let org = app.org().await;
    for url in [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/hooks",
        "http://[::1]/",
        "http://[fd00:ec2::254]/",
        "http://198.18.0.1/",
        "http://203.0.113.9/",
        "http://240.0.0.1/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::1]/",
        "http://[fec0::1]/",
    ] {
        let reply = app
            .call(
                Method::POST,
                "/v1/webhook_endpoints",
                Some(&org.key),
                Some(json!({"url": url, "events": ["message.sent"]})),
            )
            .await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        assert!(
            error["details"]["url"]
                .as_str()
                .unwrap()
                .starts_with("must not point to"),
            "{url}: {error}"
        );
    }
    let reply = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(&org.key),
            Some(json!({"url": "ftp://example.com/", "events": ["message.sent"]})),
        )
        .await;
    reply.assert_error(422, "VALIDATION_FAILED");
    let reply = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(&org.key),
            Some(json!({"url": "https://example.com:0/hooks", "events": ["message.sent"]})),
        )
        .await;
    let error = reply.assert_error(422, "VALIDATION_FAILED");
    assert_eq!(
        error["details"]["url"],
        json!("must not use port 0"),
        "{error}"
    );
    // Event types: every value is named when one is unknown; a repeat names both places.
    let reply = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(&org.key),
            Some(json!({"url": "https://example.com/hooks", "events": ["message.sent", "message.read"], "description": null})),
        )
        .await;
    assert_eq!(
        reply.assert_error(422, "VALIDATION_FAILED")["details"],
        json!({
            "events": "item 2 must be one of: message.sent, message.delivered, message.undelivered, message.failed, message.received, message.canceled, consent.updated",
            "description": "must not be null"
        })
    );
    let reply = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(&org.key),
            Some(json!({"url": "https://example.com/hooks", "events": ["message.sent", "message.failed", "message.sent"]})),
        )
        .await;
    assert_eq!(
        reply.assert_error(422, "VALIDATION_FAILED")["details"],
        json!({"events": "item 3 repeats item 1"})
    );
    assert_eq!(
        app.call(Method::GET, "/v1/webhook_endpoints", Some(&org.key), None)
            .await
            .assert_success(200),
        &json!([])
    );
    // A deployment that allows private destinations takes them.
    let open = TestApp::start_with(backend, settings(true)).await;
    let org = open.org().await;
    for url in ["http://127.0.0.1/", "http://localhost:8080/hooks"] {
        register(&open, &org.key, url, &["message.sent"]).await;
    }
    // Without an operator key, the server refuses and says why.
    let bare = TestApp::start_with(backend, Settings::default()).await;
    let org = bare.org().await;
    bare.call(
        Method::POST,
        "/v1/webhook_endpoints",
        Some(&org.key),
        Some(json!({"url": "https://example.com/", "events": ["message.sent"]})),
    )
    .await
    .assert_error(501, "WEBHOOKS_NOT_CONFIGURED");
}

/// A destination allowed when it was registered is checked again at each attempt: the
/// dispatcher of a deployment that does not allow private addresses never connects to one.
async fn the_destination_is_checked_again_at_delivery(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let org = app.sender(FROM, TO).await;
    let (endpoint, _) = register(&app, &org.key, &receiver.url, &["message.sent"]).await;
    let _worker = run_worker(&app, false);
    send(&app, &org, "hello").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = app
            .call(
                Method::GET,
                &format!("/v1/webhook_endpoints/{endpoint}/deliveries"),
                Some(&org.key),
                None,
            )
            .await;
        let deliveries = list.assert_success(200).as_array().unwrap().clone();
        if let Some(error) = deliveries.first().and_then(|d| d["last_error"].as_str()) {
            assert!(
                error.contains("127.0.0.1") && error.contains("not allowed"),
                "{error}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt was recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver.got().is_empty(),
        "the private address was never reached"
    );
}

/// Per message, the acknowledged events' sequences rise, and each event id is acknowledged once.
fn assert_once_each_and_in_order(acknowledged: &[Received]) {
    let mut ids: Vec<&str> = acknowledged.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "an event was acknowledged twice");
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    for r in acknowledged {
        let body = r.json();
        assert_eq!(body["id"], r.id.as_str(), "webhook-id is the event id");
        if let Some(sequence) = body["sequence"].as_i64() {
            let message = body["data"]["id"].as_str().unwrap().to_owned();
            let before = last.insert(message, sequence).unwrap_or(0);
            assert!(
                sequence > before,
                "message events out of order: {sequence} after {before}"
            );
        }
    }
}

async fn a_receiver_that_refuses_at_first_gets_every_event_once_in_order(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let receiver = Receiver::start(Answer::FailFirst {
        count: 5,
        status: 503,
    })
    .await;
    let org = app.sender(FROM, TO).await;
    let (endpoint, secret) = register(&app, &org.key, &receiver.url, &EVERYTHING).await;
    let _worker = run_worker(&app, true);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(send(&app, &org, &format!("order {n} shipped")).await);
    }
    // Each message: sent, then delivered.
    receiver
        .wait_until(Duration::from_secs(30), |got| got.len() >= 8)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acknowledged = receiver
        .acknowledged()
        .into_iter()
        .filter(|r| r.json()["type"] != "consent.updated")
        .collect::<Vec<_>>();
    assert_eq!(acknowledged.len(), 8, "nothing acknowledged twice");
    assert_once_each_and_in_order(&acknowledged);
    for id in &ids {
        let types: Vec<String> = acknowledged
            .iter()
            .filter(|r| r.json()["data"]["id"] == id.as_str())
            .map(|r| r.json()["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["message.sent", "message.delivered"], "message {id}");
    }
    // The payload's data is the resource as GET shows it at that moment.
    let delivered = acknowledged
        .iter()
        .find(|r| r.json()["type"] == "message.delivered")
        .unwrap()
        .json();
    let message = delivered["data"]["id"].as_str().unwrap();
    let now = app
        .call(
            Method::GET,
            &format!("/v1/messages/{message}"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(&delivered["data"], now.assert_success(200));
    let sent = acknowledged
        .iter()
        .find(|r| r.json()["type"] == "message.sent" && r.json()["data"]["id"] == message)
        .unwrap()
        .json();
    assert_eq!(sent["data"]["status"], "sent");
    // Refused attempts were retried with the same webhook-id, and every signature verifies.
    let got = receiver.got();
    assert!(got.iter().filter(|r| r.answered == 503).count() == 5);
    assert!(got
        .iter()
        .filter(|r| r.answered == 503)
        .all(|r| got.iter().any(|a| a.id == r.id && a.answered == 204)));
    assert!(verified_by_standardwebhooks(&got, &[&secret])
        .iter()
        .all(|ok| *ok));
    // The deliveries list shows the attempts.
    let list = app
        .call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{endpoint}/deliveries?limit=100"),
            Some(&org.key),
            None,
        )
        .await;
    let deliveries = list.assert_success(200).as_array().unwrap().clone();
    assert!(deliveries
        .iter()
        .all(|d| d["state"] == "delivered" && d["last_status_code"] == 204));
    assert!(deliveries.iter().any(|d| d["attempts"].as_i64() > Some(1)));
}

async fn during_a_rotation_both_secrets_sign_and_either_verifies(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let org = app.sender(FROM, TO).await;
    let (endpoint, old) = register(&app, &org.key, &receiver.url, &["message.sent"]).await;
    let rotated = app
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{endpoint}/rotate_secret"),
            Some(&org.key),
            None,
        )
        .await;
    let new = rotated.assert_success(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let _worker = run_worker(&app, true);
    send(&app, &org, "rotating").await;
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    assert_eq!(
        got[0].signature.split(' ').count(),
        2,
        "{}",
        got[0].signature
    );
    assert_eq!(
        verified_by_standardwebhooks(
            &got[..1],
            &[&old, &new, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        ),
        vec![true, true, false]
    );
}

/// `POST …/rotate_secret`, with `Idempotency-Key` when given.
async fn rotate(
    app: &TestApp,
    key: &str,
    endpoint: &str,
    idempotency: Option<&str>,
) -> crate::support::Reply {
    let mut request = app
        .client
        .post(format!(
            "{}/v1/webhook_endpoints/{endpoint}/rotate_secret",
            app.base
        ))
        .bearer_auth(key);
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    crate::support::read(request.send().await.expect("request")).await
}

/// Each secret rotated away signs until its own overlap ends, whatever rotations follow: three
/// rotations make four signatures, each verified by the `standardwebhooks` package; a fourth
/// is 409 `LIMIT_REACHED` until the oldest one's overlap ends. A retried rotation under one
/// `Idempotency-Key` rotates once.
async fn every_rotated_secret_signs_until_its_own_overlap_ends(backend: Backend) {
    let overlap = Duration::from_secs(6);
    let mut rules = settings(true);
    rules.webhooks.secret_overlap = overlap;
    let app = TestApp::start_with(backend, rules).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let org = app.sender(FROM, TO).await;
    let (endpoint, first) = register(&app, &org.key, &receiver.url, &["message.sent"]).await;
    let began = std::time::Instant::now();

    // Under one Idempotency-Key, a retry replays the same new secret and rotates nothing more.
    let second = rotate(&app, &org.key, &endpoint, Some("rotation-1")).await;
    let second_secret = second.assert_success(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = rotate(&app, &org.key, &endpoint, Some("rotation-1")).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.assert_success(200)["secret"], json!(second_secret));
    let (other, _) = register(&app, &org.key, &receiver.url, &["consent.updated"]).await;
    rotate(&app, &org.key, &other, Some("rotation-1"))
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");

    let third = rotate(&app, &org.key, &endpoint, None).await;
    let third_secret = third.assert_success(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let fourth = rotate(&app, &org.key, &endpoint, None).await;
    let current = fourth.assert_success(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let last_rotation = std::time::Instant::now();
    let refused = rotate(&app, &org.key, &endpoint, None).await;
    assert_eq!(
        refused.assert_error(409, "LIMIT_REACHED")["details"],
        json!({"limit": "3"})
    );

    let _worker = run_worker(&app, true);
    send(&app, &org, "four secrets").await;
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    assert!(
        began.elapsed() < overlap,
        "the overlap passed before the delivery"
    );
    assert_eq!(
        got[0].signature.split(' ').count(),
        4,
        "{}",
        got[0].signature
    );
    assert_eq!(
        verified_by_standardwebhooks(
            &got[..1],
            &[
                &first,
                &second_secret,
                &third_secret,
                &current,
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            ]
        ),
        vec![true, true, true, true, false]
    );

    // Past the overlap the rotated secrets stop signing, and rotating is possible again.
    tokio::time::sleep(
        overlap.saturating_sub(last_rotation.elapsed()) + Duration::from_millis(300),
    )
    .await;
    let fifth = rotate(&app, &org.key, &endpoint, None).await;
    let newest = fifth.assert_success(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&app, &org, "two secrets").await;
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| got.len() >= 2)
        .await;
    assert_eq!(
        got[1].signature.split(' ').count(),
        2,
        "{}",
        got[1].signature
    );
    assert_eq!(
        verified_by_standardwebhooks(&got[1..2], &[&first, &current, &newest]),
        vec![false, true, true]
    );
}

/// What an attempt that got no answer records is a coarse class: a closed port and one whose
/// connections hang (a listener whose backlog is full) read the same, so `last_error` cannot
/// tell them apart; a TLS failure says so.
async fn last_error_keeps_coarse_classes_only(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let org = app.org().await;
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    // A listener that never accepts, with its backlog filled: further connections hang.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let hanging = socket.listen(1).unwrap();
    let hanging_addr = hanging.local_addr().unwrap();
    let mut fillers = vec![];
    for _ in 0..4 {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(hanging_addr),
        )
        .await
        {
            fillers.push(c);
        }
    }
    let plain = Receiver::start(Answer::Accept).await;
    let tls_url = plain.url.replacen("http://", "https://", 1);
    let mut endpoints = vec![];
    for url in [
        format!("http://{closed}/hooks"),
        format!("http://{hanging_addr}/hooks"),
        tls_url,
    ] {
        let (id, _) = register(&app, &org.key, &url, &["consent.updated"]).await;
        endpoints.push(id);
    }
    let _worker = run_worker(&app, true);
    app.opt_in(&org, TO).await;
    let mut errors = vec![];
    for id in &endpoints {
        let mut last_error = Value::Null;
        for _ in 0..100 {
            let listed = app
                .call(
                    Method::GET,
                    &format!("/v1/webhook_endpoints/{id}/deliveries"),
                    Some(&org.key),
                    None,
                )
                .await;
            last_error = listed.assert_success(200)[0]["last_error"].clone();
            if last_error.is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        errors.push(last_error);
    }
    assert_eq!(
        errors,
        vec![
            json!("the connection could not be made"),
            json!("the connection could not be made"),
            json!("the TLS handshake failed"),
        ]
    );
    drop(fillers);
}

async fn consent_inbound_and_test_mode_events_reach_their_own_endpoints(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let live = Receiver::start(Answer::Accept).await;
    let test = Receiver::start(Answer::Accept).await;
    let org = app.org().await;
    app.add_number(&org, FROM).await;
    register(
        &app,
        &org.key,
        &live.url,
        &["consent.updated", "message.received"],
    )
    .await;
    let test_key = app.test_key(&org).await;
    register(&app, &test_key, &test.url, &EVERYTHING).await;
    let _worker = run_worker(&app, true);
    app.opt_in(&org, TO).await;
    // The recipient texts STOP: an inbound message and a keyword opt-out.
    app.carrier_call(
        "/v1/carrier/inbound",
        json!({"from": TO, "to": FROM, "text": "STOP", "carrier_message_id": "in-1"}),
    )
    .await
    .assert_success(201);
    let got = live
        .wait_until(Duration::from_secs(20), |got| got.len() >= 3)
        .await;
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "consent.updated").count(),
        2,
        "{types:?}"
    );
    assert!(types.contains(&"message.received".to_owned()));
    let consents: Vec<Value> = got
        .iter()
        .map(Received::json)
        .filter(|b| b["type"] == "consent.updated")
        .collect();
    assert_eq!(consents[0]["data"]["status"], "opted_in");
    assert_eq!(
        (
            consents[1]["data"]["status"].clone(),
            consents[1]["data"]["source"].clone()
        ),
        (json!("opted_out"), json!("keyword"))
    );
    assert!(consents[0].get("sequence").is_none());
    let received = got
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "message.received")
        .unwrap();
    assert_eq!(
        (
            received["data"]["text"].clone(),
            received["sequence"].clone()
        ),
        (json!("STOP"), json!(1))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        test.got().is_empty(),
        "a test-mode endpoint receives no live event"
    );
    assert_eq!(live.got().len(), 3);
}

async fn gone_disables_the_endpoint_and_a_delivery_can_be_retried(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let receiver = Receiver::start(Answer::Always(410)).await;
    let org = app.sender(FROM, TO).await;
    let (endpoint, _) = register(&app, &org.key, &receiver.url, &["message.sent"]).await;
    let _worker = run_worker(&app, true);
    send(&app, &org, "to a gone endpoint").await;
    let path = format!("/v1/webhook_endpoints/{endpoint}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = app
            .call(Method::GET, &path, Some(&org.key), None)
            .await
            .assert_success(200)
            .clone();
        if shown["enabled"] == false {
            break shown;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint stayed enabled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(shown["disabled_reason"].as_str().unwrap().contains("410"));
    let list = app
        .call(
            Method::GET,
            &format!("{path}/deliveries"),
            Some(&org.key),
            None,
        )
        .await;
    let delivery = list.assert_success(200)[0].clone();
    assert_eq!(
        (
            delivery["state"].clone(),
            delivery["last_status_code"].clone(),
            delivery["attempts"].clone()
        ),
        (json!("failed"), json!(410), json!(1))
    );
    // While disabled, new events are not recorded for it.
    send(&app, &org, "while disabled").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 1);
    // Re-enabled and retried: the same event (same webhook-id) arrives again.
    receiver.set(Answer::Accept);
    app.call(
        Method::PATCH,
        &path,
        Some(&org.key),
        Some(json!({"enabled": true})),
    )
    .await
    .assert_success(200);
    let delivery_id = delivery["id"].as_str().unwrap();
    let retried = app
        .call(
            Method::POST,
            &format!("{path}/deliveries/{delivery_id}/retry"),
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(retried.assert_success(200)["state"], "pending");
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    assert_eq!(got[0].id, delivery["event_id"].as_str().unwrap());
    app.call(
        Method::POST,
        &format!("{path}/deliveries/{}/retry", uuid::Uuid::nil()),
        Some(&org.key),
        None,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.call(
        Method::GET,
        &format!("{path}/deliveries?cursor=nope"),
        Some(&org.key),
        None,
    )
    .await
    .assert_error(400, "BAD_REQUEST");
}

/// A `Retry-After` replaces the schedule's wait; after the schedule's last wait the delivery is
/// `failed`; and once finished past the retention, an event and its deliveries are deleted.
async fn retry_after_is_honoured_the_schedule_ends_in_failed_and_old_events_go(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let receiver = Receiver::start(Answer::Always(500)).await;
    let slow = Receiver::start(Answer::RetryAfter { seconds: 1 }).await;
    let hasty = Receiver::start(Answer::RetryAfter { seconds: 0 }).await;
    let org = app.sender(FROM, TO).await;
    let (failing, _) = register(&app, &org.key, &receiver.url, &["message.sent"]).await;
    let (asking, _) = register(&app, &org.key, &slow.url, &["message.sent"]).await;
    let (hurrying, _) = register(&app, &org.key, &hasty.url, &["message.sent"]).await;
    let worker = app.worker(WorkerSettings {
        poll: Duration::from_millis(20),
        webhooks: WebhookSettings {
            timeout: Duration::from_secs(2),
            schedule: vec![Duration::from_millis(20), Duration::from_millis(20)],
            poll: Duration::from_millis(20),
            allow_private: true,
            retention: Duration::from_secs(1),
            sweep_every: Duration::from_millis(100),
            retry_after_floor: Duration::from_millis(400),
            ..Default::default()
        },
        ..Default::default()
    });
    let _worker = RunningWorker::spawn(worker);
    send(&app, &org, "retried").await;
    // Three attempts (the first and one per wait of the schedule), then failed.
    let path = format!("/v1/webhook_endpoints/{failing}/deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let list = app.call(Method::GET, &path, Some(&org.key), None).await;
        let first = list
            .assert_success(200)
            .as_array()
            .unwrap()
            .first()
            .cloned();
        if let Some(d) = first.filter(|d| d["state"] == "failed") {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery never failed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (
            failed["attempts"].clone(),
            failed["last_status_code"].clone(),
            failed["next_attempt_at"].clone()
        ),
        (json!(3), json!(500), Value::Null)
    );
    assert_eq!(receiver.got().len(), 3);
    // The endpoint that asked for a second waited a second, not the schedule's 20 ms.
    let got = slow
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    let all = slow.got();
    assert!(
        all.len() >= 2 && all[1].at.duration_since(all[0].at) >= Duration::from_millis(950),
        "{:?}",
        all.iter().map(|r| r.at).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), 1);
    // The endpoint that asked for no wait at all (`Retry-After: 0`) waited the floor.
    hasty
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    let hurried = hasty.got();
    assert!(
        hurried[1].at.duration_since(hurried[0].at) >= Duration::from_millis(380),
        "{:?}",
        hurried.iter().map(|r| r.at).collect::<Vec<_>>()
    );
    // Past the retention, the finished events are deleted with their deliveries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for endpoint in [&failing, &asking, &hurrying] {
        let path = format!("/v1/webhook_endpoints/{endpoint}/deliveries");
        loop {
            let list = app.call(Method::GET, &path, Some(&org.key), None).await;
            if list.assert_success(200).as_array().unwrap().is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "old deliveries stayed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `POST …/test`: a signed `webhook.test` event to that endpoint alone (another endpoint of the
/// organization gets nothing), verified by the `standardwebhooks` package; the type cannot be
/// subscribed to; another organization's endpoint is 404; a reader's key is 403.
async fn a_test_event_reaches_the_one_endpoint_signed(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let bystander = Receiver::start(Answer::Accept).await;
    let org = app.org().await;
    let (endpoint, secret) = register(&app, &org.key, &receiver.url, &["consent.updated"]).await;
    register(&app, &org.key, &bystander.url, &EVERYTHING).await;
    let _worker = run_worker(&app, true);
    let reply = app
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{endpoint}/test"),
            Some(&org.key),
            None,
        )
        .await;
    let delivery = reply.assert_success(202).clone();
    assert_eq!(delivery["event_type"], json!("webhook.test"));
    assert_eq!(delivery["state"], json!("pending"));
    assert_eq!(delivery["endpoint_id"], json!(endpoint));
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    let body = got[0].json();
    assert_eq!(body["type"], json!("webhook.test"));
    assert_eq!(body["id"], delivery["event_id"]);
    assert_eq!(body["data"]["endpoint_id"], json!(endpoint));
    assert!(body["data"]["text"]
        .as_str()
        .unwrap()
        .contains("test event"));
    assert_eq!(
        verified_by_standardwebhooks(&got[..1], &[&secret]),
        vec![true]
    );
    // The delivery is listed, and ends delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = app
            .call(
                Method::GET,
                &format!("/v1/webhook_endpoints/{endpoint}/deliveries"),
                Some(&org.key),
                None,
            )
            .await;
        let data = list.assert_success(200).as_array().unwrap().clone();
        assert_eq!(data.len(), 1);
        if data[0]["state"] == json!("delivered") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{data:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bystander.got().is_empty(), "another endpoint got the test");
    // Nobody subscribes to it.
    let reply = app
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(&org.key),
            Some(json!({"url": receiver.url, "events": ["webhook.test"]})),
        )
        .await;
    let details = reply.assert_error(422, "VALIDATION_FAILED")["details"].clone();
    assert!(
        details["events"]
            .as_str()
            .unwrap()
            .starts_with("item 1 must be one of: message.sent"),
        "{details}"
    );
    // Another organization's endpoint, or no endpoint: 404; a key without webhooks:write: 403.
    let other = app.org().await;
    app.call(
        Method::POST,
        &format!("/v1/webhook_endpoints/{endpoint}/test"),
        Some(&other.key),
        None,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.call(
        Method::POST,
        &format!("/v1/webhook_endpoints/{}/test", uuid::Uuid::now_v7()),
        Some(&org.key),
        None,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let made = app
        .call(
            Method::POST,
            "/v1/api_keys",
            Some(&org.key),
            Some(json!({"scopes": ["webhooks:read"]})),
        )
        .await;
    let reader = made.assert_success(201)["key"].as_str().unwrap().to_owned();
    let refused = app
        .call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{endpoint}/test"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(
        refused.assert_error(403, "FORBIDDEN")["details"]["required_scope"],
        json!("webhooks:write")
    );
    assert_eq!(receiver.got().len(), 1, "one test, one delivery");
}

crate::support::for_each_backend!(
    a_test_event_reaches_the_one_endpoint_signed,
    retry_after_is_honoured_the_schedule_ends_in_failed_and_old_events_go,
    endpoints_are_registered_listed_changed_rotated_and_deleted,
    private_and_metadata_destinations_are_refused_unless_allowed,
    the_destination_is_checked_again_at_delivery,
    a_receiver_that_refuses_at_first_gets_every_event_once_in_order,
    during_a_rotation_both_secrets_sign_and_either_verifies,
    every_rotated_secret_signs_until_its_own_overlap_ends,
    last_error_keeps_coarse_classes_only,
    consent_inbound_and_test_mode_events_reach_their_own_endpoints,
    gone_disables_the_endpoint_and_a_delivery_can_be_retried,
    rotating_without_the_secret_key_is_refused_as_not_configured,
);

/// An endpoint made under a secret key, on a deployment whose key was then removed: through
/// HTTP, rotating its secret is `WEBHOOKS_NOT_CONFIGURED` (501), and an unknown endpoint is still
/// 404 first.
async fn rotating_without_the_secret_key_is_refused_as_not_configured(backend: Backend) {
    let app = TestApp::start_with(backend, settings(true)).await;
    let org = app.org().await;
    let (endpoint, _) = register(
        &app,
        &org.key,
        "https://example.com/hooks",
        &["message.sent"],
    )
    .await;
    // The same database served again without the secret key.
    let keyless = agentmessage::service::Services::new(app.store.clone(), Settings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(agentmessage::server::serve(
        listener,
        agentmessage::app(keyless),
        Default::default(),
        std::future::pending(),
    ));
    let rotate = |id: String| {
        let (client, base, key) = (app.client.clone(), base.clone(), org.key.clone());
        async move {
            crate::support::read(
                client
                    .post(format!("{base}/v1/webhook_endpoints/{id}/rotate_secret"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let refused = rotate(endpoint).await;
    refused.assert_error(501, "WEBHOOKS_NOT_CONFIGURED");
    rotate(uuid::Uuid::now_v7().to_string())
        .await
        .assert_error(404, "NOT_FOUND");
}

/// The real binary, killed with SIGKILL after a status change whose event is not yet delivered
/// (the receiver refuses it): after a restart on the same database, the event is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_written_before_a_kill_is_delivered_after_the_restart() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/agentmessage.db", dir.path().display());
    let receiver = Receiver::start(Answer::Always(500)).await;
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let start = |port: u16, demo: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentmessage"));
        command
            .args(["serve", "--database-url", &url, "--listen", &format!("127.0.0.1:{port}")])
            .args(if demo { vec!["--demo"] } else { vec![] })
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .env("AGENTMESSAGE_SECRET_KEY", SECRET_KEY)
            .env("AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("AGENTMESSAGE_WEBHOOK_SCHEDULE", "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms")
            .env("AGENTMESSAGE_WEBHOOK_TIMEOUT", "1s")
            .env("AGENTMESSAGE_RECEIPT_DELAY", "50ms")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        crate::child::Reaped(command.spawn().unwrap())
    };
    let first_port = port();
    let mut first = start(first_port, true);
    let stdout = first.stdout.take().unwrap();
    // The whole of standard output is read (a closed pipe would fail the server's next print).
    let (found, key) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut found = Some(found);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(key) = line.trim_start().strip_prefix("live: ") {
                if let Some(found) = found.take() {
                    let _ = found.send(key.trim().to_owned());
                }
            }
        }
    });
    let key = key.await.expect("the demo key is printed");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{first_port}");
    let mut created = None;
    for _ in 0..100 {
        if let Ok(r) = client
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(&key)
            .json(&json!({"url": receiver.url, "events": ["message.sent", "message.delivered"]}))
            .send()
            .await
        {
            created = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(created.expect("the server answers").status(), 201);
    let sent = client
        .post(format!("{base}/v1/messages"))
        .bearer_auth(&key)
        .json(&json!({"from": "+15551112222", "to": "+15554443333", "text": "before the kill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    let message: Value = sent.json().await.unwrap();
    let message = message["data"]["id"].as_str().unwrap().to_owned();
    // The message is delivered; its `message.sent` was attempted and refused, and
    // `message.delivered` waits behind it: now the kill.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown: Value = client
            .get(format!("{base}/v1/messages/{message}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let attempts = receiver.got().len();
        if shown["data"]["status"] == "delivered" && attempts >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status {} after {attempts} attempts",
            shown["data"]["status"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        receiver
            .got()
            .iter()
            .all(|r| r.json()["type"] == "message.sent"),
        "a later event never overtakes one still refused"
    );
    first.kill().unwrap();
    let _ = first.wait();
    let refused = receiver.got().len();
    assert!(receiver.acknowledged().is_empty());
    receiver.set(Answer::Accept);
    let mut second = start(port(), false);
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| got.len() >= 2)
        .await;
    let _ = second.kill();
    let _ = second.wait();
    let types: Vec<Value> = got.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(
        types,
        vec![json!("message.sent"), json!("message.delivered")]
    );
    assert!(got
        .iter()
        .all(|r| r.json()["data"]["id"] == message.as_str()));
    assert!(refused >= 2);
}
