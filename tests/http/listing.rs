//! `GET /v1/messages`: filters, cursor pagination that neither repeats nor skips while messages
//! arrive, and pages read through the listing index on both backends (so a page costs the same
//! at any depth; `scripts/bench-listing` measures it at 1,000,000 rows).

use std::collections::HashSet;

use agentmessage::domain::Timestamp;
use entity::{
    message,
    values::{Channel, Direction, Encoding, KeyMode, MessageStatus, Priority},
};
use reqwest::Method;
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use crate::support::{json, on_both_backends, Org, TestApp};

const FROM: &str = "+15551112222";

/// Stores `count` queued messages for `org` directly, oldest first, a millisecond apart.
async fn bulk_messages(app: &TestApp, org: &Org, count: usize) {
    let start =
        Timestamp::now().as_datetime() - chrono::Duration::milliseconds(count as i64 + 1000);
    let mut rows = Vec::with_capacity(500);
    for i in 0..count {
        let at = start + chrono::Duration::milliseconds(i as i64);
        rows.push(message::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org.id),
            mode: Set(KeyMode::Live),
            direction: Set(Direction::Outbound),
            from_number: Set(FROM.into()),
            to_number: Set(format!("+1212555{:04}", i % 10_000)),
            body: Set("bulk".into()),
            channel: Set(Channel::Sms),
            priority: Set(Priority::Default),
            status: Set(MessageStatus::Delivered),
            tag: Set(Some(format!("bulk-{}", i % 7))),
            media_urls: Set(None),
            segments: Set(1),
            encoding: Set(Encoding::Gsm7),
            error_code: Set(None),
            carrier: Set(None),
            carrier_message_id: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            attempted_at: Set(None),
            sent_at: Set(None),
            delivered_at: Set(None),
            error_message: Set(None),
            retry_at: Set(None),
            send_at: Set(None),
            valid_until: Set(None),
            event_count: Set(0),
        });
        if rows.len() == 500 || i + 1 == count {
            message::Entity::insert_many(std::mem::take(&mut rows))
                .exec_without_returning(app.store.connection())
                .await
                .unwrap();
        }
    }
}

/// Walks every page with `limit`, sending one new message every `send_every` pages; returns the
/// ids seen, in order. Fails when the walk takes more than `max_pages` (a cursor that does not
/// advance would otherwise walk for ever).
async fn walk(
    app: &TestApp,
    org: &Org,
    from: &str,
    limit: u32,
    send_every: usize,
    max_pages: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        assert!(
            pages < max_pages,
            "the walk took more than {max_pages} pages: the cursor does not advance"
        );
        let path = match &cursor {
            Some(c) => format!("/v1/messages?limit={limit}&cursor={c}"),
            None => format!("/v1/messages?limit={limit}"),
        };
        let reply = app.call(Method::GET, &path, Some(&org.key), None).await;
        reply.assert_success(200);
        let page = reply.json["data"].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        seen.extend(page.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        pages += 1;
        if send_every > 0 && pages % send_every == 0 {
            app.send(
                &org.key,
                json!({"from": from, "to": "+12125550107", "text": "arrives during the walk"}),
            )
            .await
            .assert_success(202);
        }
        match reply.json["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(reply.json["has_more"], json!(true));
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(reply.json["has_more"], json!(false));
                return seen;
            }
        }
    }
}

