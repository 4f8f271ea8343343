//! The test harness: the real app on an ephemeral port with a fresh database (SQLite, and
//! PostgreSQL when `AGENTMESSAGE_TEST_POSTGRES_URL` names a server), plus builders for test data.

use std::{net::SocketAddr, time::Duration};

use agentmessage::{
    domain::{PhoneNumber, ScopeSet},
    service::{Services, Settings},
    store::Store,
};
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde_json::Value;

pub use serde_json::json;

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub services: Services,
    /// The database under the app, for tests that seed or inspect rows directly.
    pub store: Store,
    pub database_url: String,
    /// The simulated lookup vendor, which counts its calls.
    pub lookups: std::sync::Arc<agentmessage::service::lookups::SimulatedLookups>,
    /// The simulated carrier workers of this app submit to.
    pub carrier: std::sync::Arc<agentmessage::delivery::SimulatedCarrier>,
    _dir: Option<tempfile::TempDir>,
}

/// The carrier secret test apps accept on `/v1/carrier/*`.
pub const CARRIER_SECRET: &str = "test-carrier-secret";

/// A running delivery worker; stopped when dropped.
pub struct RunningWorker(tokio::task::JoinHandle<()>);

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningWorker {
    pub fn spawn(worker: agentmessage::delivery::Worker) -> RunningWorker {
        RunningWorker(tokio::spawn(worker.run(std::future::pending())))
    }
}

impl TestApp {
    /// A worker with these settings over this app's simulated carrier.
    pub fn worker(
        &self,
        settings: agentmessage::delivery::WorkerSettings,
    ) -> agentmessage::delivery::Worker {
        agentmessage::delivery::Worker::new(self.services.clone(), self.carrier.clone(), settings)
    }

    /// Runs a worker in the background (fast polls; the given validity).
    pub fn run_worker(&self, validity: Duration) -> RunningWorker {
        let settings = agentmessage::delivery::WorkerSettings {
            validity,
            poll: Duration::from_millis(20),
            sweep_every: Duration::from_millis(100),
            ..Default::default()
        };
        let worker = self.worker(settings);
        RunningWorker(tokio::spawn(worker.run(std::future::pending())))
    }

    /// Polls a message until `done` holds for its status, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        key: &str,
        id: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let reply = self
                .call(Method::GET, &format!("/v1/messages/{id}"), Some(key), None)
                .await;
            let data = reply.assert_success(200).clone();
            if done(data["status"].as_str().unwrap_or_default()) {
                return data;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} stayed {}",
                data["status"]
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A carrier callback.
    pub async fn carrier_call(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(CARRIER_SECRET), Some(body))
            .await
    }
}

