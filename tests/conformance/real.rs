//! The whole suite against the real server, on SQLite and on PostgreSQL; every response shape is
//! locked by a snapshot.

use conformance::{Options, Verdict};

use crate::server::{bootstrap, print_matrix, regressions_dir, run_suite, Database, Server};

fn options() -> Options {
    Options {
        rate_limit_budget: 400,
        property_cases: 32,
        regressions_dir: Some(regressions_dir()),
        carrier_secret: Some(crate::server::CARRIER_SECRET.into()),
        mm7_credentials: Some((
            crate::server::MM7_USER.into(),
            crate::server::MM7_PASSWORD.into(),
        )),
        // The servers these tests start time bodies out after a second.
        body_timeout: Some(std::time::Duration::from_secs(1)),
        ..Options::default()
    }
}

/// Every pair passed, but the fault-only ones and those of `other_mode_only` (operations the
/// suite's key mode cannot reach, proven by the run with the other mode's key).
fn assert_passed_but(report: &conformance::Report, other_mode_only: &[(&str, u16)]) {
    assert!(!report.failed(), "conformance failed:\n{}", report.render());
    for ((op, status), verdict) in &report.matrix.rows {
        match verdict {
            Verdict::Passed { .. } => {}
            Verdict::NeedsFaultInjection => assert!(*status >= 500, "{op} {status}"),
            Verdict::NotApplicable { .. }
                if other_mode_only.contains(&(op.as_str(), *status))
                    || WITHOUT_SECRET_KEY_ONLY.contains(&(op.as_str(), *status)) => {}
            // The events are proven by the run that receives them (--webhook-listen).
            Verdict::NotProvable { reason }
                if op.starts_with("x-webhooks/") && reason.contains("--webhook-listen") => {}
            other => panic!("{op} {status}: {other:?}"),
        }
    }
}

/// What a live key cannot reach: the test helper past its 404.
const TEST_KEYS_ONLY: [(&str, u16); 4] = [
    ("test_helpers_inbound_create", 201),
    ("test_helpers_inbound_create", 400),
    ("test_helpers_inbound_create", 415),
    ("test_helpers_inbound_create", 422),
];

/// What a test key cannot reach: the test helper's 404, and an inbound MMS's media (live
/// traffic).
const LIVE_KEYS_ONLY: [(&str, u16); 2] = [
    ("test_helpers_inbound_create", 404),
    ("messages_media_view", 200),
];

/// The 501s of a deployment without a secret key, which every other run has: both are proven by
/// the run against a deployment whose key was removed after an endpoint was made
/// (`the_suite_proves_501_without_a_secret_key_*`).
const WITHOUT_SECRET_KEY_ONLY: [(&str, u16); 2] = [
    ("webhook_endpoints_create", 501),
    ("webhook_endpoints_rotate_secret", 501),
];

fn assert_passed(report: &conformance::Report) {
    assert_passed_but(report, &TEST_KEYS_ONLY);
}

/// Starts the server on `database` and runs the suite with `key`, held to the server's own spec.
fn run_against_own_spec(database: &Database, key: &str) -> conformance::Report {
    let server = Server::start(database);
    run_suite(
        &server.base_url,
        &format!("{}/openapi.json", server.base_url),
        key,
        options(),
    )
}

/// A live organization (as the other runs have) and a second one with a test key holding every
/// scope: returns that key.
fn test_mode_key(database: &Database) -> String {
    bootstrap(database, 50, 100, "+15551112222");
    let org = crate::server::admin(
        database,
        &[
            "create-org",
            "--name",
            "test mode",
            "--rate-per-second",
            "50",
            "--burst",
            "100",
        ],
    );
    let org = org["id"].as_str().unwrap().to_owned();
    crate::server::admin(
        database,
        &["add-number", "--org", &org, "--number", "+15551113333"],
    );
    let scopes = "messages:send,messages:read,consents:read,consents:write,lookups:read,lookups:write,numbers:read,api_keys:read,api_keys:write,webhooks:read,webhooks:write";
    let key = crate::server::admin(
        database,
        &["create-key", "--org", &org, "--scopes", scopes, "--test"],
    );
    key["key"].as_str().unwrap().to_owned()
}

fn the_suite_passes_with_a_test_key_proving_the_test_helpers(database: Database) {
    let key = test_mode_key(&database);
    assert!(key.starts_with("am_test_"));
    let report = run_against_own_spec(&database, &key);
    print_matrix("the real server with a test key", &report);
    assert_passed_but(&report, &LIVE_KEYS_ONLY);
}

