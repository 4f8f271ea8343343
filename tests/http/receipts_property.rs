//! Random sequences of receipts — duplicates, out of order, late, before `sent`, for unknown
//! ids — through `POST /v1/carrier/receipts`: the status never moves backward and always ends
//! where the state machine says.

use std::sync::Arc;

use agentmessage::{
    delivery::{Carrier, CarrierHealth, Submission, SubmitError, Worker, WorkerSettings},
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

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "simulated",
            sessions: 1,
            bound: 1,
        }
    }

    async fn submit(&self, _: &Submission, _: &Part) -> Result<String, SubmitError> {
        Ok(self.0.clone())
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
    let Some(app) = rt.block_on(TestApp::start(backend)) else {
        return;
    };
    let org = rt.block_on(app.sender("+15551112222", "+12125550106"));
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((steps, sent_at) in plan())| {
        rt.block_on(async {
            let body = json!({"from": "+15551112222", "to": "+12125550106", "text": "receipts"});
            let id = app.send(&org.key, body).await.assert_success(202)["id"].as_str().unwrap().to_owned();
            let carrier_id = format!("prop-{}", uuid::Uuid::now_v7().simple());
            let worker = Worker::new(app.services.clone(), Arc::new(FixedCarrier(carrier_id.clone())), WorkerSettings::default());
            let claimed = worker.claim().await.unwrap();
            let message = claimed.into_iter().find(|m| m.id.to_string() == id).expect("claimed");
            let (parts, pending) = worker.begin(std::slice::from_ref(&message)).await.unwrap().remove(0).expect("attempt recorded");
            assert_eq!(pending.len(), 1);

            let status_of = |reply: crate::support::Reply| MessageStatus::parse(reply.json["data"]["status"].as_str().unwrap()).unwrap();
            let mut seen = MessageStatus::Sending;
            let mut expected = MessageStatus::Sending;
            let mut own_receipts = 0;
            for (i, step) in steps.iter().enumerate() {
                if i == sent_at {
                    worker.record(&message, parts.clone(), vec![(1, Ok(carrier_id.clone()))]).await.unwrap();
                    expected = MessageStatus::Sent;
                    // Receipts that came before `sent` apply now, in the order they arrived.
                    for early in steps[..i].iter().filter(|s| s.own) {
                        expected = status_after_receipt(expected, early.stat);
                    }
                }
                let target = if step.own { carrier_id.clone() } else { format!("unknown-{}", uuid::Uuid::now_v7().simple()) };
                let reply = app.carrier_call("/v1/carrier/receipts", json!({"carrier_message_id": target, "stat": step.stat})).await;
                assert_eq!(reply.assert_success(200)["matched"], json!(step.own && i >= sent_at));
                if step.own {
                    own_receipts += 1;
                    if i >= sent_at {
                        expected = status_after_receipt(expected, step.stat);
                    }
                }
                let now = status_of(app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await);
                prop_assert!(rank(now) >= rank(seen), "moved backward from {seen} to {now}");
                seen = now;
            }
            if sent_at == steps.len() {
                worker.record(&message, parts.clone(), vec![(1, Ok(carrier_id.clone()))]).await.unwrap();
                expected = MessageStatus::Sent;
                for early in steps.iter().filter(|s| s.own) {
                    expected = status_after_receipt(expected, early.stat);
                }
            }
            let now = status_of(app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await);
            prop_assert!(rank(now) >= rank(seen));
            prop_assert_eq!(now, expected, "steps {:?}, sent after {}", steps, sent_at);
            let events = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await;
            let receipts = events.json["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "receipt").count();
            prop_assert_eq!(receipts, own_receipts, "every receipt of the message is kept as an event");
            Ok(())
        })?;
    });
}

#[test]
fn random_receipt_sequences_on_sqlite() {
    run(Backend::Sqlite);
}

#[test]
fn random_receipt_sequences_on_postgres() {
    run(Backend::Postgres);
}
