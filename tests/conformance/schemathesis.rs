//! schemathesis (pinned in tests/tools/requirements.lock), a tester we did not write, walks the
//! spec's OpenAPI links in its stateful phase — a message to its view and events, a webhook
//! endpoint to everything done with it, a key to its revocation — against the real server, with
//! every check it runs by default: no failure. Each request gets a fresh Idempotency-Key (a hook):
//! a generated key repeats, and the server then rightly replays its first answer, naming a
//! resource a later step may have deleted.

use std::process::Command;

use crate::{
    server::{bootstrap, Database, Server},
    tools,
};

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_walks_the_specs_links_statefully_without_a_failure() {
    tokio::task::spawn_blocking(|| {
        let database = Database::sqlite();
        let key = bootstrap(&database, 1000, 5000, "+15551112222");
        let server = Server::start(&database);
        let bin = tools::tool_dir("python");
        let config = tools::repo().join("tests/tools/schemathesis.toml");
        // Its working files (.schemathesis/, .hypothesis/) go to a directory of the test's own.
        let work = tempfile::tempdir().unwrap();
        let output = Command::new(bin.join("st"))
            .current_dir(work.path())
            .arg("--config-file")
            .arg(&config)
            .args([
                "run",
                &format!("{}/openapi.json", server.base_url),
                "--phases",
                "stateful",
                "--seed",
                "20261206",
                "-H",
                &format!("Authorization: Bearer {key}"),
            ])
            .env("NO_COLOR", "1")
            // A fresh Idempotency-Key for every request, as a client sends
            // (tests/tools/schemathesis_hooks.py).
            .env("PYTHONPATH", tools::repo().join("tests/tools"))
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .output()
            .expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n== schemathesis, stateful phase\n{stdout}").as_bytes(),
        );
        assert!(
            output.status.success(),
            "schemathesis failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("No issues found"), "{stdout}");
        // The links the spec declares are what it walks (beside those it infers).
        let links = regex::Regex::new(
            r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total \((\d+) inferred\)",
        )
        .unwrap();
        let found = links
            .captures(&stdout)
            .unwrap_or_else(|| panic!("{stdout}"));
        let total: u32 = found[3].parse().unwrap();
        let inferred: u32 = found[4].parse().unwrap();
        assert!(total - inferred >= 14, "the spec's own links: {stdout}");
        assert!(
            found[1].parse::<u32>().unwrap() >= 1,
            "no link was walked: {stdout}"
        );
    })
    .await
    .unwrap();
}
