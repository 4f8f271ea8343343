//! Random sequences of receipts — duplicates, out of order, late, before `sent`, for unknown
//! ids — through `POST /v1/carrier/receipts`: the status never moves backward and always ends
//! where the state machine says.

use std::sync::Arc;

use agentmessage::{
    delivery::{
        Capabilities, Carrier, CarrierHealth, Room, Submission, SubmitError, Worker, WorkerSettings,
    },
    domain::{
        lifecycle::{rank, status_after_receipt, RECEIPT_STATS},
        message::{MessageStatus, Part},
    },
};
use proptest::prelude::*;
use reqwest::Method;

use crate::support::{json, Backend, TestApp};

/// A carrier that answers every submission with one fixed id.
struct FixedCarrier(String);

#[async_trait::async_trait]
impl Carrier for FixedCarrier {
    fn name(&self) -> &str {
        "simulated"
    }

    fn capabilities(&self) -> Capabilities {
        agentmessage::delivery::simulated::CAPABILITIES
    }

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "simulated",
            sessions: 1,
            bound: 1,
        }
    }

    async fn submit_in(
        &self,
        _: &Submission,
        _: &Part,
        room: Room,
    ) -> (Result<String, SubmitError>, Room) {
        (Ok(self.0.clone()), room)
    }
}

#[derive(Debug, Clone)]
struct Step {
    stat: &'static str,
    /// For this message's carrier id, or for an id nobody has.
    own: bool,
}

fn plan() -> impl Strategy<Value = (Vec<Step>, usize)> {
    proptest::collection::vec(
        (
            proptest::sample::select(RECEIPT_STATS.to_vec()),
            proptest::bool::weighted(0.8),
        )
            .prop_map(|(stat, own)| Step { stat, own }),
        0..12,
    )
    .prop_flat_map(|steps| {
        let len = steps.len();
        (Just(steps), 0..=len)
    })
}

fn run(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(TestApp::start(backend));
    let org = rt.block_on(app.sender("+15551112222", "+12125550106"));
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // Sequences a run once found wrong, then random ones.
    let found = [(
        vec![
            Step {
                stat: "DELIVRD",
                own: true,
            },
            Step {
                stat: "UNDELIV",
                own: true,
            },
            Step {
                stat: "ENROUTE",
                own: true,
            },
            Step {
                stat: "REJECTD",
                own: true,
            },
            Step {
                stat: "UNDELIV",
                own: false,
            },
        ],
        4,
    )];
    for (steps, sent_at) in found {
        rt.block_on(check(&app, &org, &steps, sent_at))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    proptest!(config, |((steps, sent_at) in plan())| {
        rt.block_on(check(&app, &org, &steps, sent_at))?;
    });
}

/// One sequence: `steps` in order, `sent` recorded before step `sent_at`.
async fn check(
    app: &TestApp,
    org: &crate::support::Org,
    steps: &[Step],
    sent_at: usize,
) -> Result<(), TestCaseError> {
    let body = json!({"from": "+15551112222", "to": "+12125550106", "text": "receipts"});
    let id = app.send(&org.key, body).await.assert_success(202)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let carrier_id = format!("prop-{}", uuid::Uuid::now_v7().simple());
    let worker = Worker::new(
        app.services.clone(),
        Arc::new(FixedCarrier(carrier_id.clone())),
        WorkerSettings::default(),
    );
    let claimed = worker.claim().await.unwrap();
    let message = claimed
        .into_iter()
        .find(|m| m.id.to_string() == id)
        .expect("claimed");
    let (parts, pending) = worker
        .begin(std::slice::from_ref(&message))
        .await
        .unwrap()
        .remove(0)
        .expect("attempt recorded");
    assert_eq!(pending.len(), 1);

    let status_of = |reply: crate::support::Reply| {
        MessageStatus::parse(reply.json["data"]["status"].as_str().unwrap()).unwrap()
    };
    let mut seen = MessageStatus::Sending;
    let mut expected = MessageStatus::Sending;
    let mut own_receipts = 0;
    for (i, step) in steps.iter().enumerate() {
        if i == sent_at {
            worker
                .record(&message, parts.clone(), vec![(1, Ok(carrier_id.clone()))])
                .await
                .unwrap();
            expected = MessageStatus::Sent;
            // Receipts that came before `sent` apply now, in the order they arrived.
            for early in steps[..i].iter().filter(|s| s.own) {
                expected = status_after_receipt(expected, early.stat);
            }
        }
        let target = if step.own {
            carrier_id.clone()
        } else {
            format!("unknown-{}", uuid::Uuid::now_v7().simple())
        };
        let reply = app
            .carrier_call(
                "/v1/carrier/receipts",
                json!({"carrier_message_id": target, "stat": step.stat}),
            )
            .await;
        assert_eq!(
            reply.assert_success(200)["matched"],
            json!(step.own && i >= sent_at)
        );
        if step.own {
            own_receipts += 1;
            if i >= sent_at {
                expected = status_after_receipt(expected, step.stat);
            }
        }
        let now = status_of(
            app.call(
                Method::GET,
                &format!("/v1/messages/{id}"),
                Some(&org.key),
                None,
            )
            .await,
        );
        prop_assert!(
            rank(now) >= rank(seen),
            "moved backward from {seen} to {now}"
        );
        seen = now;
    }
    if sent_at == steps.len() {
        worker
            .record(&message, parts.clone(), vec![(1, Ok(carrier_id.clone()))])
            .await
            .unwrap();
        expected = MessageStatus::Sent;
        for early in steps.iter().filter(|s| s.own) {
            expected = status_after_receipt(expected, early.stat);
        }
    }
    let now = status_of(
        app.call(
            Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&org.key),
            None,
        )
        .await,
    );
    prop_assert!(rank(now) >= rank(seen));
    prop_assert_eq!(now, expected, "steps {:?}, sent after {}", steps, sent_at);
    let events = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}/events"),
            Some(&org.key),
            None,
        )
        .await;
    let receipts = events.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "receipt")
        .count();
    prop_assert_eq!(
        receipts,
        own_receipts,
        "every receipt of the message is kept as an event"
    );
    Ok(())
}

