//! Webhook delivery beside a dead endpoint, in its own test binary (nothing else runs beside it):
//! while an endpoint that never answers holds 1,000 pending deliveries, a healthy endpoint of the
//! same organization gets every event, each before half of one attempt at the dead endpoint could
//! have timed out — so none waited behind the dead endpoint's attempts — on SQLite and on
//! PostgreSQL. The delays are printed, not asserted: `scripts/bench --webhooks 1
//! --dead-webhook-endpoints 1` measures them in a release build.

#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../common/receiver.rs"]
#[allow(dead_code)]
mod receiver;
#[path = "../http/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::time::Duration;

use agentmessage::{
    delivery::{WebhookSettings, WorkerSettings},
    service::{webhooks::WebhookRules, Settings},
};
use futures_util::StreamExt;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};

use receiver::{Answer, Receiver};
use support::{json, Backend, RunningWorker, TestApp};

const FROM: &str = "+15551112222";
const TO: &str = "+12125550100";
const SECRET_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const MESSAGES: usize = 500;
/// How long one attempt at the dead endpoint hangs before it times out.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long after its event was written (the change, as the database recorded it) each
/// delivery in `got` arrived, shortest first.
async fn delays_since_written(app: &TestApp, got: &[receiver::Received]) -> Vec<Duration> {
    let rows = app
        .store
        .connection()
        .query_all_raw(Statement::from_string(
            app.store.connection().get_database_backend(),
            "SELECT id, created_at FROM webhook_events",
        ))
        .await
        .unwrap();
    let written: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = rows
        .iter()
        .map(|r| {
            let id: uuid::Uuid = r.try_get("", "id").unwrap();
            let at: chrono::DateTime<chrono::Utc> = r.try_get("", "created_at").unwrap();
            (id.to_string(), at)
        })
        .collect();
    let mut delays: Vec<Duration> = got
        .iter()
        .map(|r| {
            let arrived: chrono::DateTime<chrono::Utc> = r.wall.into();
            (arrived - written[&r.id]).to_std().unwrap_or_default()
        })
        .collect();
    delays.sort();
    delays
}

