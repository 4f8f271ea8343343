//! One organization's key sees nothing of another's.

use reqwest::Method;

use crate::support::{json, on_both_backends};

on_both_backends! {
    async fn another_organization_sees_none_of_this_ones_resources(app) {
        let org = app.sender("+15551112222", "+15554443333").await;
        let id = app.send(&org.key, json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": "+15554443333"}))).await.assert_success(201);
        let key_id = app.call(Method::GET, "/v1/api_keys", Some(&org.key), None).await.json["data"][0]["id"].as_str().unwrap().to_owned();

        let other = app.org().await;
        app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&other.key), None).await.assert_error(404, "NOT_FOUND");
        app.call(Method::GET, "/v1/consents/+15554443333", Some(&other.key), None).await.assert_error(404, "NOT_FOUND");
        app.call(Method::GET, "/v1/lookups/+15554443333", Some(&other.key), None).await.assert_error(404, "NOT_FOUND");
        let numbers = app.call(Method::GET, "/v1/numbers", Some(&other.key), None).await;
        assert_eq!(numbers.json["data"], json!([]));
        let keys = app.call(Method::GET, "/v1/api_keys", Some(&other.key), None).await;
        assert_eq!(keys.json["data"].as_array().unwrap().len(), 1);
        assert_ne!(keys.json["data"][0]["id"], json!(key_id));
        app.call(Method::DELETE, &format!("/v1/api_keys/{key_id}"), Some(&other.key), None).await.assert_error(404, "NOT_FOUND");
        // The first organization's key still works.
        app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await.assert_success(200);
        // Another organization's opt-in does not count for this one.
        app.add_number(&other, "+15551113333").await;
        app.send(&other.key, json!({"from": "+15551113333", "to": "+15554443333", "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
    }

    async fn rows_of_the_other_key_mode_are_invisible(app) {
        use sea_orm::ConnectionTrait;
        let org = app.sender("+15551112222", "+15554443333").await;
        let id = app.send(&org.key, json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": "+15554443333"}))).await.assert_success(201);
        // The same rows, as if a test-mode key had made them.
        for table in ["messages", "consents", "lookups"] {
            app.store.connection().execute_unprepared(&format!("UPDATE {table} SET mode = 'test'")).await.unwrap();
        }
        app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        let listed = app.call(Method::GET, "/v1/messages", Some(&org.key), None).await;
        assert_eq!(listed.json["data"], json!([]));
        app.call(Method::GET, "/v1/consents/+15554443333", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        app.call(Method::GET, "/v1/lookups/+15554443333", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        // A test-mode opt-in does not let a live key send.
        app.send(&org.key, json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"})).await.assert_error(453, "CONSENT_REQUIRED");
    }

    async fn a_stored_value_the_code_does_not_know_answers_500_not_a_default(app) {
        use sea_orm::ConnectionTrait;
        let org = app.sender("+15551112222", "+15554443333").await;
        let id = app.send(&org.key, json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await.assert_success(200);
        app.store.connection().execute_unprepared("UPDATE messages SET status = 'teleported'").await.unwrap();
        let reply = app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&org.key), None).await;
        reply.assert_error(500, "INTERNAL_ERROR");
        assert!(!reply.text.contains("teleported"), "{}", reply.text);
        app.call(Method::GET, "/v1/messages", Some(&org.key), None).await.assert_error(500, "INTERNAL_ERROR");
        // A damaged event kind is refused the same way.
        app.store.connection().execute_unprepared("UPDATE messages SET status = 'queued'").await.unwrap();
        app.store.connection().execute_unprepared("UPDATE message_events SET kind = 'rumour'").await.unwrap();
        app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await.assert_error(500, "INTERNAL_ERROR");
    }
}