/// A deployment whose `AGENTMESSAGE_SECRET_KEY` was removed after an endpoint was made:
/// registering an endpoint and rotating the existing one's secret are 501
/// `WEBHOOKS_NOT_CONFIGURED`, and the webhook operations' other answers are not provable.
fn the_suite_proves_501_without_a_secret_key(database: Database) {
    let key = bootstrap(&database, 50, 100, "+15551112222");
    {
        let with_key = Server::start_with(&database, &["--no-worker"]);
        let made = reqwest::blocking::Client::new()
            .post(format!("{}/v1/webhook_endpoints", with_key.base_url))
            .bearer_auth(&key)
            .json(&serde_json::json!({"url": "https://hooks.example.com/agentmessage", "events": ["message.delivered"]}))
            .send()
            .unwrap();
        assert_eq!(made.status(), 201, "{:?}", made.text());
    }
    let server = Server::start_configured(&database, &["--no-worker"], false);
    let report = run_suite(
        &server.base_url,
        &format!("{}/openapi.json", server.base_url),
        &key,
        options(),
    );
    print_matrix("the real server without a secret key", &report);
    assert!(!report.failed(), "conformance failed:\n{}", report.render());
    for pair in WITHOUT_SECRET_KEY_ONLY {
        assert!(
            matches!(
                report.matrix.verdict(pair.0, pair.1),
                Some(Verdict::Passed { .. })
            ),
            "{pair:?}: {:?}",
            report.matrix.verdict(pair.0, pair.1)
        );
    }
    for ((op, status), verdict) in &report.matrix.rows {
        match verdict {
            Verdict::Passed { .. } | Verdict::NeedsFaultInjection => {}
            Verdict::NotApplicable { .. }
                if op.starts_with("webhook_")
                    || op.starts_with("x-webhooks/")
                    || TEST_KEYS_ONLY.contains(&(op.as_str(), *status)) => {}
            other => panic!("{op} {status}: {other:?}"),
        }
    }
}

/// `--webhook-listen`: the suite registers a receiver of its own on a server with a worker, and
/// checks that the events of its own requests arrive signed, once each, and in order.
fn the_suite_receives_its_own_events_with_webhook_listen(database: Database) {
    let key = bootstrap(&database, 50, 100, "+15551112222");
    let server = Server::start_with(&database, &["--receipt-delay", "50ms"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = run_suite(
        &server.base_url,
        &format!("{}/openapi.json", server.base_url),
        &key,
        Options {
            webhook_listen: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            ..options()
        },
    );
    print_matrix("the real server, receiving its events", &report);
    assert!(!report.failed(), "conformance failed:\n{}", report.render());
    // Every documented event type arrived (the undelivered and failed ones from the simulated
    // carrier's test numbers, webhook.test from the test operation) and kept the contract.
    let events: Vec<_> = report
        .matrix
        .rows
        .iter()
        .filter(|((op, _), _)| op.starts_with("x-webhooks/"))
        .collect();
    assert_eq!(events.len(), 8, "{events:?}");
    for ((op, _), verdict) in events {
        assert!(
            matches!(verdict, Verdict::Passed { .. }),
            "{op}: {verdict:?}"
        );
    }
}

/// Runs each named `fn(Database)` on a fresh SQLite database and on a fresh PostgreSQL one.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let database = crate::server::Database::sqlite();
                    tokio::task::spawn_blocking(move || super::$name(database)).await.unwrap();
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let database = crate::server::Database::postgres().await;
                    tokio::task::spawn_blocking(move || super::$name(database)).await.unwrap();
                }
            )*
        }
    };
}

on_both_databases!(
    the_suite_passes_with_a_test_key_proving_the_test_helpers,
    the_suite_proves_501_without_a_secret_key,
    the_suite_receives_its_own_events_with_webhook_listen,
);

/// The `smpp` npm package's SMSC (`tests/tools/smsc.js`) on loopback: its port, and every report
/// it printed so far.
struct NodeSmsc {
    port: u16,
    reports: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    child: std::process::Child,
}

impl Drop for NodeSmsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeSmsc {
    fn start() -> NodeSmsc {
        use std::io::BufRead;
        let bin = crate::tools::tool_dir("node");
        let dir = bin.parent().and_then(|p| p.parent()).unwrap().to_owned();
        let mut child = std::process::Command::new("node")
            .args(["smsc.js", "0"])
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs tests/tools/smsc.js");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let port = first["port"].as_u64().expect("the SMSC's port") as u16;
        let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = reports.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        NodeSmsc {
            port,
            reports,
            child,
        }
    }

