//! Starting the real server as a process, bootstrapping it with the admin command line, and
//! running the suite against it.

use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use conformance::{Options, Report, Spec, Target};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentmessage");

/// The carrier secret the test servers accept.
pub const CARRIER_SECRET: &str = "conformance-carrier-secret";
/// The MMS centre's credentials the servers these tests start take on `/v1/carrier/mm7`.
pub const MM7_USER: &str = "conformance-mmsc";
pub const MM7_PASSWORD: &str = "conformance-mmsc-password";

/// A database for one test.
pub struct Database {
    pub url: String,
    pub _dir: Option<tempfile::TempDir>,
}

impl Database {
    pub fn sqlite() -> Database {
        let dir = tempfile::tempdir().unwrap();
        Database {
            url: format!("sqlite://{}/agentmessage.db", dir.path().display()),
            _dir: Some(dir),
        }
    }

    /// A fresh database on the test PostgreSQL server; without one the test fails.
    pub async fn postgres() -> Database {
        let base = std::env::var("AGENTMESSAGE_TEST_POSTGRES_URL").expect(
            "AGENTMESSAGE_TEST_POSTGRES_URL names the PostgreSQL test server: run the tests with scripts/test (or under scripts/with-postgres)",
        );
        let name = format!("am_conf_{}", uuid::Uuid::now_v7().simple());
        let admin = agentmessage::store::Store::connect(&base).await.unwrap();
        use sea_orm::ConnectionTrait;
        admin
            .connection()
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        Database {
            url: format!("{prefix}/{name}"),
            _dir: None,
        }
    }
}

/// Runs `agentmessage admin …` and returns its JSON.
pub fn admin(database: &Database, args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .arg("admin")
        .args(args)
        .args(["--database-url", &database.url])
        .env("AGENTMESSAGE_LOG", "warn")
        .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// An organization with the given rate, a number and a key with every scope: returns the key.
pub fn bootstrap(database: &Database, rate: u32, burst: u32, number: &str) -> String {
    let org = admin(
        database,
        &[
            "create-org",
            "--name",
            "conformance",
            "--rate-per-second",
            &rate.to_string(),
            "--burst",
            &burst.to_string(),
        ],
    );
    let org = org["id"].as_str().unwrap().to_owned();
    let scopes = "messages:send,messages:read,consents:read,consents:write,lookups:read,lookups:write,numbers:read,api_keys:read,api_keys:write,webhooks:read,webhooks:write";
    let key = admin(database, &["create-key", "--org", &org, "--scopes", scopes]);
    admin(database, &["add-number", "--org", &org, "--number", number]);
    key["key"].as_str().unwrap().to_owned()
}

/// The operator key of the servers these tests start (32 bytes, base64).
pub const SECRET_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

/// The server process; killed when dropped.
pub struct Server {
    child: Child,
    pub base_url: String,
}

impl Server {
    /// The API without a worker: statuses and events stay as the send left them, so snapshots
    /// are stable (the delivery worker has its own tests).
    pub fn start(database: &Database) -> Server {
        Self::start_with(database, &["--no-worker"])
    }

    /// The server with `args` added to `serve`, with webhooks configured (a secret key; private
    /// destinations allowed, for the suite's own receiver on loopback).
    pub fn start_with(database: &Database, args: &[&str]) -> Server {
        Self::start_configured(database, args, true)
    }

    /// The server with `args`; `webhooks` false leaves out the secret key (endpoints are 501).
    pub fn start_configured(database: &Database, args: &[&str], webhooks: bool) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let migrated = Command::new(BIN)
            .args(["migrate", "--database-url", &database.url])
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(
            migrated.status.success(),
            "{}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        let mut command = Command::new(BIN);
        if webhooks {
            command
                .env("AGENTMESSAGE_SECRET_KEY", SECRET_KEY)
                .env("AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE", "true")
                .env("AGENTMESSAGE_WEBHOOK_SCHEDULE", "100ms,200ms,400ms");
        } else {
            command.env_remove("AGENTMESSAGE_SECRET_KEY");
        }
        let child = command
            .arg("serve")
            .args(args)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &database.url,
            ])
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .env("AGENTMESSAGE_CARRIER_SECRET", CARRIER_SECRET)
            .env("AGENTMESSAGE_MM7_INBOUND_USERNAME", MM7_USER)
            .env("AGENTMESSAGE_MM7_INBOUND_PASSWORD", MM7_PASSWORD)
            .env("AGENTMESSAGE_BODY_READ_TIMEOUT", "1s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::blocking::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{}/healthz", server.base_url))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not start");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the property tests keep their shrunk failures.
pub fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/proptest-regressions")
}

/// Runs the suite against `base_url` with `key`, holding it to the server's own published spec
/// (`spec_url`, when the target is a proxy).
pub fn run_suite(base_url: &str, spec_url: &str, key: &str, options: Options) -> Report {
    let target = Target::with_timeout(base_url, key, options.request_timeout).unwrap();
    let spec = Spec::load(spec_url, &target.http).unwrap();
    conformance::run(&target, &spec, options)
}

/// Prints the matrix past the test harness's capture, so that it shows in every run's output.
pub fn print_matrix(title: &str, report: &Report) {
    let _ = std::io::stderr()
        .write_all(format!("\n== conformance matrix: {title}\n{}", report.render()).as_bytes());
}
