//! `POST /v1/messages` and `GET /v1/messages/{id}`: the seed's example and each of its errors.

use reqwest::Method;

use crate::support::{json, on_both_backends};

const FROM: &str = "+15551112222";
const TO: &str = "+15554443333";

fn seed_request() -> serde_json::Value {
    json!({
        "from": FROM,
        "to": TO,
        "text": "hello from agentmessage",
        "priority": "default",
        "tag": "order-7421"
    })
}

/// The seed's timestamp format (RFC 3339, UTC, `Z`), with the milliseconds the API adds:
/// `2026-04-26T12:00:00.000Z`.
fn is_seed_timestamp(value: &serde_json::Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    s.len() == 24
        && s.ends_with('Z')
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
        && s.as_bytes()[10] == b'T'
        && s.as_bytes()[19] == b'.'
}

on_both_backends! {
    async fn the_seed_example_with_the_demo_key_is_accepted_and_reads_back(app) {
        let demo = app.services.prepare_demo().await.expect("demo");
        let reply = app.send(&demo.key, seed_request()).await;
        let data = reply.assert_success(202).clone();
        assert_eq!(data["from"], json!(FROM));
        assert_eq!(data["to"], json!(TO));
        assert_eq!(data["text"], json!("hello from agentmessage"));
        assert_eq!(data["channel"], json!("sms"));
        assert_eq!(data["priority"], json!("default"));
        assert_eq!(data["status"], json!("queued"));
        assert_eq!(data["tag"], json!("order-7421"));
        assert_eq!(data["media_urls"], json!(null));
        assert_eq!(data["segments"], json!(1));
        assert_eq!(data["encoding"], json!("gsm7"));
        let id = data["id"].as_str().expect("id");
        assert_eq!(uuid::Uuid::parse_str(id).expect("a UUID").hyphenated().to_string(), id);
        assert!(is_seed_timestamp(&data["created_at"]), "{}", data["created_at"]);
        assert_eq!(data["created_at"], data["updated_at"]);
        // The seed's field order comes first.
        let keys: Vec<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(&keys[..9], ["id", "from", "to", "text", "channel", "priority", "status", "tag", "media_urls"]);

        let read = app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&demo.key), None).await;
        assert_eq!(read.assert_success(200), &data);

        // A second demo start mints a new key and keeps the organization.
        let again = app.services.prepare_demo().await.expect("demo again");
        assert_eq!(again.org_id, demo.org_id);
        assert_ne!(again.key, demo.key);
        app.send(&again.key, seed_request()).await.assert_success(202);
    }

    async fn mms_and_unicode_texts_report_channel_encoding_and_segments(app) {
        let org = app.sender(FROM, TO).await;
        let reply = app.send(&org.key, json!({
            "from": FROM, "to": TO, "text": "😀".repeat(36), "media_urls": ["https://example.com/a.png"]
        })).await;
        let data = reply.assert_success(202);
        assert_eq!(data["channel"], json!("mms"));
        assert_eq!(data["media_urls"], json!(["https://example.com/a.png"]));
        assert_eq!(data["encoding"], json!("ucs2"));
        assert_eq!(data["segments"], json!(2));
        assert_eq!(data["priority"], json!("default"));
        assert_eq!(data["tag"], json!(null));
        // The scheme is case-insensitive (RFC 3986).
        let reply = app.send(&org.key, json!({
            "from": FROM, "to": TO, "text": "a picture", "media_urls": ["HTTPS://example.com/a.png"]
        })).await;
        assert_eq!(reply.assert_success(202)["media_urls"], json!(["HTTPS://example.com/a.png"]));

        let text = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        let data = app.send(&org.key, json!({"from": FROM, "to": TO, "text": text, "priority": "high"})).await;
        let data = data.assert_success(202);
        assert_eq!(data["encoding"], json!("gsm7"));
        assert_eq!(data["segments"], json!(3));
        assert_eq!(data["priority"], json!("high"));
    }

    async fn missing_unknown_and_revoked_keys_are_unauthorized(app) {
        let org = app.sender(FROM, TO).await;
        app.call(Method::POST, "/v1/messages", None, Some(seed_request())).await.assert_error(401, "UNAUTHORIZED");
        let unknown = format!("am_live_{}", "A".repeat(32));
        app.send(&unknown, seed_request()).await.assert_error(401, "UNAUTHORIZED");
        app.send("not-a-key", seed_request()).await.assert_error(401, "UNAUTHORIZED");
        let basic = app.client.post(format!("{}/v1/messages", app.base)).header("authorization", format!("Basic {}", org.key)).json(&seed_request()).send().await.unwrap();
        crate::support::read(basic).await.assert_error(401, "UNAUTHORIZED");

        let created = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": ["messages:send"]}))).await;
        let created = created.assert_success(201).clone();
        let key = created["key"].as_str().unwrap();
        app.send(key, seed_request()).await.assert_success(202);
        let id = created["id"].as_str().unwrap();
        app.call(Method::DELETE, &format!("/v1/api_keys/{id}"), Some(&org.key), None).await.assert_success(200);
        let error = app.send(key, seed_request()).await.assert_error(401, "UNAUTHORIZED").clone();
        assert_eq!(error["message"], json!("authentication failed"));
    }

    async fn a_key_without_the_send_scope_is_forbidden(app) {
        let org = app.sender(FROM, TO).await;
        let created = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"scopes": ["messages:read"]}))).await;
        let key = created.assert_success(201)["key"].as_str().unwrap().to_owned();
        let reply = app.send(&key, seed_request()).await;
        let error = reply.assert_error(403, "FORBIDDEN");
        assert_eq!(error["message"], json!("missing required scope"));
        assert_eq!(error["details"], json!({"required_scope": "messages:send"}));
        // Scope comes before the body: a broken body is still 403.
        app.raw(Method::POST, "/v1/messages", Some(&key), Some("text/plain"), b"hi".to_vec()).await.assert_error(403, "FORBIDDEN");
    }

    async fn a_bad_to_is_exactly_the_seeds_validation_error(app) {
        let org = app.sender(FROM, TO).await;
        let mut body = seed_request();
        body["to"] = json!("5554443333");
        let reply = app.send(&org.key, body).await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        assert_eq!(error["message"], json!("validation failed"));
        assert_eq!(error["details"], json!({"to": "must be E.164"}));
    }

    async fn every_failing_field_is_reported_at_once(app) {
        let org = app.sender(FROM, TO).await;
        let reply = app.send(&org.key, json!({
            "from": null,
            "to": 15554443333u64,
            "text": "",
            "priority": "urgent",
            "tag": "t".repeat(257),
            "media_urls": ["ftp://example.com/a.png"],
            "colour": "blue"
        })).await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        assert_eq!(error["details"], json!({
            "colour": "is not a known field",
            "from": "must not be null",
            "media_urls": "item 1 must be an http(s) URL",
            "priority": "must be one of: default, high",
            "tag": "must be at most 256 characters",
            "text": "must be 1 to 1600 characters",
            "to": "must be a string"
        }));

        let reply = app.send(&org.key, json!({"from": FROM, "to": TO, "text": "a\u{0}b", "tag": "\u{0}"})).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({
            "tag": "must not contain NUL characters", "text": "must not contain NUL characters"
        }));
        let reply = app.send(&org.key, json!({})).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({
            "from": "is required", "text": "is required", "to": "is required"
        }));
        let reply = app.send(&org.key, json!({"from": FROM, "to": TO, "text": "a".repeat(1601), "media_urls": []})).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({
            "media_urls": "must have 1 to 10 URLs", "text": "must be 1 to 1600 characters"
        }));
        let reply = app.send(&org.key, json!({"from": FROM, "to": TO, "text": "hi", "priority": null, "tag": 7, "media_urls": ["https://example.com/a.png", 3]})).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({
            "media_urls": "item 2 must be a string", "priority": "must not be null", "tag": "must be a string"
        }));
        let ok = app.send(&org.key, json!({"from": FROM, "to": TO, "text": "😀".repeat(1600)})).await;
        ok.assert_success(202);
    }

    async fn a_from_number_of_another_organization_is_refused(app) {
        let org = app.sender(FROM, TO).await;
        let other = app.org().await;
        app.opt_in(&other, TO).await;
        let reply = app.send(&other.key, seed_request()).await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        assert_eq!(error["details"], json!({"from": "must be a number owned by your organization"}));
        app.send(&org.key, seed_request()).await.assert_success(202);
    }

    async fn sends_beyond_the_burst_are_rate_limited_with_retry_after(app) {
        let org = app.org_with_rate(1, 3).await;
        app.add_number(&org, FROM).await;
        app.opt_in(&org, TO).await;
        for _ in 0..3 {
            app.send(&org.key, seed_request()).await.assert_success(202);
        }
        let reply = app.send(&org.key, seed_request()).await;
        let error = reply.assert_error(429, "RATE_LIMITED");
        assert_eq!(error["message"], json!("rate limited"));
        let retry_after: u64 = reply.header("retry-after").expect("Retry-After").parse().expect("whole seconds");
        assert!(retry_after >= 1);
        // Another organization is not affected.
        let other = app.sender("+15551112299", TO).await;
        let mut body = seed_request();
        body["from"] = json!("+15551112299");
        app.send(&other.key, body).await.assert_success(202);
        // After waiting as told, sending works again.
        tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
        app.send(&org.key, seed_request()).await.assert_success(202);
    }

    async fn answers_carry_the_rate_limit_policy_and_what_is_left_of_it(app) {
        let org = app.org_with_rate(1, 3).await;
        app.add_number(&org, FROM).await;
        app.opt_in(&org, TO).await;
        let policy = "\"organization\";q=3;w=3";
        let reply = app.send(&org.key, seed_request()).await;
        reply.assert_success(202);
        assert_eq!(reply.header("ratelimit-policy"), Some(policy));
        assert_eq!(reply.header("ratelimit"), Some("\"organization\";r=2;t=1"));
        // A read spends nothing: the policy, and nothing about what is left.
        let read = app.call(Method::GET, "/v1/messages", Some(&org.key), None).await;
        read.assert_success(200);
        assert_eq!(read.header("ratelimit-policy"), Some(policy));
        assert_eq!(read.header("ratelimit"), None);
        let reply = app.send(&org.key, seed_request()).await;
        assert_eq!(reply.header("ratelimit"), Some("\"organization\";r=1;t=2"));
        app.send(&org.key, seed_request()).await.assert_success(202);
        let refused = app.send(&org.key, seed_request()).await;
        refused.assert_error(429, "RATE_LIMITED");
        assert_eq!(refused.header("ratelimit-policy"), Some(policy));
        assert_eq!(refused.header("ratelimit"), Some("\"organization\";r=0;t=3"));
        // Without a working key there is no caller, so no policy; a key lacking the scope has one.
        let anonymous = app.call(Method::GET, "/v1/messages", None, None).await;
        anonymous.assert_error(401, "UNAUTHORIZED");
        assert_eq!(anonymous.header("ratelimit-policy"), None);
        let made = app.call(Method::POST, "/v1/api_keys", Some(&org.key), Some(json!({"name": "reader", "scopes": ["numbers:read"]}))).await;
        let reader = made.assert_success(201)["key"].as_str().unwrap().to_owned();
        let forbidden = app.send(&reader, seed_request()).await;
        forbidden.assert_error(403, "FORBIDDEN");
        assert_eq!(forbidden.header("ratelimit-policy"), Some(policy));
    }

    async fn a_refused_send_still_spends_a_rate_limit_token(app) {
        let org = app.org_with_rate(1, 2).await;
        app.add_number(&org, FROM).await;
        // No consent: 453 twice, each spending a token; the third is 429.
        app.send(&org.key, seed_request()).await.assert_error(453, "CONSENT_REQUIRED");
        app.send(&org.key, seed_request()).await.assert_error(453, "CONSENT_REQUIRED");
        app.send(&org.key, seed_request()).await.assert_error(429, "RATE_LIMITED");
    }

    async fn status_453_is_sent_with_its_reason_phrase(app) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        let body = seed_request().to_string();
        let addr = app.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            org.key,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 453 Consent Required\r\n"), "{answer}");
    }

    async fn sends_without_consent_or_after_opt_out_need_consent(app) {
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        let error = app.send(&org.key, seed_request()).await.assert_error(453, "CONSENT_REQUIRED").clone();
        assert_eq!(error["message"], json!("consent required"));
        // The details name the recipient, why, and the operation that records consent.
        assert_eq!(error["details"], json!({
            "to": TO,
            "consent": "never_opted_in",
            "fix": format!("record the recipient's opt-in with PUT /v1/consents/{TO} (operation consents_update)"),
        }));
        app.opt_in(&org, TO).await;
        app.send(&org.key, seed_request()).await.assert_success(202);
        app.call(Method::DELETE, &format!("/v1/consents/{TO}"), Some(&org.key), None).await.assert_success(200);
        let error = app.send(&org.key, seed_request()).await.assert_error(453, "CONSENT_REQUIRED").clone();
        assert_eq!(error["details"]["consent"], json!("opted_out_through_api"));
        assert_eq!(error["details"]["to"], json!(TO));
        app.opt_in(&org, TO).await;
        app.send(&org.key, seed_request()).await.assert_success(202);
    }

    async fn a_recent_landline_lookup_blocks_the_send(app) {
        let landline = "+12125550120";
        let org = app.sender(FROM, landline).await;
        let mut body = seed_request();
        body["to"] = json!(landline);
        // No lookup yet: a send never triggers one.
        app.send(&org.key, body.clone()).await.assert_success(202);
        let lookup = app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": landline}))).await;
        assert_eq!(lookup.assert_success(201)["line_type"], json!("landline"));
        let error = app.send(&org.key, body.clone()).await.assert_error(422, "LINE_TYPE_BLOCKED").clone();
        assert!(error.get("details").is_none());
        // A mobile number of the same organization is not affected.
        app.send(&org.key, seed_request()).await.assert_error(453, "CONSENT_REQUIRED");
    }

    async fn an_unknown_or_foreign_message_id_is_not_found(app) {
        let org = app.sender(FROM, TO).await;
        let id = app.send(&org.key, seed_request()).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let other = app.org().await;
        app.call(Method::GET, &format!("/v1/messages/{id}"), Some(&other.key), None).await.assert_error(404, "NOT_FOUND");
        app.call(Method::GET, "/v1/messages/not-a-uuid", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        let random = uuid::Uuid::now_v7();
        app.call(Method::GET, &format!("/v1/messages/{random}"), Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
    }
}

/// The lookup rule on both backends: a landline lookup older than the maximum age, or one
/// followed by a newer mobile lookup, does not block.
mod lookup_age {
    use super::*;

    async fn an_old_landline_lookup_or_a_newer_mobile_one_does_not_block(
        backend: crate::support::Backend,
    ) {
        use agentmessage::domain::{lookup::LineType, PhoneNumber};
        let app = crate::support::TestApp::start_with(
            backend,
            agentmessage::service::Settings {
                lookup_max_age: std::time::Duration::from_secs(2),
                ..Default::default()
            },
        )
        .await;
        let org = app.sender(FROM, TO).await;
        let to = PhoneNumber::parse(TO).unwrap();
        app.store
            .tenant(org.id, entity::values::KeyMode::Live)
            .insert_lookup(&to, LineType::Landline)
            .await
            .unwrap();
        app.send(&org.key, seed_request())
            .await
            .assert_error(422, "LINE_TYPE_BLOCKED");
        app.store
            .tenant(org.id, entity::values::KeyMode::Live)
            .insert_lookup(&to, LineType::Mobile)
            .await
            .unwrap();
        app.send(&org.key, seed_request()).await.assert_success(202);
        app.store
            .tenant(org.id, entity::values::KeyMode::Live)
            .insert_lookup(&to, LineType::Landline)
            .await
            .unwrap();
        app.send(&org.key, seed_request())
            .await
            .assert_error(422, "LINE_TYPE_BLOCKED");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        app.send(&org.key, seed_request()).await.assert_success(202);
    }

    crate::support::for_each_backend!(an_old_landline_lookup_or_a_newer_mobile_one_does_not_block);
}

mod group_commit {
    use super::*;

    on_both_backends! {
        async fn concurrent_sends_are_committed_together_and_each_gets_its_own_rules_answer(app) {
            // Four kinds of send at once: accepted, no consent (453), a recent landline lookup
            // (422 LINE_TYPE_BLOCKED) and a `from` the organization does not own (422 details.from).
            let landline = "+12125550121";
            let org = app.sender(FROM, TO).await;
            app.opt_in(&org, landline).await;
            let lookup = app.call(Method::POST, "/v1/lookups", Some(&org.key), Some(json!({"phone_number": landline}))).await;
            assert_eq!(lookup.assert_success(201)["line_type"], json!("landline"));
            let body = |i: usize| {
                let mut body = seed_request();
                body["tag"] = json!(format!("n{i}"));
                match i % 4 {
                    0 => {}
                    1 => body["to"] = json!("+15554440001"),
                    2 => body["to"] = json!(landline),
                    _ => body["from"] = json!("+15551113333"),
                }
                body
            };
            let replies = futures_util::future::join_all((0..80).map(|i| {
                let (app, key) = (&app, org.key.clone());
                async move { (i, app.send(&key, body(i)).await) }
            }))
            .await;
            for (i, reply) in &replies {
                match i % 4 {
                    0 => {
                        let data = reply.assert_success(202);
                        assert_eq!(data["tag"], json!(format!("n{i}")), "each send gets its own message");
                        assert_eq!(data["to"], json!(TO));
                    }
                    1 => {
                        reply.assert_error(453, "CONSENT_REQUIRED");
                    }
                    2 => {
                        reply.assert_error(422, "LINE_TYPE_BLOCKED");
                    }
                    _ => {
                        let error = reply.assert_error(422, "VALIDATION_FAILED");
                        assert!(error["details"]["from"].is_string(), "{error}");
                    }
                }
            }
            // Exactly the accepted sends were stored, and sends shared transactions: a batch's
            // messages carry its commit's one creation time.
            let conn = app.single_connection().await;
            let backend = sea_orm::ConnectionTrait::get_database_backend(&conn);
            let rows = sea_orm::ConnectionTrait::query_all_raw(
                &conn,
                sea_orm::Statement::from_string(
                    backend,
                    "SELECT COUNT(*) AS n FROM messages GROUP BY created_at",
                ),
            )
            .await
            .expect("count");
            let sizes: Vec<i64> = rows.iter().map(|r| r.try_get("", "n").expect("n")).collect();
            assert_eq!(sizes.iter().sum::<i64>(), 20, "{sizes:?}");
            assert!(sizes.iter().any(|n| *n > 1), "every send committed alone: {sizes:?}");
            let listed = app.call(Method::GET, "/v1/messages?limit=100", Some(&org.key), None).await;
            assert_eq!(listed.assert_success(200).as_array().map(Vec::len), Some(20));
        }
    }
}