    fn count(&self, event: &str) -> usize {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["event"] == event)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_passes_with_a_test_key_against_a_server_whose_live_carrier_is_smpp() {
    let database = Database::sqlite();
    let smsc = tokio::task::spawn_blocking(NodeSmsc::start).await.unwrap();
    let address = format!("127.0.0.1:{}", smsc.port);
    let (report, smsc) = tokio::task::spawn_blocking(move || {
        let key = test_mode_key(&database);
        // The worker runs: test-mode messages complete through the simulated carrier.
        let server = Server::start_with(
            &database,
            &[
                "--carrier",
                "smpp",
                "--smpp-address",
                &address,
                "--smpp-system-id",
                "agentmessage",
                "--receipt-delay",
                "50ms",
                "--poll",
                "20ms",
            ],
        );
        let report = run_suite(
            &server.base_url,
            &format!("{}/openapi.json", server.base_url),
            &key,
            options(),
        );
        let health: serde_json::Value =
            reqwest::blocking::get(format!("{}/healthz", server.base_url))
                .unwrap()
                .json()
                .unwrap();
        assert_eq!(health["data"]["carrier"]["kind"], "smpp", "{health}");
        assert_eq!(health["data"]["carrier"]["bound"], 1, "{health}");
        (report, smsc)
    })
    .await
    .unwrap();
    print_matrix(
        "the real server with an SMPP live carrier, with a test key",
        &report,
    );
    assert_passed_but(&report, &LIVE_KEYS_ONLY);
    assert_eq!(smsc.count("bind_transceiver"), 1);
    assert_eq!(
        smsc.count("submit_sm"),
        0,
        "a test-mode message reached the SMSC"
    );
}

/// A deployment with a realistic per-organization limit (5 a second, burst 10): the suite spends
/// the budget proving 429, and the cases after it wait out the 429s they meet instead of
/// reporting them as failures. The run tells its progress as it goes: pairs decided of the
/// total, and the area it proves next.
#[tokio::test(flavor = "multi_thread")]
async fn the_suite_passes_against_a_deployment_limited_to_5_a_second_telling_its_progress() {
    let database = Database::sqlite();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let told = lines.clone();
    let report = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 5, 10, "+15551112222");
        let server = Server::start(&database);
        let progress = conformance::Progress(std::sync::Arc::new(move |line: &str| {
            told.lock().unwrap().push(line.to_owned())
        }));
        run_suite(
            &server.base_url,
            &format!("{}/openapi.json", server.base_url),
            &key,
            Options {
                progress: Some(progress),
                ..options()
            },
        )
    })
    .await
    .unwrap();
    print_matrix("the real server at 5/s, burst 10", &report);
    assert_passed(&report);
    let mut lines = lines.lock().unwrap().clone();
    // The first line names the seed, so that the run can be repeated.
    let seed_line = lines.remove(0);
    assert!(
        seed_line.starts_with(&format!(
            "conformance: seed {} (give --seed {} ",
            report.seed, report.seed
        )),
        "{seed_line}"
    );
    let decided: Vec<(usize, usize)> = lines
        .iter()
        .map(|l| {
            let counts = l
                .strip_prefix("conformance: ")
                .and_then(|rest| rest.split(" pairs decided").next())
                .and_then(|c| c.split_once('/'))
                .unwrap_or_else(|| panic!("not a progress line: {l}"));
            (counts.0.parse().unwrap(), counts.1.parse().unwrap())
        })
        .collect();
    let total = report.matrix.rows.len();
    // At the start only the fault-only pairs (proven by fault injection) have a verdict.
    let faults_only = report
        .matrix
        .rows
        .values()
        .filter(|v| matches!(v, Verdict::NeedsFaultInjection))
        .count();
    assert_eq!(decided.first(), Some(&(faults_only, total)), "{lines:#?}");
    assert!(decided.iter().all(|d| d.1 == total), "{lines:#?}");
    assert!(decided.windows(2).all(|w| w[0].0 <= w[1].0), "{lines:#?}");
    assert!(lines.last().unwrap().ends_with(": done"), "{lines:#?}");
    assert_eq!(decided.last().unwrap().0, report.matrix.progress().0);
    for area in [
        "messages",
        "the rate limit (429)",
        "webhook endpoints and deliveries",
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(area)),
            "no progress line for {area}: {lines:#?}"
        );
    }
}

