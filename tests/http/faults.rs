//! Fault injection: a database that stops answering (PostgreSQL), stays locked (SQLite) or has no
//! connection left (PostgreSQL) gives 503 with `Retry-After`, a broken query gives 500 (both
//! backends), and neither leaks internal text to the client.

use std::time::Duration;

use agentmessage::{service::Services, store::Store};
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::Method;

use crate::{
    pg::Cluster,
    support::{json, read, Backend, TestApp},
};

#[tokio::test]
async fn a_stopped_database_answers_503_with_retry_after_and_recovers() {
    let (cluster, _dir) = Cluster::create();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let services = Services::new(store, Default::default());
    let org = services
        .create_organization("faults", 100, 100)
        .await
        .unwrap();
    let (_, key) = services
        .insert_key(
            org.id,
            None,
            &agentmessage::domain::ScopeSet::all(),
            agentmessage::domain::organization::KeyMode::Live,
        )
        .await
        .unwrap();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(agentmessage::app(services)));
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(&key)
            .send()
    };

    read(get("/v1/numbers").await.unwrap())
        .await
        .assert_success(200);
    cluster.stop();
    let reply = read(get("/v1/numbers").await.unwrap()).await;
    let error = reply.assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(error["message"], json!("service unavailable"));
    assert!(reply
        .header("retry-after")
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|s| s >= 1));
    assert!(
        !reply.text.to_lowercase().contains("connect"),
        "no internal text: {}",
        reply.text
    );
    // Liveness does not touch the database.
    read(get("/healthz").await.unwrap())
        .await
        .assert_success(200);

    cluster.start();
    let mut recovered = false;
    for _ in 0..50 {
        if get("/v1/numbers").await.unwrap().status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the server recovers when the database is back");
    cluster.stop();
}

async fn a_failing_query_answers_500_without_leaking_internals(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    use sea_orm::ConnectionTrait;
    app.store
        .connection()
        .execute_unprepared(match backend {
            Backend::Sqlite => "DROP TABLE messages",
            Backend::Postgres => "DROP TABLE messages CASCADE",
        })
        .await
        .unwrap();
    let reply = app
        .send(
            &org.key,
            json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"}),
        )
        .await;
    let error = reply.assert_error(500, "INTERNAL_ERROR");
    assert_eq!(error["message"], json!("internal error"));
    assert!(error.get("details").is_none());
    for leak in ["messages", "table", "sql", "insert", "relation"] {
        assert!(
            !reply.text.to_lowercase().contains(leak),
            "{leak} leaked: {}",
            reply.text
        );
    }
    let reply = app
        .call(
            Method::GET,
            &format!("/v1/messages/{}", uuid::Uuid::now_v7()),
            Some(&org.key),
            None,
        )
        .await;
    reply.assert_error(500, "INTERNAL_ERROR");
}

/// Short waits, so that a locked or exhausted database answers at once.
fn impatient() -> agentmessage::store::StoreSettings {
    agentmessage::store::StoreSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(300),
        busy_timeout: Duration::from_millis(300),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_locked_sqlite_database_answers_503_and_recovers() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::start_with_store(Backend::Sqlite, Default::default(), impatient()).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let body = json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"});
    // Another process writes and holds its write lock.
    let other = app.single_connection().await;
    let holding = other.begin().await.unwrap();
    holding
        .execute_unprepared("UPDATE organizations SET name = name")
        .await
        .unwrap();
    let reply = app.send(&org.key, body.clone()).await;
    reply.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(reply
        .header("retry-after")
        .is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    assert!(!reply.text.contains("locked"), "{}", reply.text);
    holding.rollback().await.unwrap();
    // While the lock was held, one write looked for it at most every quarter of a second; the
    // next after that finds it gone.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.send(&org.key, body).await.assert_success(202);
}

#[tokio::test]
async fn an_exhausted_postgres_pool_answers_503_and_recovers() {
    use sea_orm::TransactionTrait;
    let app = TestApp::start_with_store(Backend::Postgres, Default::default(), impatient()).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let body = json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"});
    // Every connection of the pool is taken.
    let first = app.store.connection().begin().await.unwrap();
    let second = app.store.connection().begin().await.unwrap();
    let reply = app.send(&org.key, body.clone()).await;
    reply.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(reply.header("retry-after").is_some());
    drop((first, second));
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.send(&org.key, body).await.assert_success(202);
}

crate::support::for_each_backend!(a_failing_query_answers_500_without_leaking_internals);
