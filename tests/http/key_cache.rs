//! Authenticated keys are cached per process; a revocation is seen at once by the process that
//! made it and within a second by every other process on the database.

use std::time::Duration;

use agentmessage::{service::Services, store::Store};
use reqwest::Method;

use crate::support::{read, Backend, TestApp};

async fn a_key_revoked_through_one_process_is_refused_by_another_within_a_second(backend: Backend) {
    let app = TestApp::start(backend).await;
    // A second API process on the same database: its own pool, its own key cache.
    let store = Store::connect(&app.database_url).await.unwrap();
    let other = Services::new(store, Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(agentmessage::server::serve(
        listener,
        agentmessage::app(other),
        Default::default(),
        std::future::pending(),
    ));
    let org = app.org().await;
    let made = app
        .call(
            Method::POST,
            "/v1/api_keys",
            Some(&org.key),
            Some(serde_json::json!({"scopes": ["numbers:read"]})),
        )
        .await;
    let made = made.assert_success(201);
    let (id, key) = (
        made["id"].as_str().unwrap().to_owned(),
        made["key"].as_str().unwrap().to_owned(),
    );
    let client = reqwest::Client::new();
    let on = |base: String| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            read(
                client
                    .get(format!("{base}/v1/numbers"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .status
            .as_u16()
        }
    };
    // Both processes have authenticated (and cached) the key.
    assert_eq!(on(app.base.clone()).await, 200);
    assert_eq!(on(second.clone()).await, 200);
    app.call(
        Method::DELETE,
        &format!("/v1/api_keys/{id}"),
        Some(&org.key),
        None,
    )
    .await
    .assert_success(200);
    let at = std::time::Instant::now();
    assert_eq!(
        on(app.base.clone()).await,
        401,
        "the revoking process refuses it at once"
    );
    loop {
        match on(second.clone()).await {
            401 => break,
            status => assert_eq!(status, 200),
        }
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "the other process still accepts it after {:?}",
            at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(at.elapsed() < Duration::from_secs(1));
    // The organization's key, untouched, still works on both.
    app.call(Method::GET, "/v1/numbers", Some(&org.key), None)
        .await
        .assert_success(200);
}

crate::support::for_each_backend!(
    a_key_revoked_through_one_process_is_refused_by_another_within_a_second
);
