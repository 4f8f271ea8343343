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
            Verdict::NotProvable { .. } if other_mode_only.contains(&(op.as_str(), *status)) => {}
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

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_passes_with_a_test_key_proving_the_test_helpers() {
    let database = Database::sqlite();
    let report = tokio::task::spawn_blocking(move || {
        bootstrap(&database, 50, 100, "+15551112222");
        let org = crate::server::admin(&database, &["create-org", "--name", "test mode", "--rate-per-second", "50", "--burst", "100"]);
        let org = org["id"].as_str().unwrap().to_owned();
        crate::server::admin(&database, &["add-number", "--org", &org, "--number", "+15551113333"]);
        let scopes = "messages:send,messages:read,consents:read,consents:write,lookups:read,lookups:write,numbers:read,api_keys:read,api_keys:write";
        let key = crate::server::admin(&database, &["create-key", "--org", &org, "--scopes", scopes, "--test"]);
        let key = key["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("am_test_"));
        run_against_own_spec(&database, &key)
    })
    .await
    .unwrap();
    print_matrix("the real server with a test key", &report);
    assert_passed_but(&report, &[("test_helpers_inbound_create", 404)]);
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
                ".**.prefix" => "[prefix]",
                ".data.phone_number" => "[number]",
                ".data[].phone_number" => "[number]",
                ".data.from" => "[number]",
                ".data.to" => "[number]",
                ".data[].from" => "[number]",
                ".data[].to" => "[number]",
                ".data.message.from" => "[number]",
                ".data.message.to" => "[number]",
                ".**.occurred_at" => insta::dynamic_redaction(time),
                ".**.carrier_message_id" => "[carrier id]",
                ".**.sequence" => "[sequence]",
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
    let Some(database) = Database::postgres().await else {
        return;
    };
    let report = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 50, 100, "+15551112222");
        run_against_own_spec(&database, &key)
    })
    .await
    .unwrap();
    print_matrix("the real server on PostgreSQL", &report);
    assert_passed(&report);
}