async fn existing_ids(app: &TestApp, org: &Org) -> HashSet<String> {
    app.store
        .tenant(org.id, KeyMode::Live)
        .list_messages(&Default::default(), None, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect()
}

on_both_backends! {
    async fn filters_narrow_the_list_and_bad_values_are_bad_requests(app) {
        let org = app.org().await;
        app.add_number(&org, FROM).await;
        for to in ["+12125550108", "+12125550109"] {
            app.opt_in(&org, to).await;
        }
        let before = Timestamp::now().to_wire();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        app.send(&org.key, json!({"from": FROM, "to": "+12125550108", "text": "a", "tag": "alpha"})).await.assert_success(202);
        app.send(&org.key, json!({"from": FROM, "to": "+12125550109", "text": "b", "tag": "beta"})).await.assert_success(202);
        app.send(&org.key, json!({"from": FROM, "to": "+12125550109", "text": "c", "tag": "beta"})).await.assert_success(202);
        app.carrier_call("/v1/carrier/inbound", json!({"from": "+12125550109", "to": FROM, "text": "hello"})).await.assert_success(201);

        let count = |query: &'static str| {
            let app = &app;
            let key = org.key.clone();
            async move {
                let reply = app.call(Method::GET, &format!("/v1/messages{query}"), Some(&key), None).await;
                reply.assert_success(200).as_array().unwrap().len()
            }
        };
        assert_eq!(count("").await, 4);
        assert_eq!(count("?tag=beta").await, 2);
        assert_eq!(count("?to=%2B12125550109").await, 2);
        assert_eq!(count("?to=%2B12125550109&tag=beta").await, 2);
        assert_eq!(count("?from=%2B12125550109").await, 1);
        assert_eq!(count("?direction=inbound").await, 1);
        assert_eq!(count("?direction=outbound&status=queued").await, 3);
        assert_eq!(count("?status=delivered").await, 0);
        assert_eq!(count("?limit=2").await, 2);
        let reply = app.call(Method::GET, &format!("/v1/messages?created_after={before}"), Some(&org.key), None).await;
        assert_eq!(reply.assert_success(200).as_array().unwrap().len(), 4);
        let reply = app.call(Method::GET, &format!("/v1/messages?created_before={before}"), Some(&org.key), None).await;
        assert_eq!(reply.assert_success(200).as_array().unwrap().len(), 0);
        // Newest first.
        let reply = app.call(Method::GET, "/v1/messages?direction=outbound", Some(&org.key), None).await;
        let texts: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["c", "b", "a"]);

        let reply = app.call(Method::GET, "/v1/messages?status=lost&direction=sideways&to=123&limit=0&cursor=nope&created_after=yesterday", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(400, "BAD_REQUEST")["details"], json!({
            "created_after": "must be an RFC 3339 time, like 2026-04-26T12:00:00Z",
            "cursor": "is not a cursor this server returned",
            "direction": "must be one of: outbound, inbound",
            "limit": "must be a whole number from 1 to 100",
            "status": "must be one of: scheduled, queued, sending, sent, delivered, undelivered, failed, received, canceled",
            "to": "must be E.164 (+, country code, number), such as +14155550123; in a query string write the + as %2B: to=%2B14155550123"
        }));
        // A + sent unencoded arrives as a space: the message says so and how to write it.
        let reply = app.call(Method::GET, "/v1/messages?to=+15554443333", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(400, "BAD_REQUEST")["details"], json!({
            "to": "must be E.164: the + arrived as a space (a + in a query string means a space), so write it as %2B: to=%2B15554443333"
        }));
        let reply = app.call(Method::GET, "/v1/messages?to=%2B15554443333", Some(&org.key), None).await;
        reply.assert_success(200);
        app.call(Method::GET, "/v1/messages?limit=101", Some(&org.key), None).await.assert_error(400, "BAD_REQUEST");
        // Authentication still comes first.
        app.call(Method::GET, "/v1/messages?limit=0", None, None).await.assert_error(401, "UNAUTHORIZED");
        // Another organization sees none of them.
        let other = app.org().await;
        assert_eq!(app.call(Method::GET, "/v1/messages", Some(&other.key), None).await.assert_success(200), &json!([]));
    }

    async fn a_messages_events_come_in_pages(app) {
        let org = app.sender(FROM, "+12125550108").await;
        let id = app.send(&org.key, json!({"from": FROM, "to": "+12125550108", "text": "hi"})).await.assert_success(202)["id"].as_str().unwrap().to_owned();
        let worker = app.worker(Default::default());
        worker.tick().await.unwrap();
        let steps = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await;
        let carrier_id = steps.json["data"].as_array().unwrap().iter().find_map(|e| e["carrier_message_id"].as_str().map(str::to_owned)).unwrap_or_else(|| panic!("{}", steps.text));
        for _ in 0..30 {
            app.carrier_call("/v1/carrier/receipts", json!({"carrier_message_id": carrier_id, "stat": "ENROUTE"})).await.assert_success(200);
        }
        let mut seen = Vec::new();
        let mut path = format!("/v1/messages/{id}/events?limit=7");
        let mut pages = 0;
        loop {
            assert!(pages < 20, "the events walk does not end: the cursor does not advance");
            let reply = app.call(Method::GET, &path, Some(&org.key), None).await;
            reply.assert_success(200);
            let page = reply.json.clone();
            pages += 1;
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 7);
            seen.extend(data.iter().map(|e| e["sequence"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    assert_eq!(page["has_more"], json!(true));
                    path = format!("/v1/messages/{id}/events?limit=7&cursor={cursor}");
                }
                None => break,
            }
        }
        let total = seen.len() as i64;
        assert!(total >= 34, "{seen:?}");
        assert_eq!(seen, (1..=total).collect::<Vec<_>>());
        assert_eq!(pages, (total + 6) / 7);
        // The default page is 20; a bad cursor is 400.
        let first = app.call(Method::GET, &format!("/v1/messages/{id}/events"), Some(&org.key), None).await;
        assert_eq!(first.json["data"].as_array().unwrap().len(), 20);
        let bad = app.call(Method::GET, &format!("/v1/messages/{id}/events?cursor=x"), Some(&org.key), None).await;
        assert_eq!(bad.assert_error(400, "BAD_REQUEST")["details"], json!({"cursor": "is not a cursor this server returned"}));
    }

    async fn a_cursor_walk_has_no_duplicate_and_no_gap_while_messages_arrive(app) {
        let small = app.org().await;
        app.add_number(&small, FROM).await;
        app.opt_in(&small, "+12125550107").await;
        bulk_messages(&app, &small, 1_000).await;
        let big = app.org().await;
        app.store.system().insert_phone_number(big.id, &agentmessage::domain::PhoneNumber::parse("+15551113333").unwrap()).await.unwrap();
        bulk_messages(&app, &big, 20_000).await;

        // The walk over 1,000 while new messages arrive: every message that existed is seen once.
        let before = existing_ids(&app, &small).await;
        let seen = walk(&app, &small, FROM, 37, 3, 100).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a message was listed twice");
        for id in &before {
            assert!(unique.contains(id), "message {id} was skipped");
        }

        // The same over 20,000 beside the other organization's (newcomers arrive from the big
        // organization's own sends).
        let big_key = big.key.clone();
        app.opt_in(&big, "+12125550107").await;
        let before = existing_ids(&app, &big).await;
        assert_eq!(before.len(), 20_000);
        let big_org = Org { id: big.id, key: big_key };
        let seen = walk(&app, &big_org, "+15551113333", 100, 50, 300).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a message was listed twice");
        assert!(before.iter().all(|id| unique.contains(id)), "a message was skipped");
    }
}

