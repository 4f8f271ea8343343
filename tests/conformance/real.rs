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

fn assert_passed(report: &conformance::Report) {
    assert!(!report.failed(), "conformance failed:\n{}", report.render());
    for ((op, status), verdict) in &report.matrix.rows {
        match verdict {
            Verdict::Passed { .. } => {}
            Verdict::NeedsFaultInjection => assert!(*status >= 500, "{op} {status}"),
            other => panic!("{op} {status}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_passes_against_the_real_server_on_sqlite() {
    let database = Database::sqlite();
    let report = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 50, 100, "+15551112222");
        let server = Server::start(&database);
        let report = run_suite(
            &server.base_url,
            &format!("{}/openapi.json", server.base_url),
            &key,
            options(),
        );
        drop(server);
        report
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
        let server = Server::start(&database);
        run_suite(
            &server.base_url,
            &format!("{}/openapi.json", server.base_url),
            &key,
            options(),
        )
    })
    .await
    .unwrap();
    print_matrix("the real server on PostgreSQL", &report);
    assert_passed(&report);
}
