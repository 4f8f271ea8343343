//! The command line integrators certify with: `list`, a run's evidence (`--out`), `replay`,
//! profiles, `--certify`, `--expect` and `--seed` — through `agentmessage-conformance`'s own
//! argument parsing, against the real server.

use std::sync::{Arc, Mutex};

use conformance::{
    cli::{main_with, Output},
    evidence, pairs, Options, Spec,
};
use serde_json::Value;

use crate::server::{
    bootstrap, regressions_dir, run_suite, Database, Server, CARRIER_SECRET, MM7_PASSWORD, MM7_USER,
};

/// The MMS centre's credentials as `--mm7-credentials` takes them.
fn mm7_credentials() -> String {
    format!("{MM7_USER}:{MM7_PASSWORD}")
}

/// A shared buffer a command writes into.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs the command line; its exit code, stdout and stderr.
fn command(args: &[&str]) -> (u8, String, String) {
    let (out, err) = (Buffer::default(), Buffer::default());
    let mut output = Output {
        out: Box::new(out.clone()),
        err: Arc::new(Mutex::new(Box::new(err.clone()))),
    };
    let mut argv = vec!["agentmessage-conformance"];
    argv.extend_from_slice(args);
    let code = main_with(argv, &mut output);
    (code, out.text(), err.text())
}

