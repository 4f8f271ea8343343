//! A message's life through HTTP: the worker, the simulated carrier, receipts, inbound keywords.

use std::time::Duration;

use reqwest::Method;

use crate::support::{json, on_both_backends};

const FROM: &str = "+15551112222";

fn terminal(status: &str) -> bool {
    matches!(status, "delivered" | "undelivered" | "failed")
}

/// The (kind, status) pairs of a message's events.
async fn events(app: &crate::support::TestApp, key: &str, id: &str) -> Vec<(String, String)> {
    let reply = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}/events"),
            Some(key),
            None,
        )
        .await;
    reply.assert_success(200);
    assert_eq!(reply.json["has_more"], json!(false));
    let events = reply.json["data"].as_array().unwrap();
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "events in the server's order: {sequences:?}"
    );
    events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A time as the API writes it: RFC 3339 UTC with milliseconds, `2026-04-26T12:00:00.123Z`.
fn is_wire_time(value: &serde_json::Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 24
            && s.ends_with('Z')
            && s.as_bytes()[19] == b'.'
            && s[20..23].bytes().all(|b| b.is_ascii_digit())
            && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
}

on_both_backends! {
    async fn each_test_number_row_reaches_its_status_with_every_step_recorded(app) {
        let rows = [
            ("+12125550100", "delivered", None),
            ("+12125550133", "delivered", None),
            ("+12125550145", "undelivered", Some("UNDELIVERED")),
            ("+12125550150", "failed", Some("CARRIER_REFUSED")),
            ("+12125550165", "undelivered", Some("EXPIRED")),
            ("+15554443333", "delivered", None),
        ];
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        let mut ids = Vec::new();
        for (to, _, _) in rows {
            app.opt_in(&org, to).await;
            let reply = app.send(&org.key, json!({"from": FROM, "to": to, "text": "lifecycle"})).await;
            let data = reply.assert_success(202);
            assert_eq!((&data["sent_at"], &data["delivered_at"]), (&json!(null), &json!(null)));
            assert!(is_wire_time(&data["created_at"]), "{data}");
            ids.push(data["id"].as_str().unwrap().to_owned());
        }
        let _worker = app.run_worker(Duration::from_secs(2));
        for ((to, status, error), id) in rows.iter().zip(&ids) {
            let data = app.wait_for(&org.key, id, Duration::from_secs(10), terminal).await;
            assert_eq!(data["status"], json!(status), "{to}");
            assert_eq!(data["error_code"], json!(error), "{to}");
            assert_eq!(app.carrier.submissions(uuid::Uuid::parse_str(id).unwrap()), 1, "{to} submitted once");
            let steps = events(&app, &org.key, id).await;
            let expected = match *status {
                "delivered" => pairs(&[("transition", "queued"), ("transition", "sending"), ("submission_attempt", "sending"), ("transition", "sent"), ("receipt", "delivered")]),
                "failed" => pairs(&[("transition", "queued"), ("transition", "sending"), ("submission_attempt", "sending"), ("transition", "failed")]),
                _ if *error == Some("EXPIRED") => pairs(&[("transition", "queued"), ("transition", "sending"), ("submission_attempt", "sending"), ("transition", "sent"), ("transition", "undelivered")]),
                _ => pairs(&[("transition", "queued"), ("transition", "sending"), ("submission_attempt", "sending"), ("transition", "sent"), ("receipt", "undelivered")]),
            };
            assert_eq!(steps, expected, "{to}");
            // When the carrier took it, and when it was delivered: set by those changes only.
            match *status {
                "delivered" => {
                    assert!(is_wire_time(&data["sent_at"]) && is_wire_time(&data["delivered_at"]), "{data}");
                    assert!(data["sent_at"].as_str() <= data["delivered_at"].as_str(), "{data}");
                    assert_eq!(data["delivered_at"], data["updated_at"], "{data}");
                }
                "failed" => assert_eq!((&data["sent_at"], &data["delivered_at"]), (&json!(null), &json!(null)), "{to}"),
                _ => {
                    assert!(is_wire_time(&data["sent_at"]), "{data}");
                    assert_eq!(data["delivered_at"], json!(null), "{to}");
                }
            }
            let reply = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await;
            for event in reply.json["data"].as_array().unwrap() {
                assert!(is_wire_time(&event["occurred_at"]), "{event}");
            }
        }
        // The receipt event carries the carrier's fields.
        let reply = app.call(Method::GET, &format!("/v1/messages/{}/events", ids[2]), Some(&org.key), None).await;
        let receipt = reply.json["data"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(receipt["stat"], json!("UNDELIV"));
        assert_eq!(receipt["err"], json!("001"));
        assert!(receipt["carrier_message_id"].as_str().unwrap().starts_with("sim-"));
    }

    async fn receipts_are_recorded_even_late_twice_unknown_or_before_sent(app) {
        let org = app.sender(FROM, "+12125550101").await;
        // Unknown id: accepted, kept unmatched.
        let reply = app.carrier_call("/v1/carrier/receipts", json!({"carrier_message_id": "nobody", "stat": "DELIVRD"})).await;
        assert_eq!(reply.assert_success(200), &json!({"carrier_message_id": "nobody", "matched": false}));
        // Wrong secret: 401.
        let reply = app.call(Method::POST, "/v1/carrier/receipts", Some("wrong"), Some(json!({"carrier_message_id": "x", "stat": "DELIVRD"}))).await;
        reply.assert_error(401, "UNAUTHORIZED");
        let reply = app.call(Method::POST, "/v1/carrier/receipts", Some(&org.key), Some(json!({"carrier_message_id": "x", "stat": "DELIVRD"}))).await;
        reply.assert_error(401, "UNAUTHORIZED");
        let reply = app.carrier_call("/v1/carrier/receipts", json!({"stat": ""})).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"carrier_message_id": "is required", "stat": "must be 1 to 128 characters"}));

        let id = app.send(&org.key, json!({"from": FROM, "to": "+12125550101", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let _worker = app.run_worker(Duration::from_secs(60));
        let data = app.wait_for(&org.key, &id, Duration::from_secs(10), terminal).await;
        assert_eq!(data["status"], json!("delivered"));
        let carrier_id = {
            let reply = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await;
            reply.json["data"].as_array().unwrap().iter().find_map(|e| e["carrier_message_id"].as_str().map(str::to_owned)).unwrap()
        };
        // A duplicate and a late UNDELIV: recorded, the status stays delivered.
        for stat in ["DELIVRD", "UNDELIV", "ENROUTE"] {
            let reply = app.carrier_call("/v1/carrier/receipts", json!({"carrier_message_id": carrier_id, "stat": stat, "err": "000", "done_date": "2611271200"})).await;
            assert_eq!(reply.assert_success(200)["matched"], json!(true));
        }
        let data = app.wait_for(&org.key, &id, Duration::from_secs(1), terminal).await;
        assert_eq!(data["status"], json!("delivered"));
        let steps = events(&app, &org.key, &id).await;
        assert_eq!(&steps[steps.len() - 3..], pairs(&[("receipt", "delivered"), ("receipt", "delivered"), ("receipt", "delivered")]));
    }

    async fn carrier_ids_are_scoped_by_direction_and_receiving_number(app) {
        // Organization A's outbound message gets a carrier id from the carrier.
        let a = app.sender(FROM, "+12125550104").await;
        let id = app.send(&a.key, json!({"from": FROM, "to": "+12125550104", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let worker = app.worker(Default::default());
        worker.tick().await.unwrap();
        let reply = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&a.key), None).await;
        let carrier_id = reply.json["data"].as_array().unwrap().iter().find_map(|e| e["carrier_message_id"].as_str().map(str::to_owned)).expect("a carrier id");

        // The carrier numbers inbound messages apart: B's recipient texts STOP under the same id.
        let b_number = "+15551119999";
        let b = app.sender(b_number, "+12125550105").await;
        let reply = app.carrier_call("/v1/carrier/inbound", json!({"from": "+12125550105", "to": b_number, "text": "STOP", "carrier_message_id": carrier_id})).await;
        let data = reply.assert_success(201).clone();
        assert_ne!(data["message"]["id"], json!(id), "A's message answered a callback about B");
        assert_eq!(data["message"]["to"], json!(b_number));
        assert_eq!(data["message"]["direction"], json!("inbound"));
        assert_eq!(data["keyword"], json!("STOP"));
        let consent = app.call(Method::GET, "/v1/consents/+12125550105", Some(&b.key), None).await;
        assert_eq!(consent.assert_success(200)["status"], json!("opted_out"));
        // The same delivery again is the same message; A's stays A's.
        let again = app.carrier_call("/v1/carrier/inbound", json!({"from": "+12125550105", "to": b_number, "text": "STOP", "carrier_message_id": carrier_id})).await;
        assert_eq!(again.assert_success(201)["message"]["id"], data["message"]["id"]);
        let a_view = app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&a.key), None).await;
        assert_eq!(a_view.assert_success(200)["direction"], json!("outbound"));

        // A receipt never matches an inbound message.
        let inbound_id = "in-scope-77";
        app.carrier_call("/v1/carrier/inbound", json!({"from": "+12125550105", "to": b_number, "text": "hello", "carrier_message_id": inbound_id})).await.assert_success(201);
        let receipt = app.carrier_call("/v1/carrier/receipts", json!({"carrier_message_id": inbound_id, "stat": "DELIVRD"})).await;
        assert_eq!(receipt.assert_success(200)["matched"], json!(false));
    }

    async fn each_messages_events_are_numbered_from_one_without_gaps(app) {
        // Three organizations send at once; their events interleave in the table.
        let mut orgs = Vec::new();
        for i in 0..3 {
            let from = format!("+1555111400{i}");
            let org = app.org().await;
            app.add_number(&org, &from).await;
            for j in 0..4 {
                app.opt_in(&org, &format!("+121255501{i}{j}")).await;
            }
            orgs.push((org, from));
        }
        let app_ref = &app;
        let sends = orgs.iter().enumerate().flat_map(|(i, (org, from))| {
            (0..4).map(move |j| {
                let to = format!("+121255501{i}{j}");
                let (key, from) = (org.key.clone(), from.clone());
                async move {
                    let reply = app_ref.send(&key, json!({"from": from, "to": to, "text": "numbered"})).await;
                    (key, reply.assert_success(202)["id"].as_str().unwrap().to_owned())
                }
            })
        });
        let sent: Vec<(String, String)> = futures_util::future::join_all(sends).await;
        let _worker = app.run_worker(Duration::from_secs(60));
        let check = |steps: &[serde_json::Value]| {
            let numbers: Vec<i64> = steps.iter().map(|e| e["sequence"].as_i64().unwrap()).collect();
            let expected: Vec<i64> = (1..=numbers.len() as i64).collect();
            (numbers == expected, numbers)
        };
        for (key, id) in &sent {
            app.wait_for(key, id, Duration::from_secs(10), terminal).await;
            let reply = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(key), None).await;
            let steps = reply.json["data"].as_array().unwrap().clone();
            assert!(steps.len() >= 4, "{steps:?}");
            let (ok, numbers) = check(&steps);
            assert!(ok, "message {id} events are numbered {numbers:?}");
        }

        // Rows written before events were numbered per message get numbers by migration: undo
        // the numbering migration and those after it (dropping the numbers) and apply them
        // again, with the worker stopped.
        drop(_worker);
        use migration::MigratorTrait;
        let since_numbering = migration::Migrator::migrations()
            .iter()
            .rev()
            .position(|m| m.name() == "m20261127_000012_alter_message_events_add_number")
            .expect("the numbering migration")
            + 1;
        let single = app.single_connection().await;
        migration::Migrator::down(&single, Some(since_numbering as u32)).await.unwrap();
        migration::Migrator::up(&single, None).await.unwrap();
        drop(single);
        for (key, id) in &sent {
            let reply = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(key), None).await;
            let (ok, numbers) = check(reply.json["data"].as_array().unwrap());
            assert!(ok, "after migration, message {id} events are numbered {numbers:?}");
        }
    }

    async fn a_restarted_worker_delivers_the_receipts_the_simulated_carrier_owed(app) {
        use agentmessage::delivery::{SimulatedCarrier, Worker};
        let org = app.sender(FROM, "+12125550106").await;
        let undelivered = "+12125550141";
        app.opt_in(&org, undelivered).await;
        let a = app.send(&org.key, json!({"from": FROM, "to": "+12125550106", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let b = app.send(&org.key, json!({"from": FROM, "to": undelivered, "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        // The first process submits, then dies before its receipts are due.
        let doomed = std::sync::Arc::new(SimulatedCarrier::new(app.services.clone(), Duration::from_secs(3600)));
        Worker::new(app.services.clone(), doomed, Default::default()).tick().await.unwrap();
        for id in [&a, &b] {
            let view = app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await;
            assert_eq!(view.assert_success(200)["status"], json!("sent"));
        }
        // A new process's worker starts: the receipts owed arrive.
        let fresh = std::sync::Arc::new(SimulatedCarrier::new(app.services.clone(), Duration::from_millis(50)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(Worker::new(app.services.clone(), fresh, Default::default()).run(async { let _ = stopped.await; }));
        let data = app.wait_for(&org.key, &a, Duration::from_secs(10), terminal).await;
        assert_eq!(data["status"], json!("delivered"));
        let data = app.wait_for(&org.key, &b, Duration::from_secs(10), terminal).await;
        assert_eq!(data["status"], json!("undelivered"));
        let _ = stop.send(());
        running.await.unwrap();
    }

    async fn opt_outs_are_recognised_however_they_are_written(app) {
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        for (i, text) in ["Stop.", "STOP ALL", "ＳＴＯＰ", "\u{200B}stop", "revoke", "Opt out"].into_iter().enumerate() {
            let to = format!("+1212555011{i}");
            app.opt_in(&org, &to).await;
            let reply = app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": FROM, "text": text})).await;
            let keyword = reply.assert_success(201)["keyword"].clone();
            assert!(keyword.is_string(), "{text:?} was not a keyword");
            let consent = app.call(Method::GET, &format!("/v1/consents/{to}"), Some(&org.key), None).await;
            assert_eq!(consent.assert_success(200)["status"], json!("opted_out"), "{text:?}");
            app.send(&org.key, json!({"from": FROM, "to": to, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
        }
    }

    async fn an_inbound_stop_blocks_sends_and_fails_queued_messages_and_start_lifts_it(app) {
        let to = "+12125550102";
        let org = app.sender(FROM, to).await;
        let queued = app.send(&org.key, json!({"from": FROM, "to": to, "text": "queued before STOP"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();

        let reply = app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": FROM, "text": "  stop ", "carrier_message_id": "in-1"})).await;
        let data = reply.assert_success(201).clone();
        assert_eq!(data["keyword"], json!("STOP"));
        assert_eq!(data["message"]["direction"], json!("inbound"));
        assert_eq!(data["message"]["status"], json!("received"));
        assert_eq!(data["message"]["from"], json!(to));
        // The same delivery again is stored once.
        let again = app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": FROM, "text": "  stop ", "carrier_message_id": "in-1"})).await;
        assert_eq!(again.assert_success(201)["message"]["id"], data["message"]["id"]);

        let consent = app.call(Method::GET, &format!("/v1/consents/{to}"), Some(&org.key), None).await;
        let consent = consent.assert_success(200);
        assert_eq!(consent["status"], json!("opted_out"));
        assert_eq!(consent["source"], json!("keyword"));
        let error = app.send(&org.key, json!({"from": FROM, "to": to, "text": "after STOP"})).await.assert_error(453, "CONSENT_REQUIRED").clone();
        assert_eq!(error["details"]["consent"], json!("opted_out_by_keyword"));
        assert!(error["details"]["fix"].as_str().unwrap().contains("texting START"), "{error}");

        // The worker re-checks consent when it claims: the queued message fails.
        let worker = app.worker(Default::default());
        assert!(worker.tick().await.unwrap() == 0, "nothing left to submit");
        let data = app.wait_for(&org.key, &queued, Duration::from_secs(1), terminal).await;
        assert_eq!(data["status"], json!("failed"));
        assert_eq!(data["error_code"], json!("CONSENT_REVOKED"));
        assert_eq!(app.carrier.submissions(uuid::Uuid::parse_str(&queued).unwrap()), 0);

        let help = app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": FROM, "text": "HELP"})).await;
        assert_eq!(help.assert_success(201)["keyword"], json!("HELP"));
        let start = app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": FROM, "text": "Start"})).await;
        assert_eq!(start.assert_success(201)["keyword"], json!("START"));
        app.send(&org.key, json!({"from": FROM, "to": to, "text": "after START"})).await.assert_success(202);

        // Inbound to a number nobody owns is refused.
        let reply = app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": "+12125550999", "text": "hi"})).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"to": "is not a number any organization owns"}));
    }

    async fn a_worker_stopped_between_claim_and_submission_loses_nothing(app) {
        let to = "+12125550103";
        let org = app.sender(FROM, to).await;
        let id = app.send(&org.key, json!({"from": FROM, "to": to, "text": "crash before attempt"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let short = agentmessage::delivery::WorkerSettings { lease: Duration::from_millis(200), ..Default::default() };
        let crashed = app.worker(short.clone());
        let claimed = crashed.claim().await.unwrap();
        assert_eq!(claimed.len(), 1);
        drop(crashed); // stops before recording the attempt
        tokio::time::sleep(Duration::from_millis(300)).await;
        let survivor = app.worker(short);
        survivor.sweep().await.unwrap();
        let data = app.wait_for(&org.key, &id, Duration::from_secs(1), |s| s == "queued").await;
        assert_eq!(data["status"], json!("queued"));
        assert_eq!(survivor.tick().await.unwrap(), 1);
        let data = app.wait_for(&org.key, &id, Duration::from_secs(10), terminal).await;
        assert_eq!(data["status"], json!("delivered"));
        assert_eq!(app.carrier.submissions(uuid::Uuid::parse_str(&id).unwrap()), 1);
        let steps = events(&app, &org.key, &id).await;
        assert_eq!(&steps[..4], pairs(&[("transition", "queued"), ("transition", "sending"), ("transition", "queued"), ("transition", "sending")]));
    }

    async fn a_worker_stopped_after_the_attempt_never_causes_a_second_submission(app) {
        use agentmessage::delivery::Carrier;
        let to = "+12125550104";
        let org = app.sender(FROM, to).await;
        let id = app.send(&org.key, json!({"from": FROM, "to": to, "text": "crash after attempt"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let short = agentmessage::delivery::WorkerSettings { lease: Duration::from_millis(300), ..Default::default() };
        let crashed = app.worker(short.clone());
        let claimed = crashed.claim().await.unwrap();
        let submission = crashed.submission(&claimed[0]);
        let (_, attempted) = crashed.begin(&claimed[..1]).await.unwrap().remove(0).expect("attempt recorded");
        // The carrier gets the submission; the worker stops before it records the answer.
        app.carrier.submit(&submission, &attempted[0]).await.unwrap();
        drop(crashed);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let survivor = app.worker(short);
        survivor.sweep().await.unwrap();
        assert_eq!(survivor.tick().await.unwrap(), 0);
        let data = app.wait_for(&org.key, &id, Duration::from_secs(1), terminal).await;
        assert_eq!(data["status"], json!("failed"));
        assert_eq!(data["error_code"], json!("SUBMISSION_UNCERTAIN"));
        // Even with a worker running for a while, the carrier saw the message once.
        let _worker = app.run_worker(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.carrier.submissions(uuid::Uuid::parse_str(&id).unwrap()), 1);
        let data = app.wait_for(&org.key, &id, Duration::from_secs(1), terminal).await;
        assert_eq!(data["status"], json!("failed"), "a late receipt does not revive a failed message");
    }

    async fn high_priority_messages_are_claimed_first(app) {
        let to = "+12125550105";
        let org = app.sender(FROM, to).await;
        let mut ids = Vec::new();
        for priority in ["default", "default", "high"] {
            let reply = app.send(&org.key, json!({"from": FROM, "to": to, "text": "p", "priority": priority})).await;
            ids.push(reply.assert_success(202)["id"].as_str().unwrap().to_owned());
        }
        let worker = app.worker(agentmessage::delivery::WorkerSettings { batch_size: 2, ..Default::default() });
        let claimed: Vec<String> = worker.claim().await.unwrap().iter().map(|m| m.id.to_string()).collect();
        assert_eq!(claimed, [ids[2].clone(), ids[0].clone()]);
    }
}

#[tokio::test]
async fn workers_claiming_together_never_take_the_same_message() {
    for backend in [
        crate::support::Backend::Sqlite,
        crate::support::Backend::Postgres,
    ] {
        let app = crate::support::TestApp::start(backend).await;
        let to = "+12125550110";
        let org = app.sender(FROM, to).await;
        for _ in 0..60 {
            app.send(&org.key, json!({"from": FROM, "to": to, "text": "race"}))
                .await
                .assert_success(202);
        }
        let settings = agentmessage::delivery::WorkerSettings {
            batch_size: 7,
            ..Default::default()
        };
        let workers: Vec<_> = (0..4).map(|_| app.worker(settings.clone())).collect();
        let mut claimed = Vec::new();
        loop {
            let rounds = futures_util::future::join_all(workers.iter().map(|w| w.claim())).await;
            let batch: Vec<_> = rounds.into_iter().flat_map(|r| r.unwrap()).collect();
            if batch.is_empty() {
                break;
            }
            claimed.extend(batch.into_iter().map(|m| m.id));
        }
        let unique: std::collections::HashSet<_> = claimed.iter().collect();
        assert_eq!(claimed.len(), 60, "{backend:?}: every message claimed");
        assert_eq!(unique.len(), 60, "{backend:?}: no message claimed twice");
    }
}

mod batched_answers {
    use super::*;
    use agentmessage::{
        domain::{message::Channel, organization::KeyMode},
        service::delivery::{Attempt, PartOutcome},
        store::QueueFilter,
    };

    on_both_backends! {
        async fn a_batch_of_answers_changes_only_the_messages_whose_lease_is_still_held(app) {
            // Three messages claimed and attempted together; another worker takes one lease over
            // before the answers are recorded in one statement: that one must stay as the other
            // worker left it, the two others become `sent`.
            let to = "+12125550107";
            let org = app.sender(FROM, to).await;
            let mut ids = Vec::new();
            for n in 0..3 {
                let reply = app.send(&org.key, json!({"from": FROM, "to": to, "text": format!("batch {n}")})).await;
                ids.push(reply.assert_success(202)["id"].as_str().unwrap().to_owned());
            }
            let claimed = app.services.claim_messages("lane-a", Duration::from_secs(30), 10, QueueFilter { modes: &[KeyMode::Live], channels: Channel::ALL, prefix: "", excluded: &[] }, &|_| (1, 7)).await.unwrap();
            assert_eq!(claimed.len(), 3);
            let items: Vec<_> = claimed.iter().map(|(m, _)| (m.id, vec![1u8])).collect();
            let begun = app.services.begin_attempts("lane-a", &items).await.unwrap();
            assert_eq!(begun, vec![true; 3]);
            let taken = claimed[1].0.id;
            let conn = app.single_connection().await;
            let backend = sea_orm::ConnectionTrait::get_database_backend(&conn);
            let sql = match backend {
                sea_orm::DbBackend::Postgres => "UPDATE messages SET lease_owner = 'lane-b' WHERE id = $1",
                _ => "UPDATE messages SET lease_owner = 'lane-b' WHERE id = ?",
            };
            sea_orm::ConnectionTrait::execute_raw(&conn, sea_orm::Statement::from_sql_and_values(backend, sql, [taken.into()]))
                .await
                .unwrap();
            let attempts = claimed
                .iter()
                .map(|(message, parts)| {
                    let parts = parts.clone();
                    let attempt = Attempt {
                        carrier: "simulated".into(),
                        parts,
                        outcomes: vec![(1, PartOutcome::Accepted(format!("batch-{}", message.id.simple())))],
                        retry_at: chrono::Utc::now(),
                    };
                    (message.clone(), attempt)
                })
                .collect();
            app.services.record_submissions("lane-a", attempts).await.unwrap();
            for (message, _) in &claimed {
                let id = message.id.to_string();
                let shown = app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await;
                let steps = events(&app, &org.key, &id).await;
                if message.id == taken {
                    assert_eq!(shown.assert_success(200)["status"], json!("sending"));
                    assert!(!steps.iter().any(|(_, status)| status == "sent"), "{steps:?}");
                } else {
                    assert_eq!(shown.assert_success(200)["status"], json!("sent"));
                    assert_eq!(steps.last().unwrap(), &("transition".to_owned(), "sent".to_owned()));
                }
            }
        }
    }
}

mod unmatched_receipts {
    use super::*;
    use crate::support::{for_each_backend, Backend, TestApp};

    /// Receipts for ids no message has: kept, looked at again only within their recheck period
    /// (not on every sweep), and deleted past their retention.
    async fn are_kept_rechecked_for_a_while_then_expire(backend: Backend) {
        let settings = agentmessage::service::Settings {
            receipt_recheck: Duration::from_millis(300),
            unmatched_receipt_retention: Duration::from_secs(3),
            ..Default::default()
        };
        let app = TestApp::start_with(backend, settings).await;
        for n in 1..=3 {
            let reply = app
                .carrier_call(
                    "/v1/carrier/receipts",
                    json!({"carrier_message_id": format!("ghost-{n}"), "stat": "DELIVRD"}),
                )
                .await;
            assert_eq!(reply.assert_success(200)["matched"], json!(false));
        }
        let arrived = std::time::Instant::now();
        let first = app.services.match_unmatched_receipts().await.unwrap();
        assert_eq!(
            (first.looked_at, first.matched, first.purged),
            (3, 0, 0),
            "{backend:?}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Past the recheck period: read once more, then never again.
        let settling = app.services.match_unmatched_receipts().await.unwrap();
        assert_eq!(settling.looked_at, 3, "{backend:?}");
        for _ in 0..3 {
            let later = app.services.match_unmatched_receipts().await.unwrap();
            assert_eq!(
                later.looked_at, 0,
                "{backend:?}: settled receipts are read again"
            );
        }
        let conn = app.single_connection().await;
        let count = || async {
            let backend = sea_orm::ConnectionTrait::get_database_backend(&conn);
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &conn,
                sea_orm::Statement::from_string(
                    backend,
                    "SELECT COUNT(*) AS n FROM carrier_receipts WHERE message_id IS NULL",
                ),
            )
            .await
            .unwrap()
            .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        };
        assert_eq!(count().await, 3, "{backend:?}: kept");
        tokio::time::sleep(
            Duration::from_secs(3).saturating_sub(arrived.elapsed()) + Duration::from_millis(200),
        )
        .await;
        let expired = app.services.match_unmatched_receipts().await.unwrap();
        assert_eq!(expired.purged, 3, "{backend:?}");
        assert_eq!(count().await, 0, "{backend:?}: deleted past the retention");
    }

    for_each_backend!(are_kept_rechecked_for_a_while_then_expire);
}