#[tokio::test]
async fn sqlite_lists_pages_through_the_listing_index() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::start(crate::support::Backend::Sqlite).await;
    let plan = app.store
        .connection()
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "EXPLAIN QUERY PLAN SELECT * FROM messages WHERE org_id = x'00' AND mode = 'live' AND (created_at, id) < ('2026', x'00') ORDER BY created_at DESC, id DESC LIMIT 101",
        ))
        .await
        .unwrap();
    let text: Vec<String> = plan
        .iter()
        .map(|row| row.try_get::<String>("", "detail").unwrap())
        .collect();
    assert!(
        text.iter()
            .any(|d| d.contains("idx_messages_org_mode_created_id")),
        "{text:?}"
    );
    assert!(
        !text.iter().any(|d| d.contains("TEMP B-TREE")),
        "sorted without the index: {text:?}"
    );
}

/// On PostgreSQL too, a page is an index range scan in the listing's order: no sort, whatever
/// the depth (sequential scans are disabled so that a small table cannot hide a missing index).
#[tokio::test]
async fn postgres_lists_pages_through_the_listing_index() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::start(crate::support::Backend::Postgres).await;
    let connection = app.single_connection().await;
    connection
        .execute_unprepared("SET enable_seqscan = off")
        .await
        .unwrap();
    let plan = connection
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "EXPLAIN SELECT * FROM messages WHERE org_id = '00000000-0000-0000-0000-000000000000' AND mode = 'live' AND (created_at, id) < ('2026-04-26T12:00:00Z'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid) ORDER BY created_at DESC, id DESC LIMIT 101",
        ))
        .await
        .unwrap();
    let text: Vec<String> = plan
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap())
        .collect();
    assert!(
        text.iter()
            .any(|d| d.contains("Index Scan") && d.contains("idx_messages_org_mode_created_id")),
        "{text:#?}"
    );
    assert!(
        !text.iter().any(|d| d.contains("Sort")),
        "sorted without the index: {text:#?}"
    );
}
