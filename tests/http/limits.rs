//! What one organization may hold: webhook endpoints and API keys per mode, each refusal a
//! 409 `LIMIT_REACHED` naming the limit; and a fan-out to thousands of endpoints still commits.

use futures_util::{stream, StreamExt};
use reqwest::Method;

use agentmessage::service::{Limits, Settings};

use crate::support::{for_each_backend, json, Backend, TestApp};
use crate::webhooks::settings as webhook_settings;

const URL: &str = "http://127.0.0.1:9/hooks";

fn limited(webhook_endpoints: u64, api_keys: u64) -> Settings {
    Settings {
        limits: Limits {
            webhook_endpoints,
            api_keys,
        },
        ..webhook_settings(true)
    }
}

async fn create_endpoint(app: &TestApp, key: &str) -> crate::support::Reply {
    app.call(
        Method::POST,
        "/v1/webhook_endpoints",
        Some(key),
        Some(json!({"url": URL, "events": ["consent.updated"]})),
    )
    .await
}

async fn endpoints_and_keys_stop_at_their_limits_per_organization_and_mode(backend: Backend) {
    let app = TestApp::start_with(backend, limited(3, 3)).await;
    let org = app.org().await;
    let other = app.org().await;

    // Endpoints: three, then 409 naming the limit; another organization and the test mode
    // count on their own; deleting one makes room.
    let mut ids = vec![];
    for _ in 0..3 {
        let made = create_endpoint(&app, &org.key).await;
        ids.push(made.assert_success(201)["id"].as_str().unwrap().to_owned());
    }
    let refused = create_endpoint(&app, &org.key).await;
    assert_eq!(
        refused.assert_error(409, "LIMIT_REACHED")["details"],
        json!({"limit": "3"})
    );
    assert!(refused.headers.get("retry-after").is_none());
    create_endpoint(&app, &other.key).await.assert_success(201);
    let test_key = app.test_key(&org).await;
    create_endpoint(&app, &test_key).await.assert_success(201);
    let listed = app
        .call(Method::GET, "/v1/webhook_endpoints", Some(&org.key), None)
        .await;
    assert_eq!(listed.assert_success(200).as_array().unwrap().len(), 3);
    app.call(
        Method::DELETE,
        &format!("/v1/webhook_endpoints/{}", ids[0]),
        Some(&org.key),
        None,
    )
    .await
    .assert_success(200);
    create_endpoint(&app, &org.key).await.assert_success(201);
    create_endpoint(&app, &org.key)
        .await
        .assert_error(409, "LIMIT_REACHED");

    // Keys: the organization's own key is one of three unrevoked; revoking one makes room.
    let create_key = || async {
        app.call(
            Method::POST,
            "/v1/api_keys",
            Some(&org.key),
            Some(json!({"scopes": ["messages:read"]})),
        )
        .await
    };
    let first = create_key().await.assert_success(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_key().await.assert_success(201);
    let refused = create_key().await;
    assert_eq!(
        refused.assert_error(409, "LIMIT_REACHED")["details"],
        json!({"limit": "3"})
    );
    app.call(
        Method::DELETE,
        &format!("/v1/api_keys/{first}"),
        Some(&org.key),
        None,
    )
    .await
    .assert_success(200);
    create_key().await.assert_success(201);

    // Concurrent creations never pass the limit.
    let racer = app.org().await;
    let answers: Vec<u16> = stream::iter(0..12)
        .map(|_| async { create_endpoint(&app, &racer.key).await.status.as_u16() })
        .buffer_unordered(12)
        .collect()
        .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 201).count(),
        3,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 409).count(),
        9,
        "{answers:?}"
    );
}

/// 5,000 endpoints subscribed to one event: the event's 5,000 delivery rows are written in
/// statements each under the bind-variable limits of SQLite (32,766) and PostgreSQL (65,535),
/// and the consent change that raised it commits.
async fn a_fan_out_to_five_thousand_endpoints_commits(backend: Backend) {
    const ENDPOINTS: usize = 5_000;
    let app = TestApp::start_with(backend, limited(ENDPOINTS as u64, 3)).await;
    let org = app.org().await;
    let made: Vec<u16> = stream::iter(0..ENDPOINTS)
        .map(|_| async { create_endpoint(&app, &org.key).await.status.as_u16() })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(made.iter().all(|s| *s == 201));
    create_endpoint(&app, &org.key)
        .await
        .assert_error(409, "LIMIT_REACHED");

    app.opt_in(&org, "+12125550100").await;
    let conn = app.single_connection().await;
    let backend = sea_orm::ConnectionTrait::get_database_backend(&conn);
    let row = sea_orm::ConnectionTrait::query_one_raw(
        &conn,
        sea_orm::Statement::from_string(backend, "SELECT COUNT(*) AS n FROM webhook_deliveries"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), ENDPOINTS as i64);
}

for_each_backend!(
    endpoints_and_keys_stop_at_their_limits_per_organization_and_mode,
    a_fan_out_to_five_thousand_endpoints_commits,
);