#[test]
fn random_receipt_sequences_on_sqlite() {
    run(Backend::Sqlite);
}

#[test]
fn random_receipt_sequences_on_postgres() {
    run(Backend::Postgres);
}

/// A carrier that answers each submission with a new id, `batch-<n>`.
struct CountingCarrier(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Carrier for CountingCarrier {
    fn name(&self) -> &str {
        "simulated"
    }

    fn capabilities(&self) -> Capabilities {
        agentmessage::delivery::simulated::CAPABILITIES
    }

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "simulated",
            sessions: 1,
            bound: 1,
        }
    }

    async fn submit_in(
        &self,
        _: &Submission,
        _: &Part,
        room: Room,
    ) -> (Result<String, SubmitError>, Room) {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (Ok(format!("batch-{n}")), room)
    }
}

/// Receipts arriving together are committed together: each still matches its own message (or
/// none), duplicates add an event and change nothing, and every message's events stay numbered
/// 1, 2, 3… without a gap or a repeat.
async fn concurrent_receipts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.sender("+15551112222", "+12125550106").await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        let body = json!({"from": "+15551112222", "to": "+12125550106", "text": "receipts"});
        ids.push(
            app.send(&org.key, body).await.assert_success(202)["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let carrier = Arc::new(CountingCarrier(std::sync::atomic::AtomicUsize::new(0)));
    let worker = Worker::new(
        app.services.clone(),
        carrier,
        WorkerSettings {
            batch_size: 64,
            ..WorkerSettings::default()
        },
    );
    assert_eq!(worker.tick().await.unwrap(), 30);

    // Each message's carrier id, from its `sent` event.
    let mut carrier_ids = std::collections::HashMap::new();
    for id in &ids {
        let events = app
            .call(
                Method::GET,
                &format!("/v1/messages/{id}/events"),
                Some(&org.key),
                None,
            )
            .await;
        let sent = events.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["status"] == "sent")
            .expect("sent")
            .clone();
        carrier_ids.insert(
            id.clone(),
            sent["carrier_message_id"]
                .as_str()
                .expect("carrier id")
                .to_owned(),
        );
    }
    // Every message's receipt twice (DELIVRD for the even ones, UNDELIV for the odd ones) and
    // ten for ids nobody has, all at once.
    let mut calls = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let stat = if i % 2 == 0 { "DELIVRD" } else { "UNDELIV" };
        for _ in 0..2 {
            calls.push((
                json!({"carrier_message_id": carrier_ids[id], "stat": stat, "err": "000"}),
                true,
            ));
        }
    }
    for n in 0..10 {
        calls.push((
            json!({"carrier_message_id": format!("nobody-{n}"), "stat": "DELIVRD"}),
            false,
        ));
    }
    let replies = futures_util::future::join_all(
        calls
            .iter()
            .map(|(body, _)| app.carrier_call("/v1/carrier/receipts", body.clone())),
    )
    .await;
    for ((_, own), reply) in calls.iter().zip(&replies) {
        assert_eq!(
            reply.assert_success(200)["matched"],
            json!(*own),
            "{}",
            reply.text
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let message = app
            .call(
                Method::GET,
                &format!("/v1/messages/{id}"),
                Some(&org.key),
                None,
            )
            .await;
        let data = message.assert_success(200);
        if i % 2 == 0 {
            assert_eq!(data["status"], json!("delivered"), "{data}");
        } else {
            assert_eq!(data["status"], json!("undelivered"), "{data}");
            assert_eq!(data["error_code"], json!("UNDELIVERED"), "{data}");
        }
        let events = app
            .call(
                Method::GET,
                &format!("/v1/messages/{id}/events"),
                Some(&org.key),
                None,
            )
            .await;
        let events = events.json["data"].as_array().unwrap().clone();
        let numbers: Vec<i64> = events
            .iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(
            numbers,
            (1..=numbers.len() as i64).collect::<Vec<_>>(),
            "{events:?}"
        );
        assert_eq!(
            events.iter().filter(|e| e["kind"] == "receipt").count(),
            2,
            "{events:?}"
        );
        let finals = events
            .iter()
            .filter(|e| e["status"] == "delivered" || e["status"] == "undelivered")
            .count();
        assert!(finals >= 1);
    }
    // Receipts shared transactions: a batch's rows carry its commit's one time.
    let conn = app.single_connection().await;
    let backend = sea_orm::ConnectionTrait::get_database_backend(&conn);
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &conn,
        sea_orm::Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM carrier_receipts GROUP BY received_at",
        ),
    )
    .await
    .expect("count");
    let sizes: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("", "n").expect("n"))
        .collect();
    assert_eq!(sizes.iter().sum::<i64>(), 70, "{sizes:?}");
    assert!(
        sizes.iter().any(|n| *n > 1),
        "every receipt committed alone: {sizes:?}"
    );
}

#[tokio::test]
async fn concurrent_receipts_on_sqlite() {
    concurrent_receipts(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_receipts_on_postgres() {
    concurrent_receipts(Backend::Postgres).await;
}