/// An organization with a key holding every scope.
pub struct Org {
    pub id: uuid::Uuid,
    pub key: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error envelope with `status` and `code`, and that the request id in the body
    /// equals the `X-Request-Id` header; returns the `error` object.
    pub fn assert_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        assert_eq!(self.json["success"], json!(false), "{}", self.text);
        let error = &self.json["error"];
        assert_eq!(error["code"], json!(code), "{}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        let header_id = self.header("x-request-id").expect("X-Request-Id header");
        assert_eq!(error["request_id"], json!(header_id), "request ids differ");
        assert_eq!(header_id.len(), 26, "a ULID");
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error content type {:?}",
            self.header("content-type")
        );
        error
    }

    /// Asserts a success envelope with `status`; returns `data`.
    pub fn assert_success(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        assert_eq!(self.json["success"], json!(true), "{}", self.text);
        assert!(self.header("x-request-id").is_some());
        &self.json["data"]
    }
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl TestApp {
    /// A fresh app on `backend`.
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, Settings::default()).await
    }

    pub async fn start_with(backend: Backend, settings: Settings) -> TestApp {
        Self::start_with_store(backend, settings, Default::default()).await
    }

    /// An app whose store waits as `store_settings` says.
    pub async fn start_with_store(
        backend: Backend,
        settings: Settings,
        store_settings: agentmessage::store::StoreSettings,
    ) -> TestApp {
        Self::start_full(backend, settings, store_settings, Default::default()).await
    }

    /// An app served with `server_settings` (timeouts, connection cap).
    pub async fn start_full(
        backend: Backend,
        settings: Settings,
        store_settings: agentmessage::store::StoreSettings,
        server_settings: agentmessage::server::ServerSettings,
    ) -> TestApp {
        let (database_url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                (
                    format!("sqlite://{}/agentmessage.db", dir.path().display()),
                    Some(dir),
                )
            }
            Backend::Postgres => (fresh_postgres_database().await, None),
        };
        let store = Store::connect_with(&database_url, store_settings)
            .await
            .expect("connect");
        let url = database_url.clone();
        store.migrate().await.expect("migrate");
        let settings = Settings {
            carrier_secret: settings
                .carrier_secret
                .or_else(|| Some(CARRIER_SECRET.into())),
            ..settings
        };
        let lookups =
            std::sync::Arc::new(agentmessage::service::lookups::SimulatedLookups::default());
        let services = Services::new(store.clone(), settings).with_lookups(lookups.clone());
        let carrier = std::sync::Arc::new(agentmessage::delivery::SimulatedCarrier::new(
            services.clone(),
            agentmessage::delivery::simulated::default_receipt_delay(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("tcp address");
        let app = agentmessage::app(services.clone());
        tokio::spawn(agentmessage::server::serve(
            listener,
            app,
            server_settings,
            std::future::pending(),
        ));
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            services,
            store,
            database_url: url,
            lookups,
            carrier,
            _dir: dir,
        }
    }

    /// A second handle on the app's database with a single connection, for schema changes that
    /// must all run on one connection (SQLite keeps a schema per connection until it reloads).
    pub async fn single_connection(&self) -> sea_orm::DatabaseConnection {
        let mut options = sea_orm::ConnectOptions::new(self.database_url.clone());
        options
            .max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        sea_orm::Database::connect(options).await.expect("connect")
    }

    /// An organization with a generous rate limit and a key with every scope.
    pub async fn org(&self) -> Org {
        self.org_with_rate(1000, 1000).await
    }

    pub async fn org_with_rate(&self, rate: u32, burst: u32) -> Org {
        let org = self
            .services
            .create_organization("test org", rate, burst)
            .await
            .expect("org");
        let (_, key) = self
            .services
            .insert_key(
                org.id,
                Some("test"),
                &ScopeSet::all(),
                agentmessage::domain::organization::KeyMode::Live,
            )
            .await
            .expect("key");
        Org { id: org.id, key }
    }

    /// A test-mode key with every scope for `org`.
    pub async fn test_key(&self, org: &Org) -> String {
        let (_, key) = self
            .services
            .insert_key(
                org.id,
                Some("test mode"),
                &ScopeSet::all(),
                agentmessage::domain::organization::KeyMode::Test,
            )
            .await
            .expect("test key");
        key
    }

    pub async fn add_number(&self, org: &Org, number: &str) {
        self.services
            .add_number(org.id, &PhoneNumber::parse(number).expect("E.164"))
            .await
            .expect("number");
    }

    /// An organization that owns `from` and has `to` opted in, through the API.
    pub async fn sender(&self, from: &str, to: &str) -> Org {
        let org = self.org().await;
        self.add_number(&org, from).await;
        self.opt_in(&org, to).await;
        org
    }

    pub async fn opt_in(&self, org: &Org, number: &str) {
        self.call(
            Method::PUT,
            &format!("/v1/consents/{number}"),
            Some(&org.key),
            Some(json!({"source": "web_form"})),
        )
        .await
        .assert_success(200);
    }

    /// Sends `method path` with an optional bearer key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("request")).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        read(request.send().await.expect("request")).await
    }

    pub async fn send(&self, key: &str, body: Value) -> Reply {
        self.call(Method::POST, "/v1/messages", Some(key), Some(body))
            .await
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// A new, empty database on the configured PostgreSQL server. Without one the test fails (it
/// never skips): `scripts/test` and `scripts/with-postgres` start a server and name it in
/// `AGENTMESSAGE_TEST_POSTGRES_URL`.
pub async fn fresh_postgres_database() -> String {
    let base = std::env::var("AGENTMESSAGE_TEST_POSTGRES_URL").expect(
        "AGENTMESSAGE_TEST_POSTGRES_URL names the PostgreSQL test server: run the tests with scripts/test (or under scripts/with-postgres)",
    );
    let name = format!("am_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    let admin = Store::connect(&base)
        .await
        .expect("connect to the PostgreSQL test server");
    use sea_orm::ConnectionTrait;
    admin
        .connection()
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("a database URL ends with /NAME");
    format!("{prefix}/{name}")
}

/// Writes each test once and runs it on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $app = $crate::support::TestApp::start($crate::support::Backend::Sqlite).await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $app = $crate::support::TestApp::start($crate::support::Backend::Postgres).await;
                    $body
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// Runs each named `async fn(Backend)` on SQLite and on PostgreSQL, for tests that start their
/// own app (with settings, a carrier, …).
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_backend;