fn checked_in_spec() -> Spec {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    Spec::parse(serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn list_names_every_documented_pair_its_profile_and_what_proving_it_takes() {
    let spec = checked_in_spec();
    let (code, out, _) = command(&["list"]);
    assert_eq!(code, 0, "{out}");
    let listed: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.contains('\t'))
        .map(|l| l.split('\t').collect())
        .collect();
    let ids: Vec<&str> = listed.iter().map(|row| row[0]).collect();
    for op in &spec.operations {
        for status in op.responses.keys() {
            let id = format!("{}/{status}", op.id);
            assert!(ids.contains(&id.as_str()), "{id} is not listed");
        }
    }
    for status in spec.global.keys() {
        assert!(ids.contains(&format!("server/{status}").as_str()));
    }
    for event in &spec.webhook_events {
        assert!(ids.contains(&format!("x-webhooks/{event}").as_str()));
    }
    assert!(listed.iter().all(|row| row.len() == 4), "{out}");
    let row = |id: &str| listed.iter().find(|r| r[0] == id).unwrap().clone();
    assert_eq!(row("messages_create/453")[1], "core");
    assert!(row("messages_create/453")[2].contains("CONSENT_REQUIRED"));
    assert_eq!(row("messages_create/453")[3], "from outside");
    assert_eq!(row("carrier_inbound_create/201")[1], "carrier");
    assert!(row("carrier_inbound_create/201")[3].contains("--carrier-secret"));
    assert_eq!(row("test_helpers_inbound_create/201")[1], "test-mode");
    assert_eq!(row("x-webhooks/message.delivered")[1], "webhooks");
    // What no deployment can prove from outside is named, with why.
    assert!(
        out.contains("no deployment can prove 3 of them from outside:"),
        "{out}"
    );
    assert!(row("carrier_mm7_create/503")[3].starts_with("never from outside"));
    assert!(row("server/500")[3].starts_with("never from outside: only a server fault"));
    assert!(row("server/503")[3].starts_with("never from outside"));

    let (code, core, _) = command(&["list", "--profile", "core"]);
    assert_eq!(code, 0);
    let core_ids: Vec<&str> = core
        .lines()
        .filter_map(|l| l.split('\t').next().filter(|_| l.contains('\t')))
        .collect();
    assert_eq!(
        core_ids.len(),
        spec.operation("messages_create").unwrap().responses.len()
    );
    assert!(core_ids.iter().all(|id| id.starts_with("messages_create/")));
    let (code, _, err) = command(&["list", "--profile", "everything"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the profiles are core, full, webhooks, carrier, test-mode"),
        "{err}"
    );
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A run with `--out` leaves evidence an integrator can hand over — every pair with its verdict,
/// reason, duration and the exchanges that decided it; JUnit; HAR; a summary — with no secret in
/// any of it; `replay` re-sends a pair's requests and finds the same answers. Every pair the run
/// could not prove is one `list` says needs something the run was not given.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_out_leaves_evidence_without_secrets_that_replays() {
    tokio::task::spawn_blocking(|| {
        let database = Database::sqlite();
        let key = bootstrap(&database, 50, 100, "+15551112222");
        let server = Server::start(&database);
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("evidence");
        let started = std::time::Instant::now();
        let (code, out, err) = command(&[
            "--base-url",
            &server.base_url,
            "--api-key",
            &key,
            "--carrier-secret",
            CARRIER_SECRET,
            "--mm7-credentials",
            &mm7_credentials(),
            "--body-timeout",
            "1s",
            "--rate-limit-budget",
            "400",
            "--seed",
            "20261206",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let took = started.elapsed();
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(err.starts_with("conformance: seed 20261206 "), "{err}");
        assert!(
            out.ends_with("seed: 20261206\nconformance: passed\n"),
            "{out}"
        );

        let spec = checked_in_spec();
        let results = read_json(&out_dir.join("results.json"));
        assert_eq!(results["seed"], 20261206);
        assert_eq!(results["profile"], "full");
        assert_eq!(results["verdict"], "passed");
        assert_eq!(results["suite"]["name"], "agentmessage-conformance");
        assert_eq!(results["spec"]["digest"], spec.digest);
        let pairs_found = results["pairs"].as_array().unwrap();
        let matrix = conformance::Matrix::from_spec(&spec);
        assert_eq!(pairs_found.len(), matrix.rows.len());
        for pair in pairs_found {
            let id = pair["id"].as_str().unwrap();
            let (op, status) = pairs::parse_id(id).unwrap();
            match pair["verdict"].as_str().unwrap() {
                "passed" => {
                    assert!(pair["case"].is_string(), "{pair}");
                    let exchanges = pair["exchanges"].as_array().unwrap();
                    // Webhook events are proven by what the listener got, not by a request.
                    if !id.starts_with("x-webhooks/") {
                        assert!(!exchanges.is_empty(), "{id} passed on no exchange");
                        assert!(pair["duration_ms"].as_f64().unwrap() > 0.0, "{pair}");
                        let statuses: Vec<u64> = exchanges
                            .iter()
                            .map(|e| e["response"]["status"].as_u64().unwrap())
                            .collect();
                        assert!(statuses.contains(&u64::from(status)), "{id}: {statuses:?}");
                    }
                }
                other => {
                    assert!(pair["reason"].is_string(), "{pair}");
                    let provable = pairs::provable(&spec, &op, status);
                    assert_ne!(
                        provable,
                        pairs::Provable::FromOutside,
                        "{id} is {other} although list calls it provable from outside"
                    );
                }
            }
        }
        let har = read_json(&out_dir.join("exchanges.har"));
        let entries = har["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len() as u64, results["exchanges"].as_u64().unwrap());
        assert!(entries.len() > 500, "{}", entries.len());
        assert_eq!(har["log"]["creator"]["name"], "agentmessage-conformance");
        let junit = std::fs::read_to_string(out_dir.join("junit.xml")).unwrap();
        assert_eq!(junit.matches("<testcase ").count(), matrix.rows.len());
        assert!(junit.contains(r#"name="messages_create/453""#), "{junit}");
        let summary = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
        for needle in [
            "# Conformance of http://127.0.0.1:",
            ": passed",
            "| seed | 20261206 |",
            "| profile | full |",
            spec.digest.as_str(),
            "## Messages",
            "## Server-wide",
            "## Webhook events",
            "| `messages_create/453` | passed |",
        ] {
            assert!(summary.contains(needle), "{needle} not in:\n{summary}");
        }
        // No secret anywhere: the run's key, the carrier's secret, minted keys, webhook secrets.
        let key_pattern = regex::Regex::new(r"am_(live|test)_[A-Za-z0-9]{32}").unwrap();
        let webhook_secret = regex::Regex::new(r"whsec_[A-Za-z0-9+/=]{8,}").unwrap();
        for file in ["results.json", "exchanges.har", "junit.xml", "summary.md"] {
            let text = std::fs::read_to_string(out_dir.join(file)).unwrap();
            assert!(!text.contains(&key), "{file} shows the run's key");
            assert!(
                !text.contains(CARRIER_SECRET),
                "{file} shows the carrier's secret"
            );
            assert!(
                !text.contains(MM7_PASSWORD),
                "{file} shows the MMS centre's password"
            );
            let basic = {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(mm7_credentials())
            };
            assert!(
                !text.contains(&basic),
                "{file} shows the MMS centre's credentials"
            );
            for found in key_pattern.find_iter(&text) {
                assert!(
                    found.as_str().ends_with(&"0".repeat(32)),
                    "{file} shows a key: {}",
                    found.as_str()
                );
            }
            assert!(
                !webhook_secret.is_match(&text),
                "{file} shows a webhook secret"
            );
        }
        assert!(har.to_string().contains("Bearer <api-key>"));
        assert!(har.to_string().contains("Bearer <minted-key numbers:read>"));

        // Replay: the seed's consent refusal, a minted key's 403, a carrier callback.
        for id in [
            "messages_create/453",
            "numbers_list/403",
            "carrier_receipts_create/200",
        ] {
            let (code, out, err) = command(&[
                "replay",
                out_dir.to_str().unwrap(),
                "--id",
                id,
                "--base-url",
                &server.base_url,
                "--api-key",
                &key,
                "--carrier-secret",
                CARRIER_SECRET,
                "--mm7-credentials",
                &mm7_credentials(),
            ]);
            assert_eq!(code, 0, "{id}: {out}\n{err}");
            assert!(
                out.ends_with(&format!("replay of {id}: same as recorded\n")),
                "{out}"
            );
        }
        // A replay whose answer changed says so: the opted-out recipient opts in again.
        let recorded = results["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "messages_create/453")
            .unwrap()["exchanges"][0]["request"]["postData"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let to = serde_json::from_str::<Value>(&recorded).unwrap()["to"]
            .as_str()
            .unwrap()
            .to_owned();
        let opted_in = reqwest::blocking::Client::new()
            .put(format!("{}/v1/consents/{to}", server.base_url))
            .bearer_auth(&key)
            .json(&serde_json::json!({"source": "api"}))
            .send()
            .unwrap();
        assert_eq!(opted_in.status(), 200);
        let (code, out, _) = command(&[
            "replay",
            out_dir.to_str().unwrap(),
            "--id",
            "messages_create/453",
            "--base-url",
            &server.base_url,
            "--api-key",
            &key,
        ]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("recorded 453, now 202: DIFFERENT"), "{out}");
        let (code, _, err) = command(&[
            "replay",
            out_dir.to_str().unwrap(),
            "--id",
            "messages_create/999",
            "--base-url",
            &server.base_url,
            "--api-key",
            &key,
        ]);
        assert_eq!(code, 2);
        assert!(err.contains("has no pair messages_create/999"), "{err}");
        eprintln!("the evidence run took {:.0} s", took.as_secs_f64());
    })
    .await
    .unwrap();
}

/// `--profile` proves only its pairs; `--certify` fails a run that leaves a pair not provable;
/// `--expect` flags a listed pair that passes and fails on an entry past its expiry.
#[tokio::test(flavor = "multi_thread")]
async fn profiles_certify_and_expectations() {
    tokio::task::spawn_blocking(|| {
        let database = Database::sqlite();
        let key = bootstrap(&database, 50, 100, "+15551112222");
        let server = Server::start(&database);
        let dir = tempfile::tempdir().unwrap();
        let base = ["--base-url", &server.base_url, "--api-key", &key];
        let run = |more: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(more);
            command(&args)
        };
        // The seed's operation, certified: every pair of POST /v1/messages proven.
        let (code, out, err) = run(&["--profile", "core", "--certify", "--rate-limit-budget", "400"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("messages_create/")).collect();
        assert_eq!(rows.len(), 10, "{out}");
        assert!(!out.contains("consents_update/"), "{out}");
        assert!(out.contains("10 pairs: 10 passed"), "{out}");

        // The carrier's callbacks without the carrier's secret: not provable passes a run, not a
        // certification.
        let (code, out, _) = run(&["--profile", "carrier"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("not provable  (needs the carrier secret"), "{out}");
        let (code, out, _) = run(&["--profile", "carrier", "--certify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("certifying: a pair not provable fails the run"), "{out}");
        let junit = dir.path().join("junit.xml");
        let (code, _, _) = run(&[
            "--profile",
            "carrier",
            "--certify",
            "--report",
            junit.to_str().unwrap(),
        ]);
        assert_eq!(code, 1);
        let junit = std::fs::read_to_string(junit).unwrap();
        assert!(junit.contains("not provable (certifying)"), "{junit}");

        // Declared divergences.
        let expect = dir.path().join("expect.toml");
        std::fs::write(
            &expect,
            "[[divergence]]\nid = \"messages_create/453\"\nreason = \"consent was checked upstream last quarter\"\nexpires = 2099-12-31\n",
        )
        .unwrap();
        let (code, out, _) = run(&["--profile", "core", "--expect", expect.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("expectations: messages_create/453 passes, but is listed as expected to fail; remove its entry"),
            "{out}"
        );
        std::fs::write(
            &expect,
            "[[divergence]]\nid = \"messages_create/453\"\nreason = \"consent was checked upstream\"\nexpires = 2020-01-31\n",
        )
        .unwrap();
        let (code, out, _) = run(&["--profile", "core", "--expect", expect.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("expectations: the expectation for messages_create/453 expired on 2020-01-31"),
            "{out}"
        );
        std::fs::write(&expect, "[[divergence]]\nid = \"messages_create/453\"\n").unwrap();
        let (code, _, err) = run(&["--profile", "core", "--expect", expect.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("expect.toml"), "{err}");
    })
    .await
    .unwrap();
}

/// Masks what differs between two deployments by nature: ids, times, request ids, cursors,
/// the rate limit's clock.
fn masked(har: &Value) -> Vec<Value> {
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let ulid = regex::Regex::new(r"\b[0-9A-HJKMNP-TV-Z]{26}\b").unwrap();
    let time =
        regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)").unwrap();
    let cursor = regex::Regex::new(r#"(cursor[=":]+)[A-Za-z0-9_\-=%]+"#).unwrap();
    // A key's public prefix (its first characters) is an id too.
    let prefix = regex::Regex::new(r#""prefix":"am_(live|test)_[A-Za-z0-9]+""#).unwrap();
    let mask = |text: &str| {
        let text = uuid.replace_all(text, "<uuid>");
        let text = ulid.replace_all(&text, "<ulid>");
        let text = time.replace_all(&text, "<time>");
        let text = prefix.replace_all(&text, r#""prefix":"<prefix>""#);
        cursor.replace_all(&text, "$1<cursor>").into_owned()
    };
    let entries = har["log"]["entries"].as_array().unwrap();
    // Simultaneous requests race by design: how many rounds it took to see two overlap, and
    // which request of a round won, are not the seed's to decide; a run of rounds counts as one.
    let kept = entries.iter().enumerate().filter(|(i, e)| {
        e["_simultaneous"] != true || *i == 0 || entries[i - 1]["_simultaneous"] != true
    });
    kept.map(|(_, e)| {
        let request = &e["request"];
        let headers: Vec<String> = request["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| format!("{}: {}", h["name"], mask(h["value"].as_str().unwrap())))
            .collect();
        let mut entry = serde_json::json!({
            "method": request["method"],
            "url": mask(request["url"].as_str().unwrap()),
            "headers": headers,
            "body": mask(request["postData"]["text"].as_str().unwrap_or_default()),
            "bytes": request["postData"]["_base64"],
        });
        if e["_simultaneous"] != true {
            entry["status"] = e["response"]["status"].clone();
            // A listing of messages also shows what the simultaneous rounds left (one message
            // a round), so its body is the race's to decide too.
            let listing = request["url"]
                .as_str()
                .unwrap()
                .starts_with("http://deployment/v1/messages?");
            if !listing {
                entry["response"] = mask(e["response"]["content"]["text"].as_str().unwrap()).into();
            }
        }
        entry
    })
    .collect()
}

/// The same seed, spec and fresh deployment send the same requests: two runs' HAR files are
/// equal once ids and times are masked; another seed sends other requests.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_sends_the_same_requests_to_a_fresh_deployment() {
    let hars = tokio::task::spawn_blocking(|| {
        [7, 7, 8].map(|seed| {
            let database = Database::sqlite();
            // A limit the run never reaches, so that no 429 depends on the clock; no worker, so
            // that no message moves on while the run reads it.
            let key = bootstrap(&database, 1000, 5000, "+15551112222");
            let server = Server::start_with(&database, &["--no-worker"]);
            let report = run_suite(
                &server.base_url,
                &format!("{}/openapi.json", server.base_url),
                &key,
                Options {
                    seed: Some(seed),
                    rate_limit_budget: 20,
                    property_cases: 16,
                    regressions_dir: Some(regressions_dir()),
                    carrier_secret: Some(CARRIER_SECRET.into()),
                    body_timeout: Some(std::time::Duration::from_secs(1)),
                    ..Options::default()
                },
            );
            assert_eq!(report.seed, seed);
            let info = evidence::RunInfo {
                base_url: "http://deployment",
                spec_source: "spec",
                profile: conformance::Profile::Full,
            };
            masked(&evidence::har(&report, &info))
        })
    })
    .await
    .unwrap();
    let [first, again, other] = hars;
    assert_eq!(first.len(), again.len());
    for (i, (a, b)) in first.iter().zip(&again).enumerate() {
        assert_eq!(a, b, "exchange {i} differs");
    }
    assert_ne!(first, other, "another seed sent the same requests");
}
