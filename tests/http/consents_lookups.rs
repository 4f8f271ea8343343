//! Consent records and lookups through the API.

use reqwest::Method;

use crate::support::{json, on_both_backends};

on_both_backends! {
    async fn parallel_lookups_of_one_number_ask_the_vendor_once(app) {
        let org = app.org().await;
        let calls = (0..80).map(|_| app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": "+12125550121"}))));
        let replies = futures_util::future::join_all(calls).await;
        let mut fresh = 0;
        for reply in &replies {
            let data = reply.assert_success(201);
            assert_eq!(data["line_type"], json!("landline"));
            if data["cached"] == json!(false) {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "one lookup asked the vendor, the rest reused it");
        assert_eq!(app.lookups.calls(), 1);
        // Another number is asked anew.
        let other = app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": "+12125550101"}))).await;
        assert_eq!(other.assert_success(201)["cached"], json!(false));
        assert_eq!(app.lookups.calls(), 2);
    }

    async fn lookups_spend_the_same_tokens_as_sends(app) {
        let org = app.org_with_rate(1, 3).await;
        app.add_number(&org, "+15551112222").await;
        for number in ["+12125550101", "+12125550102"] {
            app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": number}))).await.assert_success(201);
        }
        // The third token goes to a send; the bucket is then empty for both.
        app.send(&org.key, json!({"from": "+15551112222", "to": "+12125550103", "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
        let reply = app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": "+12125550104"}))).await;
        reply.assert_error(429, "RATE_LIMITED");
        assert!(reply.header("retry-after").is_some());
        assert_eq!(app.lookups.calls(), 2);
    }

    async fn a_recipients_stop_cannot_be_overridden_through_the_api(app) {
        let (from, to) = ("+15551112222", "+12125550103");
        let org = app.sender(from, to).await;
        let path = format!("/v1/consents/{to}");
        // `keyword` is the recipient's own source: the API refuses it.
        let reply = app.call(Method::PUT, &path, Some(&org.key), Some(json!({"source": "keyword"}))).await;
        assert_eq!(
            reply.assert_error(422, "VALIDATION_FAILED")["details"],
            json!({"source": "must be one of: web_form, paper_form, verbal, api, import"})
        );
        // The recipient texts STOP: an API opt-in is refused while it stands.
        app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": from, "text": "STOP"})).await.assert_success(201);
        let reply = app.call(Method::PUT, &path, Some(&org.key), Some(json!({"source": "web_form", "evidence": "form 9"}))).await;
        reply.assert_error(409, "CONSENT_LOCKED");
        app.send(&org.key, json!({"from": from, "to": to, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
        let consent = app.call(Method::GET, &path, Some(&org.key), None).await;
        assert_eq!(consent.assert_success(200)["source"], json!("keyword"));
        // The recipient's own START lifts it.
        app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": from, "text": "START"})).await.assert_success(201);
        app.send(&org.key, json!({"from": from, "to": to, "text": "hi"})).await.assert_success(202);
        app.call(Method::PUT, &path, Some(&org.key), Some(json!({"source": "web_form"}))).await.assert_success(200);
    }

    async fn no_sequence_of_api_calls_undoes_a_recipients_stop(app) {
        let (from, to) = ("+15551112222", "+12125550104");
        let org = app.sender(from, to).await;
        let path = format!("/v1/consents/{to}");
        let send = || app.send(&org.key, json!({"from": from, "to": to, "text": "hi"}));
        let put = |source: &'static str| app.call(Method::PUT, &path, Some(&org.key), Some(json!({"source": source})));
        // A message waiting in the queue when the recipient texts STOP.
        let waiting = send().await.assert_success(202)["id"].as_str().unwrap().to_owned();
        app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": from, "text": "STOP"})).await.assert_success(201);
        let shown = app.call(Method::GET, &path, Some(&org.key), None).await;
        assert_eq!(shown.assert_success(200)["locked"], json!(true));

        // PUT with every source the API takes.
        for source in ["web_form", "paper_form", "verbal", "api", "import"] {
            put(source).await.assert_error(409, "CONSENT_LOCKED");
        }
        // DELETE records the organization's own opt-out without lifting the lock…
        let deleted = app.call(Method::DELETE, &path, Some(&org.key), None).await;
        let deleted = deleted.assert_success(200);
        assert_eq!((deleted["status"].clone(), deleted["source"].clone(), deleted["locked"].clone()), (json!("opted_out"), json!("api"), json!(true)));
        // …so a PUT after it is refused too, and so are concurrent ones.
        put("web_form").await.assert_error(409, "CONSENT_LOCKED");
        let concurrent = futures_util::future::join_all((0..8).map(|_| put("api"))).await;
        for reply in &concurrent {
            reply.assert_error(409, "CONSENT_LOCKED");
        }
        // A test-mode key records in its own mode: the live recipient stays locked.
        let test = app.test_key(&org).await;
        app.call(Method::PUT, &path, Some(&test), Some(json!({"source": "web_form"}))).await.assert_success(200);
        send().await.assert_error(453, "CONSENT_REQUIRED");
        let shown = app.call(Method::GET, &path, Some(&org.key), None).await;
        let shown = shown.assert_success(200);
        assert_eq!((shown["status"].clone(), shown["locked"].clone()), (json!("opted_out"), json!(true)));
        // The message that was waiting is not sent: the worker's claim re-checks the same rule.
        app.worker(Default::default()).tick().await.unwrap();
        let message = app.call(Method::GET, &format!("/v1/messages/{waiting}"), Some(&org.key), None).await;
        let message = message.assert_success(200);
        assert_eq!((message["status"].clone(), message["error_code"].clone()), (json!("failed"), json!("CONSENT_REVOKED")));

        // Only the recipient lifts it.
        app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": from, "text": "START"})).await.assert_success(201);
        let shown = app.call(Method::GET, &path, Some(&org.key), None).await;
        assert_eq!(shown.assert_success(200)["locked"], json!(false));
        send().await.assert_success(202);
        put("web_form").await.assert_success(200);
    }

    async fn an_api_opt_in_stored_after_a_stop_does_not_make_the_recipient_receivable(app) {
        // Records an earlier release could write (an opt-in stored after the recipient's STOP):
        // the lock, not the newest record, decides.
        let (from, to) = ("+15551112222", "+12125550105");
        let org = app.sender(from, to).await;
        app.carrier_call("/v1/carrier/inbound", json!({"from": to, "to": from, "text": "STOP"})).await.assert_success(201);
        let number = agentmessage::domain::PhoneNumber::parse(to).unwrap();
        app.store
            .tenant(org.id, entity::values::KeyMode::Live)
            .insert_consent(&number, entity::values::ConsentStatus::OptedIn, entity::values::ConsentSource::Api, None)
            .await
            .unwrap();
        let shown = app.call(Method::GET, &format!("/v1/consents/{to}"), Some(&org.key), None).await;
        let shown = shown.assert_success(200);
        assert_eq!((shown["status"].clone(), shown["locked"].clone()), (json!("opted_in"), json!(true)));
        app.send(&org.key, json!({"from": from, "to": to, "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
    }

    async fn consent_opt_in_opt_out_and_current_state(app) {
        let org = app.org().await;
        let path = "/v1/consents/+15554443333";
        app.call(Method::GET, path, Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        let reply = app.call(Method::PUT, path, Some(&org.key), Some(json!({"source": "paper_form", "evidence": "form 12"}))).await;
        let data = reply.assert_success(200).clone();
        assert_eq!(data["phone_number"], json!("+15554443333"));
        assert_eq!(data["status"], json!("opted_in"));
        assert_eq!(data["source"], json!("paper_form"));
        assert_eq!(data["evidence"], json!("form 12"));
        assert!(data["updated_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(data["locked"], json!(false));
        assert_eq!(app.call(Method::GET, path, Some(&org.key), None).await.assert_success(200), &data);

        let out = app.call(Method::DELETE, path, Some(&org.key), None).await;
        let out = out.assert_success(200);
        assert_eq!(out["status"], json!("opted_out"));
        assert_eq!(out["source"], json!("api"));
        assert_eq!(out["evidence"], json!(null));
        // %2B is the same number.
        let read = app.call(Method::GET, "/v1/consents/%2B15554443333", Some(&org.key), None).await;
        assert_eq!(read.assert_success(200)["status"], json!("opted_out"));

        // History is kept: two records.
        use sea_orm::{EntityTrait, PaginatorTrait};
        let rows = entity::consent::Entity::find().count(app.store.connection()).await.unwrap();
        assert_eq!(rows, 2);
    }

    async fn consent_input_is_validated(app) {
        let org = app.org().await;
        let reply = app.call(Method::PUT, "/v1/consents/5554443333", Some(&org.key), Some(json!({"source": "carrier pigeon", "extra": 1}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({
            "extra": "is not a known field",
            "phone_number": "must be E.164 (+, country code, number), such as +14155550123",
            "source": "must be one of: web_form, paper_form, verbal, api, import"
        }));
        let reply = app.call(Method::PUT, "/v1/consents/+15554443333", Some(&org.key), Some(json!({}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"source": "is required"}));
        let reply = app.call(Method::DELETE, "/v1/consents/12", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164 (+, country code, number), such as +14155550123"}));
        // A number that is not E.164 is a validation error, reading as writing.
        let reply = app.call(Method::GET, "/v1/consents/12", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164 (+, country code, number), such as +14155550123"}));
    }

    async fn lookups_follow_the_test_number_table_and_keep_the_newest(app) {
        let org = app.org().await;
        for (number, line_type) in [("+12125550100", "mobile"), ("+12125550125", "landline"), ("+12125550133", "voip"), ("+15554443333", "mobile")] {
            let reply = app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": number}))).await;
            let data = reply.assert_success(201).clone();
            assert_eq!(data["phone_number"], json!(number));
            assert_eq!(data["line_type"], json!(line_type));
            let read = app.call(Method::GET, &format!("/v1/lookups/{number}"), Some(&org.key), None).await;
            assert_eq!(read.assert_success(200), &data);
        }
        app.call(Method::GET, "/v1/lookups/+12125550199", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        let reply = app.call(Method::GET, "/v1/lookups/abc", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164 (+, country code, number), such as +14155550123"}));
        let reply = app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": "212"}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164"}));
    }

    async fn numbers_are_listed_in_the_list_envelope(app) {
        let org = app.org().await;
        app.add_number(&org, "+15551112222").await;
        app.add_number(&org, "+15551110000").await;
        let reply = app.call(Method::GET, "/v1/numbers", Some(&org.key), None).await;
        reply.assert_success(200);
        assert_eq!(reply.json["has_more"], json!(false));
        assert_eq!(reply.json["next_cursor"], json!(null));
        let numbers: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|n| n["phone_number"].as_str().unwrap()).collect();
        assert_eq!(numbers, ["+15551110000", "+15551112222"]);
    }
}
