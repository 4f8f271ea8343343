//! API keys through the API: scoped creation, listing without secrets, revocation; and the
//! database never holding a key in plaintext.

use reqwest::Method;

use crate::support::{json, on_both_backends};

on_both_backends! {
    async fn keys_are_created_within_the_callers_scopes_listed_and_revoked(app) {
        let org = app.org().await;
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"name": "reader", "scopes": ["messages:read", "api_keys:write"]}))).await;
        let created = reply.assert_success(201).clone();
        let key = created["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("am_live_") && key.len() == 40);
        assert!(key.starts_with(created["prefix"].as_str().unwrap()));
        assert_eq!(created["scopes"], json!(["messages:read", "api_keys:write"]));

        // A key cannot grant what it does not hold.
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&key), Some(json!({"scopes": ["messages:send"]}))).await;
        assert_eq!(reply.assert_error(403, "FORBIDDEN")["details"], json!({"required_scope": "messages:send", "missing_scopes": "messages:send"}));
        // Listing needs api_keys:read, which the new key lacks.
        let reply = app.call(Method::GET, "/v1/api_keys", Some(&key), None).await;
        assert_eq!(reply.assert_error(403, "FORBIDDEN")["details"], json!({"required_scope": "api_keys:read"}));

        // Use is recorded off the request path, soon after.
        let mut list = app.call(Method::GET, "/v1/api_keys", Some(&org.key), None).await;
        for _ in 0..50 {
            if list.json["data"][1]["last_used_at"].is_string() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            list = app.call(Method::GET, "/v1/api_keys", Some(&org.key), None).await;
        }
        list.assert_success(200);
        assert!(list.json["data"][1]["last_used_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", list.text);
        assert_eq!(list.json["has_more"], json!(false));
        let keys = list.json["data"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["id"], created["id"], "newest first");
        assert!(!list.text.contains(&key), "a listed key never shows its secret");
        assert!(keys.iter().all(|k| k.get("key").is_none() && k["revoked_at"].is_null()));

        let id = created["id"].as_str().unwrap();
        let revoked = app.call(Method::DELETE, &format!("/v1/api_keys/{id}"), Some(&org.key), None).await;
        let first = revoked.assert_success(200)["revoked_at"].clone();
        assert!(first.is_string());
        let again = app.call(Method::DELETE, &format!("/v1/api_keys/{id}"), Some(&org.key), None).await;
        assert_eq!(again.assert_success(200)["revoked_at"], first);
        app.call(Method::GET, "/v1/numbers", Some(&key), None).await.assert_error(401, "UNAUTHORIZED");
        app.call(Method::DELETE, "/v1/api_keys/nope", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
    }

    async fn a_key_can_revoke_only_keys_whose_scopes_it_holds(app) {
        let org = app.org().await;
        let mint = |scopes: serde_json::Value| {
            let app = &app;
            let key = org.key.clone();
            async move {
                app.call(Method::POST, "/v1/api_keys", Some(&key), Some(json!({"scopes": scopes}))).await.assert_success(201).clone()
            }
        };
        let narrow = mint(json!(["api_keys:write"])).await;
        let narrow_key = narrow["key"].as_str().unwrap().to_owned();
        let reader = mint(json!(["messages:read", "api_keys:write"])).await;
        // The org's own key holds every scope: the narrow key cannot revoke it.
        let keys = app.call(Method::GET, "/v1/api_keys", Some(&org.key), None).await;
        let strong = keys.json["data"].as_array().unwrap().iter().find(|k| k["scopes"].as_array().unwrap().len() == agentmessage::domain::Scope::ALL.len()).unwrap()["id"].as_str().unwrap().to_owned();
        let reply = app.call(Method::DELETE, &format!("/v1/api_keys/{strong}"), Some(&narrow_key), None).await;
        let error = reply.assert_error(403, "FORBIDDEN");
        assert_eq!(error["details"]["required_scope"], json!("messages:send"));
        assert_eq!(
            error["details"]["missing_scopes"],
            json!("messages:send messages:read consents:read consents:write lookups:read lookups:write numbers:read api_keys:read webhooks:read webhooks:write")
        );
        app.call(Method::GET, "/v1/numbers", Some(&org.key), None).await.assert_success(200);
        let reply = app.call(Method::DELETE, &format!("/v1/api_keys/{}", reader["id"].as_str().unwrap()), Some(&narrow_key), None).await;
        assert_eq!(reply.assert_error(403, "FORBIDDEN")["details"], json!({"required_scope": "messages:read", "missing_scopes": "messages:read"}));
        // A key it holds every scope of: revoked.
        let twin = mint(json!(["api_keys:write"])).await;
        app.call(Method::DELETE, &format!("/v1/api_keys/{}", twin["id"].as_str().unwrap()), Some(&narrow_key), None).await.assert_success(200);
        // Making a key needs every scope it grants, named the same way.
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&narrow_key), Some(json!({"scopes": ["numbers:read", "messages:send"]}))).await;
        assert_eq!(reply.assert_error(403, "FORBIDDEN")["details"], json!({"required_scope": "messages:send", "missing_scopes": "messages:send numbers:read"}));
    }

    async fn key_requests_are_validated(app) {
        let org = app.org().await;
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": ["messages:send", "messages:delete"]}))).await;
        let every_scope = "messages:send, messages:read, consents:read, consents:write, lookups:read, lookups:write, numbers:read, api_keys:read, api_keys:write, webhooks:read, webhooks:write";
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"scopes": format!("item 2 must be one of: {every_scope}")}));
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": []}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"scopes": "must have 1 to 11 scopes"}));
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": ["messages:read", "numbers:read", "messages:read"], "mode": "staging"}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"scopes": "item 3 repeats item 1", "mode": "must be one of: live, test"}));
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": "messages:read"}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"scopes": "must be an array"}));
        let reply = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"name": 5}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"name": "must be a string", "scopes": "is required"}));
    }

    async fn the_database_holds_no_plaintext_key(app) {
        let org = app.org().await;
        let created = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": ["messages:read"]}))).await;
        let key = created.assert_success(201)["key"].as_str().unwrap().to_owned();
        use sea_orm::EntityTrait;
        let rows = entity::api_key::Entity::find().all(app.store.connection()).await.unwrap();
        assert_eq!(rows.len(), 2);
        for secret in [&key, &org.key] {
            let secret_part = &secret["am_live_".len()..];
            for row in &rows {
                let all = format!("{row:?}");
                assert!(!all.contains(secret_part), "a key's secret is stored: {all}");
            }
            assert!(rows.iter().any(|r| r.digest == agentmessage::service::auth::digest(secret)));
        }
    }
}
