//! The suite against Prism (`@stoplight/prism-cli`, pinned in tests/tools), a mock server we did
//! not write that answers from the spec alone: static examples, and with `--dynamic` bodies
//! generated from the schemas. A deployment that keeps no rule must be judged FAILED, pair by
//! pair, within 120 seconds each — with the suite's defaults (a request left unanswered waits out
//! the 10-second request timeout: Prism leaves malformed JSON unanswered).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use conformance::{Options, Verdict};

use crate::{server::run_suite, tools};

/// A Prism mock of the checked-in spec on a free port; killed when dropped.
struct Prism {
    child: Child,
    base_url: String,
}

impl Prism {
    fn start(dynamic: bool) -> Prism {
        let bin = tools::tool_dir("node");
        let runtime = tools::tool_dir("runtime");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec = tools::repo().join("openapi/openapi.json");
        let mut command = Command::new(bin.join("prism"));
        command
            .args(["mock", spec.to_str().unwrap(), "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    runtime.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if dynamic {
            // A seeded generator, so that every run judges the same answers (unseeded, Prism
            // sometimes lists no number, and the run ends at its set-up instead).
            command.args(["--dynamic", "--seed", "20261206"]);
        }
        let child = command.spawn().expect("prism starts");
        let prism = Prism {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::blocking::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if http
                .get(format!("{}/healthz", prism.base_url))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return prism;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prism did not answer within 60 s");
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn judged_failed_within_120_s(dynamic: bool) {
    let prism = Prism::start(dynamic);
    let spec = tools::repo().join("openapi/openapi.json");
    let started = Instant::now();
    let report = run_suite(
        &prism.base_url,
        spec.to_str().unwrap(),
        "am_live_00000000000000000000000000000000",
        Options::default(),
    );
    let took = started.elapsed();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "\n== Prism mock{}, judged in {took:?}\n{}",
            if dynamic { " --dynamic" } else { "" },
            report.render()
        )
        .as_bytes(),
    );
    assert!(report.failed(), "the run against Prism passed");
    assert!(
        report.matrix.unfinished.is_empty(),
        "the run failed by its deadline, not by its checks: {:?}",
        report.matrix.unfinished
    );
    assert!(took < Duration::from_secs(120), "the verdict took {took:?}");
    // The failures are the rules a mock cannot keep, named by pair.
    for (op, status) in [("messages_create", 453), ("messages_view", 404)] {
        assert!(
            matches!(
                report.matrix.verdict(op, status),
                Some(Verdict::Failed { .. })
            ),
            "{op} {status}: {:?}",
            report.matrix.verdict(op, status)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prism_mock_of_the_spec_is_judged_failed_within_120_s() {
    tokio::task::spawn_blocking(|| judged_failed_within_120_s(false))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dynamic_prism_mock_of_the_spec_is_judged_failed_within_120_s() {
    tokio::task::spawn_blocking(|| judged_failed_within_120_s(true))
        .await
        .unwrap();
}