/// A deployment limited to one send a second with no burst: every case waits out the 429s it
/// meets; what still cannot be proven (a setup step refused) is reported not provable with its
/// reason — never FAILED.
#[tokio::test(flavor = "multi_thread")]
async fn against_a_deployment_at_1_a_second_burst_1_nothing_fails_what_is_unproven_says_why() {
    let database = Database::sqlite();
    let report = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 1, 1, "+15551112222");
        let server = Server::start(&database);
        run_suite(
            &server.base_url,
            &format!("{}/openapi.json", server.base_url),
            &key,
            Options {
                // Fewer property cases: each valid send waits a second for its token.
                property_cases: 8,
                deadline: std::time::Duration::from_secs(600),
                ..options()
            },
        )
    })
    .await
    .unwrap();
    print_matrix("the real server at 1/s, burst 1", &report);
    assert!(report.setup_error.is_none(), "{}", report.render());
    assert!(report.matrix.unfinished.is_empty(), "{}", report.render());
    for ((op, status), verdict) in &report.matrix.rows {
        match verdict {
            Verdict::Passed { .. }
            | Verdict::NeedsFaultInjection
            | Verdict::NotApplicable { .. } => {}
            Verdict::NotProvable { reason } => assert!(!reason.is_empty(), "{op} {status}"),
            other => panic!("{op} {status}: {other:?}\n{}", report.render()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_passes_against_the_real_server_on_sqlite() {
    let database = Database::sqlite();
    let report = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 50, 100, "+15551112222");
        run_against_own_spec(&database, &key)
    })
    .await
    .unwrap();
    print_matrix("the real server on SQLite", &report);
    assert_passed(&report);

    // One snapshot per (operation, status) body; volatile values redacted.
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    // A time is redacted, a null stays null (so that "not revoked" stays visible).
    fn time(
        value: insta::internals::Content,
        _: insta::internals::ContentPath<'_>,
    ) -> insta::internals::Content {
        match value {
            insta::internals::Content::None | insta::internals::Content::Unit => value,
            _ => "[datetime]".into(),
        }
    }
    fn carrier_id(
        value: insta::internals::Content,
        _: insta::internals::ContentPath<'_>,
    ) -> insta::internals::Content {
        match value {
            insta::internals::Content::None | insta::internals::Content::Unit => value,
            _ => "[carrier id]".into(),
        }
    }
    // A number inside a sentence (a 453's `details.fix`) is the run's own recipient.
    fn numbers_in_text(
        value: insta::internals::Content,
        _: insta::internals::ContentPath<'_>,
    ) -> insta::internals::Content {
        let Some(text) = value.as_str() else {
            return value;
        };
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '+' && chars.peek().is_some_and(char::is_ascii_digit) {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push_str("[number]");
            } else {
                out.push(c);
            }
        }
        out.into()
    }
    settings.bind(|| {
        for ((op, status), body) in &report.observations {
            let name = format!("{}__{status}", op.trim_matches(|c| c == '(' || c == ')'));
            insta::assert_json_snapshot!(name, body, {
                ".**.id" => "[id]",
                ".**.request_id" => "[request_id]",
                ".**.created_at" => insta::dynamic_redaction(time),
                ".**.updated_at" => insta::dynamic_redaction(time),
                ".**.looked_up_at" => insta::dynamic_redaction(time),
                ".**.revoked_at" => insta::dynamic_redaction(time),
                ".**.last_used_at" => "[datetime or null]",
                ".**.key" => "[secret]",
                ".**.secret" => "[secret]",
                ".**.event_id" => "[id]",
                ".**.endpoint_id" => "[id]",
                ".**.next_attempt_at" => insta::dynamic_redaction(time),
                ".**.delivered_at" => insta::dynamic_redaction(time),
                ".**.sent_at" => insta::dynamic_redaction(time),
                ".**.send_at" => insta::dynamic_redaction(time),
                ".**.prefix" => "[prefix]",
                ".data.phone_number" => "[number]",
                ".data[].phone_number" => "[number]",
                ".data.from" => "[number]",
                ".data.to" => "[number]",
                ".data[].from" => "[number]",
                ".data[].to" => "[number]",
                ".data.message.from" => "[number]",
                ".data.message.to" => "[number]",
                ".error.details.to" => insta::dynamic_redaction(numbers_in_text),
                ".error.details.fix" => insta::dynamic_redaction(numbers_in_text),
                ".**.occurred_at" => insta::dynamic_redaction(time),
                // The carrier's id for the suite's own receipt is made fresh per run; in an
                // event it is the carrier's (or null, kept visible).
                ".data.carrier_message_id" => insta::dynamic_redaction(carrier_id),
                ".data[].carrier_message_id" => insta::dynamic_redaction(carrier_id),
            });
        }
    });
    // No snapshot is left over from a pair that no longer exists.
    let names: Vec<String> = report
        .observations
        .keys()
        .map(|(op, status)| {
            format!(
                "{}__{status}.snap",
                op.trim_matches(|c| c == '(' || c == ')')
            )
        })
        .collect();
    for entry in std::fs::read_dir(format!(
        "{}/tests/conformance/snapshots",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            names.contains(&file),
            "snapshot {file} belongs to no documented pair: delete it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_passes_against_the_real_server_on_postgres() {
    let database = Database::postgres().await;
    let report = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 50, 100, "+15551112222");
        run_against_own_spec(&database, &key)
    })
    .await
    .unwrap();
    print_matrix("the real server on PostgreSQL", &report);
    assert_passed(&report);
}