async fn a_dead_endpoint_does_not_delay_a_healthy_one(backend: Backend) {
    let settings = Settings {
        webhooks: WebhookRules {
            sealing: Some(std::sync::Arc::new(
                agentmessage::domain::webhooks::SealingKeys::from_setting(SECRET_KEY).unwrap(),
            )),
            allow_private: true,
            ..Default::default()
        },
        ..Settings::default()
    };
    let app = TestApp::start_with(backend, settings).await;
    let dead = Receiver::start(Answer::Hang).await;
    let healthy = Receiver::start(Answer::Accept).await;
    let org = app.sender(FROM, TO).await;
    let events = ["message.sent", "message.delivered"];
    let mut endpoints = vec![];
    for url in [&dead.url, &healthy.url] {
        let reply = app
            .call(
                Method::POST,
                "/v1/webhook_endpoints",
                Some(&org.key),
                Some(json!({"url": url, "events": events})),
            )
            .await;
        endpoints.push(reply.assert_success(201)["id"].as_str().unwrap().to_owned());
    }
    // The production defaults but the attempt timeout: the dead endpoint holds each of its
    // attempts for the whole of it. A healthy event that queued behind one would wait at least
    // that long.
    let worker = app.worker(WorkerSettings {
        webhooks: WebhookSettings {
            timeout: ATTEMPT_TIMEOUT,
            allow_private: true,
            ..Default::default()
        },
        ..Default::default()
    });
    let _worker = RunningWorker::spawn(worker);
    let started = std::time::Instant::now();
    // A steady 100 sends a second (200 status changes a second, each an event for both
    // endpoints), so that the dead endpoint's deliveries pile up while the healthy one's flow.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sends = futures_util::stream::FuturesUnordered::new();
    for n in 0..MESSAGES {
        tick.tick().await;
        let (app, key) = (&app, &org.key);
        sends.push(async move {
            app.call(
                Method::POST,
                "/v1/messages",
                Some(key),
                Some(json!({"from": FROM, "to": TO, "text": format!("load {n}")})),
            )
            .await
            .assert_success(202);
        });
        while let Some(()) = futures_util::FutureExt::now_or_never(sends.next()).flatten() {}
    }
    while sends.next().await.is_some() {}
    let sent_in = started.elapsed();
    let got = healthy
        .wait_until(Duration::from_secs(120), |got| got.len() >= 2 * MESSAGES)
        .await;
    let delays = delays_since_written(&app, &got).await;
    let at = |q: f64| delays[((delays.len() as f64 * q).ceil() as usize).min(delays.len()) - 1];
    let pending_dead = app
        .store
        .connection()
        .query_one_raw(Statement::from_sql_and_values(
            app.store.connection().get_database_backend(),
            match backend {
                Backend::Postgres => "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending'",
                Backend::Sqlite => "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = ?1 AND state = 'pending'",
            },
            [uuid::Uuid::parse_str(&endpoints[0]).unwrap().into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    eprintln!(
        "{backend:?}: {MESSAGES} messages sent in {sent_in:?}; healthy endpoint got {} events, delay from status change p50 {:?} p99 {:?} max {:?}; dead endpoint: {pending_dead} deliveries pending, {} attempts hanging",
        got.len(),
        at(0.50),
        at(0.99),
        at(1.0),
        dead.got().len(),
    );
    assert_eq!(got.len(), 2 * MESSAGES, "each event once");
    assert!(
        pending_dead >= 1000,
        "the dead endpoint holds {pending_dead} pending deliveries"
    );
    // Held up behind the dead endpoint, events wait for its attempts to time out (most of
    // ATTEMPT_TIMEOUT); not held up, they wait for the worker alone.
    assert!(
        at(1.0) < ATTEMPT_TIMEOUT / 2,
        "an event waited {:?} for the healthy endpoint: held up behind the dead one's attempts",
        at(1.0)
    );
}

/// Organization B's 50 endpoints hang, with 2,000 deliveries pending for them; organization A's
/// new, healthy endpoint gets each of 20 events within a second of the change that made it: B
/// holds at most its share of the dispatcher's attempts, and the claim leaves B out before its
/// limit.
async fn one_organizations_hanging_endpoints_do_not_hold_up_another(backend: Backend) {
    const B_ENDPOINTS: usize = 50;
    const B_CHANGES: usize = 40;
    const A_EVENTS: usize = 20;
    let settings = Settings {
        webhooks: WebhookRules {
            sealing: Some(std::sync::Arc::new(
                agentmessage::domain::webhooks::SealingKeys::from_setting(SECRET_KEY).unwrap(),
            )),
            allow_private: true,
            ..Default::default()
        },
        limits: agentmessage::service::Limits {
            webhook_endpoints: B_ENDPOINTS as u64,
            ..Default::default()
        },
        ..Settings::default()
    };
    let app = TestApp::start_with(backend, settings).await;
    let dead = Receiver::start(Answer::Hang).await;
    let healthy = Receiver::start(Answer::Accept).await;
    let (a, b) = (app.org().await, app.org().await);
    let register = |key: String, url: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/v1/webhook_endpoints",
                Some(&key),
                Some(json!({"url": url, "events": ["consent.updated"]})),
            )
            .await
            .assert_success(201);
        }
    };
    for n in 0..B_ENDPOINTS {
        register(b.key.clone(), format!("{}/b{n}", dead.url)).await;
    }
    for n in 0..B_CHANGES {
        app.opt_in(&b, &format!("+1212555{n:04}")).await;
    }
    let worker = app.worker(WorkerSettings {
        webhooks: WebhookSettings {
            timeout: ATTEMPT_TIMEOUT,
            allow_private: true,
            ..Default::default()
        },
        ..Default::default()
    });
    let _worker = RunningWorker::spawn(worker);
    // B's attempts are hanging before A's endpoint exists.
    let share = WebhookSettings::default().per_organization;
    let hanging_since = std::time::Instant::now();
    while dead.got().len() < share {
        assert!(
            hanging_since.elapsed() < Duration::from_secs(10),
            "B's attempts did not begin: {}",
            dead.got().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    register(a.key.clone(), healthy.url.clone()).await;
    for n in 0..A_EVENTS {
        app.opt_in(&a, &format!("+1646555{n:04}")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = healthy
        .wait_until(Duration::from_secs(30), |got| got.len() >= A_EVENTS)
        .await;
    let delays = delays_since_written(&app, &got).await;
    eprintln!(
        "{backend:?}: B's {B_ENDPOINTS} hanging endpoints hold {} attempts ({} deliveries pending); A's endpoint got {} events, delay from the change p50 {:?} max {:?}",
        dead.got().len(),
        B_ENDPOINTS * B_CHANGES,
        got.len(),
        delays[delays.len() / 2],
        delays[delays.len() - 1],
    );
    assert_eq!(got.len(), A_EVENTS, "each event once");
    assert!(
        dead.got().len() <= share,
        "B holds {} attempts, past its share of {share}",
        dead.got().len()
    );
    assert!(
        delays[delays.len() - 1] < Duration::from_secs(1),
        "an event of A waited {:?} behind B's hanging endpoints",
        delays[delays.len() - 1]
    );
}

/// One test, so that the runs never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_then_postgresql_slow_endpoints_do_not_delay_healthy_ones() {
    a_dead_endpoint_does_not_delay_a_healthy_one(Backend::Sqlite).await;
    a_dead_endpoint_does_not_delay_a_healthy_one(Backend::Postgres).await;
    one_organizations_hanging_endpoints_do_not_hold_up_another(Backend::Sqlite).await;
    one_organizations_hanging_endpoints_do_not_hold_up_another(Backend::Postgres).await;
}
