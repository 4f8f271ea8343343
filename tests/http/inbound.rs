//! Inbound messages: only a true redelivery is dropped, and a keyword's effects are stored with
//! the message.

use reqwest::Method;

use crate::support::{json, on_both_backends, TestApp};

const FROM: &str = "+15551112222";

/// The recipient's consent history, oldest first: (status, source).
async fn history(app: &TestApp, org_id: uuid::Uuid, number: &str) -> Vec<(String, String)> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::consent::Entity::find()
        .filter(entity::consent::Column::OrgId.eq(org_id))
        .filter(entity::consent::Column::PhoneNumber.eq(number))
        .order_by_asc(entity::consent::Column::RecordedAt)
        .all(app.store.connection())
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.status.as_str().to_owned(), c.source.as_str().to_owned()))
        .collect()
}

/// The kinds of a message's events, in order.
async fn event_kinds(app: &TestApp, key: &str, id: &str) -> Vec<String> {
    let reply = app
        .call(
            Method::GET,
            &format!("/v1/messages/{id}/events?limit=100"),
            Some(key),
            None,
        )
        .await;
    reply
        .assert_success(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

on_both_backends! {
    async fn a_stop_reusing_an_earlier_messages_carrier_id_is_acted_on(app) {
        let to = "+12125550111";
        let org = app.sender(FROM, to).await;
        let inbound = |from: &str, text: &str| {
            app.carrier_call("/v1/carrier/inbound", json!({"from": from, "to": FROM, "text": text, "carrier_message_id": "reused-1"}))
        };
        let hello = inbound(to, "hello").await;
        let hello = hello.assert_success(201)["message"]["id"].clone();
        // The carrier reuses the id for the recipient's STOP: a new message, and it opts out.
        let stop = inbound(to, "STOP").await;
        let stop = stop.assert_success(201).clone();
        assert_ne!(stop["message"]["id"], hello, "the STOP was taken for a redelivery of hello");
        assert_eq!(stop["keyword"], json!("STOP"));
        let consent = app.call(Method::GET, &format!("/v1/consents/{to}"), Some(&org.key), None).await;
        let consent = consent.assert_success(200);
        assert_eq!((consent["status"].clone(), consent["locked"].clone()), (json!("opted_out"), json!(true)));
        app.send(&org.key, json!({"from": FROM, "to": to, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
        // Another sender under the same id is another message too.
        let other = inbound("+12125550112", "hello").await;
        assert_ne!(other.assert_success(201)["message"]["id"], hello);
        let listed = app.call(Method::GET, "/v1/messages?direction=inbound", Some(&org.key), None).await;
        assert_eq!(listed.assert_success(200).as_array().unwrap().len(), 3);
    }

    async fn a_true_redelivery_is_stored_once_with_its_effects_once(app) {
        let to = "+12125550113";
        let org = app.sender(FROM, to).await;
        let stop = json!({"from": to, "to": FROM, "text": "STOP", "carrier_message_id": "twice-1"});
        let first = app.carrier_call("/v1/carrier/inbound", stop.clone()).await;
        let first = first.assert_success(201).clone();
        let again = app.carrier_call("/v1/carrier/inbound", stop).await;
        let again = again.assert_success(201).clone();
        assert_eq!(again["message"]["id"], first["message"]["id"]);
        assert_eq!(again["keyword"], json!("STOP"));
        let id = first["message"]["id"].as_str().unwrap();
        // One message, one opt-out, one keyword event: the redelivery changed nothing.
        let listed = app.call(Method::GET, "/v1/messages?direction=inbound", Some(&org.key), None).await;
        assert_eq!(listed.assert_success(200).as_array().unwrap().len(), 1);
        assert_eq!(
            history(&app, org.id, to).await,
            [("opted_in".to_owned(), "web_form".to_owned()), ("opted_out".to_owned(), "keyword".to_owned())]
        );
        assert_eq!(event_kinds(&app, &org.key, id).await, ["transition", "keyword"]);
    }

    async fn a_short_message_with_stop_opts_out_and_a_longer_one_is_only_recorded(app) {
        let (short, long) = ("+12125550114", "+12125550115");
        let org = app.sender(FROM, short).await;
        app.opt_in(&org, long).await;
        let reply = app.carrier_call("/v1/carrier/inbound", json!({"from": short, "to": FROM, "text": "Please STOP texting me 🙂"})).await;
        assert_eq!(reply.assert_success(201)["keyword"], json!("STOP"));
        app.send(&org.key, json!({"from": FROM, "to": short, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");

        let reply = app.carrier_call("/v1/carrier/inbound", json!({"from": long, "to": FROM, "text": "I will stop by the office later today"})).await;
        let data = reply.assert_success(201).clone();
        assert_eq!(data["keyword"], json!(null));
        let id = data["message"]["id"].as_str().unwrap();
        assert_eq!(event_kinds(&app, &org.key, id).await, ["transition", "keyword_mentioned"]);
        let events = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await;
        assert_eq!(events.assert_success(200)[1]["stat"], json!("STOP"));
        assert_eq!(history(&app, org.id, long).await, [("opted_in".to_owned(), "web_form".to_owned())]);
        app.send(&org.key, json!({"from": FROM, "to": long, "text": "see you"})).await.assert_success(202);
    }
}
