//! The evidence a run leaves (`--out DIR`): `results.json` (every pair with its verdict, reason,
//! duration and the exchanges that decided it), `junit.xml` (one test case per pair),
//! `exchanges.har` (every request and response, and the webhook events received) and
//! `summary.md` (the matrix by area, with the suite's version, the spec's digest, the seed and the
//! profile). Secrets never appear: the run's API key, the carrier's secret, minted keys and
//! webhook secrets are replaced by labels (`<api-key>`, `<minted-key numbers:read>`, …).

use std::{collections::BTreeMap, path::Path};

use regex::Regex;
use serde_json::{json, Value};

use crate::{
    client::{Auth, Body, Exchange},
    listener::Got,
    matrix::{Verdict, SERVER_WIDE},
    pairs::{self, Profile, WEBHOOKS},
    Report, Spec,
};

/// The suite's name and version, as the evidence names them.
pub const SUITE: &str = "agentmessage-conformance";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Replaces every secret in a text by its label.
pub struct Redactor {
    exact: Vec<(String, String)>,
    keys: Regex,
    webhook_secrets: Regex,
}

impl Redactor {
    pub fn new(secrets: &[(String, String)]) -> Redactor {
        let mut exact: Vec<(String, String)> = secrets
            .iter()
            .filter(|(secret, _)| !secret.is_empty())
            .cloned()
            .collect();
        // Longer first, so that no secret is cut by a shorter one inside it.
        exact.sort_by_key(|(secret, _)| std::cmp::Reverse(secret.len()));
        Redactor {
            exact,
            keys: Regex::new(r"am_(live|test)_[A-Za-z0-9]{8,}").expect("a valid pattern"),
            webhook_secrets: Regex::new(r"whsec_[A-Za-z0-9+/=]{8,}").expect("a valid pattern"),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (secret, label) in &self.exact {
            out = out.replace(secret.as_str(), label);
        }
        let out = self.keys.replace_all(&out, |c: &regex::Captures| {
            let key = &c[0];
            // The all-zero key the suite sends as an unknown one is no secret.
            if key
                .trim_start_matches("am_live_")
                .chars()
                .all(|ch| ch == '0')
            {
                key.to_owned()
            } else {
                format!("am_{}_<redacted>", &c[1])
            }
        });
        self.webhook_secrets
            .replace_all(&out, "whsec_<redacted>")
            .into_owned()
    }
}

/// How the evidence shows the MMS centre's HTTP Basic credentials.
pub const MM7_LABEL: &str = "<mm7-credentials>";

/// The `Authorization` header a request carried, as the evidence shows it.
fn authorization(auth: &Auth, redactor: &Redactor) -> Option<String> {
    match auth {
        Auth::Main => Some("Bearer <api-key>".to_owned()),
        Auth::None => None,
        Auth::Key(key) => Some(format!("Bearer {}", redactor.redact(key))),
        Auth::Basic(..) => Some(format!("Basic {MM7_LABEL}")),
    }
}

fn headers_json(headers: impl IntoIterator<Item = (String, String)>, r: &Redactor) -> Value {
    Value::Array(
        headers
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": r.redact(&value)}))
            .collect(),
    )
}

/// One exchange as a HAR 1.2 entry; `_pairs` names the pairs it decided.
pub fn har_entry(exchange: &Exchange, base_url: &str, pairs: &[String], r: &Redactor) -> Value {
    let request = &exchange.request;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(value) = authorization(&request.auth, r) {
        headers.push(("authorization".into(), value));
    }
    let (mime, body): (Option<String>, Option<Vec<u8>>) = match &request.body {
        Body::None => (None, None),
        Body::Json(value) => (
            Some("application/json".into()),
            Some(value.to_string().into()),
        ),
        Body::Raw {
            content_type,
            bytes,
        } => (content_type.clone(), Some(bytes.clone())),
    };
    if let Some(mime) = &mime {
        headers.push(("content-type".into(), mime.clone()));
    }
    headers.extend(request.headers.iter().cloned());
    let mut har_request = json!({
        "method": request.method,
        "url": r.redact(&format!("{base_url}{}", request.path)),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": headers_json(headers, r),
        "queryString": [],
        "headersSize": -1,
        "bodySize": body.as_ref().map_or(0, |b| b.len() as i64),
    });
    if let Some(bytes) = &body {
        let mime = mime.clone().unwrap_or_default();
        har_request["postData"] = match std::str::from_utf8(bytes) {
            Ok(text) => json!({"mimeType": mime, "text": r.redact(text)}),
            Err(_) => {
                use base64::Engine;
                json!({"mimeType": mime, "text": "", "_base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
            }
        };
    }
    let response = match &exchange.response {
        Ok(response) => json!({
            "status": response.status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": headers_json(response.headers.clone(), r),
            "content": {
                "size": response.text.len(),
                "mimeType": response.header("content-type").unwrap_or_default(),
                "text": r.redact(&response.text),
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": response.text.len(),
        }),
        Err(error) => json!({
            "status": 0,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "", "text": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_error": r.redact(error),
        }),
    };
    let millis = exchange.duration.as_secs_f64() * 1000.0;
    let mut entry = json!({
        "startedDateTime": exchange.started,
        "time": millis,
        "request": har_request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": millis, "receive": 0},
        "_pairs": pairs,
    });
    if exchange.simultaneous {
        entry["_simultaneous"] = json!(true);
    }
    entry
}

/// A webhook event the listener received, as a HAR entry (the deployment's request, the
/// listener's 204).
fn har_event(got: &Got, url: &str, r: &Redactor) -> Value {
    json!({
        "startedDateTime": got.received,
        "time": 0,
        "request": {
            "method": "POST",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": headers_json([
                ("webhook-id".to_owned(), got.id.clone()),
                ("webhook-timestamp".to_owned(), got.timestamp.clone()),
                ("webhook-signature".to_owned(), got.signature.clone()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ], r),
            "queryString": [],
            "headersSize": -1,
            "bodySize": got.body.len(),
            "postData": {"mimeType": "application/json", "text": r.redact(&got.body)},
        },
        "response": {
            "status": 204, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
            "headers": [], "content": {"size": 0, "mimeType": "", "text": ""},
            "redirectURL": "", "headersSize": -1, "bodySize": 0,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_webhook": true,
    })
}

/// Where a run was pointed, for the evidence.
pub struct RunInfo<'a> {
    pub base_url: &'a str,
    pub spec_source: &'a str,
    pub profile: Profile,
}

/// Which pairs each exchange decided.
fn pairs_by_exchange(report: &Report) -> BTreeMap<usize, Vec<String>> {
    let mut by: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for ((op, status), indices) in &report.evidence {
        for i in indices {
            by.entry(*i).or_default().push(pairs::id(op, *status));
        }
    }
    by
}

/// The whole run as HAR 1.2: every exchange in the order sent, then the events received.
pub fn har(report: &Report, info: &RunInfo) -> Value {
    let r = Redactor::new(&report.secrets);
    let by = pairs_by_exchange(report);
    let mut entries: Vec<Value> = report
        .exchanges
        .iter()
        .enumerate()
        .map(|(i, e)| har_entry(e, info.base_url, by.get(&i).map_or(&[][..], |v| v), &r))
        .collect();
    entries.extend(
        report
            .webhook_events
            .iter()
            .map(|g| har_event(g, "(the suite's --webhook-listen receiver)", &r)),
    );
    json!({"log": {
        "version": "1.2",
        "creator": {"name": SUITE, "version": VERSION},
        "comment": format!("seed {}, profile {}", report.seed, info.profile),
        "entries": entries,
    }})
}

/// The word the results give a verdict; past the deadline, a pair nothing reached is
/// `not finished`.
fn word(report: &Report, verdict: &Verdict) -> &'static str {
    if !report.matrix.unfinished.is_empty() && *verdict == Verdict::NotCovered {
        "not finished"
    } else {
        verdict.word()
    }
}

/// `results.json`.
pub fn results(report: &Report, spec: &Spec, info: &RunInfo) -> Value {
    let r = Redactor::new(&report.secrets);
    let by = pairs_by_exchange(report);
    let pairs: Vec<Value> = report
        .matrix
        .rows
        .iter()
        .map(|((op, status), verdict)| {
            let indices = report
                .evidence
                .get(&(op.clone(), *status))
                .cloned()
                .unwrap_or_default();
            let duration: f64 = indices
                .iter()
                .filter_map(|i| report.exchanges.get(*i))
                .map(|e| e.duration.as_secs_f64() * 1000.0)
                .sum();
            let (case, reason, problems) = match verdict {
                Verdict::Passed { case } => (Some(case.clone()), None, vec![]),
                Verdict::Failed { case, problems } => {
                    (Some(case.clone()), None, problems.clone())
                }
                Verdict::NotProvable { reason } | Verdict::NotApplicable { reason } => {
                    (None, Some(reason.clone()), vec![])
                }
                Verdict::Expected { reason, was, .. } => {
                    (None, Some(format!("{reason} (the run found {was})")), vec![])
                }
                Verdict::NeedsFaultInjection => (
                    None,
                    Some("only a server fault produces it: proven by fault injection".into()),
                    vec![],
                ),
                Verdict::NotCovered => (None, None, vec![]),
            };
            let exchanges: Vec<Value> = indices
                .iter()
                .filter_map(|i| report.exchanges.get(*i).map(|e| (i, e)))
                .map(|(i, e)| {
                    let mut entry =
                        har_entry(e, info.base_url, by.get(i).map_or(&[][..], |v| v), &r);
                    entry["_index"] = json!(i);
                    entry
                })
                .collect();
            json!({
                "id": pairs::id(op, *status),
                "operation": if op == SERVER_WIDE || op.starts_with(WEBHOOKS) { Value::Null } else { json!(op) },
                "status": if op.starts_with(WEBHOOKS) { Value::Null } else { json!(status) },
                "profile": Profile::of(op).name(),
                "verdict": word(report, verdict),
                "case": case,
                "reason": reason.map(|x| r.redact(&x)),
                "problems": problems.iter().map(|p| r.redact(p)).collect::<Vec<_>>(),
                "duration_ms": (duration * 10.0).round() / 10.0,
                "exchanges": exchanges,
            })
        })
        .collect();
    let events: Vec<Value> = report
        .webhook_events
        .iter()
        .map(|g| {
            json!({
                "webhook_id": g.id,
                "timestamp": g.timestamp,
                "received": g.received,
                "body": serde_json::from_str::<Value>(&r.redact(&g.body)).unwrap_or(Value::Null),
            })
        })
        .collect();
    let count = |w: &str| {
        report
            .matrix
            .rows
            .values()
            .filter(|v| word(report, v) == w)
            .count()
    };
    json!({
        "suite": {"name": SUITE, "version": VERSION},
        "spec": {"source": r.redact(info.spec_source), "digest": spec.digest, "version": spec.doc["info"]["version"]},
        "base_url": r.redact(info.base_url),
        "seed": report.seed,
        "profile": info.profile.name(),
        "certify": report.certify,
        "started": report.started,
        "duration_s": (report.duration.as_secs_f64() * 10.0).round() / 10.0,
        "verdict": if report.failed() { "failed" } else { "passed" },
        "counts": {
            "pairs": report.matrix.rows.len(),
            "passed": count("passed"),
            "failed": count("failed"),
            "not covered": count("not covered"),
            "not finished": count("not finished"),
            "not provable": count("not provable"),
            "not applicable": count("not applicable"),
            "needs fault injection": count("needs fault injection"),
            "expected to fail": count("expected to fail"),
        },
        "setup_error": report.setup_error.as_ref().map(|e| r.redact(e)),
        "unfinished": report.matrix.unfinished,
        "expectations": {"passing": report.expectations.passing, "errors": report.expectations.errors},
        "exchanges": report.exchanges.len(),
        "pairs": pairs,
        "webhook_events": events,
    })
}

/// The group a pair is shown under in the summary: its operation's tag.
fn area_of(spec: &Spec, op: &str) -> String {
    if op == SERVER_WIDE {
        "Server-wide".into()
    } else if op.starts_with(WEBHOOKS) {
        "Webhook events".into()
    } else {
        spec.operation(op)
            .and_then(|o| o.tag.clone())
            .unwrap_or_else(|| "Other".into())
    }
}

/// `summary.md`.
pub fn summary(report: &Report, spec: &Spec, info: &RunInfo) -> String {
    let r = Redactor::new(&report.secrets);
    let verdict = if report.failed() { "FAILED" } else { "passed" };
    let mut out = format!(
        "# Conformance of {base}: {verdict}\n\n\
         | | |\n|---|---|\n\
         | suite | {SUITE} {VERSION} |\n\
         | spec | {source} (`{digest}`, version {version}) |\n\
         | seed | {seed} |\n\
         | profile | {profile}{certify} |\n\
         | started | {started} |\n\
         | duration | {duration:.1} s |\n\
         | exchanges | {exchanges} |\n\n",
        base = r.redact(info.base_url),
        source = r.redact(info.spec_source),
        digest = spec.digest,
        version = spec.doc["info"]["version"].as_str().unwrap_or("?"),
        seed = report.seed,
        profile = info.profile,
        certify = if report.certify { " (certifying)" } else { "" },
        started = report.started,
        duration = report.duration.as_secs_f64(),
        exchanges = report.exchanges.len(),
    );
    let mut groups: BTreeMap<String, Vec<(String, &Verdict)>> = BTreeMap::new();
    for ((op, status), verdict) in &report.matrix.rows {
        groups
            .entry(area_of(spec, op))
            .or_default()
            .push((pairs::id(op, *status), verdict));
    }
    for (area, rows) in groups {
        out.push_str(&format!(
            "## {area}\n\n| pair | verdict | on what |\n|---|---|---|\n"
        ));
        for (id, verdict) in rows {
            let detail = match verdict {
                Verdict::Passed { case } => case.clone(),
                Verdict::Failed { case, problems } => format!("{case}: {}", problems.join("; ")),
                Verdict::NotProvable { reason } | Verdict::NotApplicable { reason } => {
                    reason.clone()
                }
                Verdict::Expected { reason, was, .. } => format!("{reason} (the run found {was})"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "| `{id}` | {} | {} |\n",
                word(report, verdict),
                r.redact(&detail).replace('|', "\\|").replace('\n', " ")
            ));
        }
        out.push('\n');
    }
    if let Some(err) = &report.setup_error {
        out.push_str(&format!("Set-up failed: {}\n\n", r.redact(err)));
    }
    for error in &report.expectations.errors {
        out.push_str(&format!("Expectations: {error}\n\n"));
    }
    for id in &report.expectations.passing {
        out.push_str(&format!(
            "Expectations: `{id}` passes, but is listed as expected to fail; remove its entry.\n\n"
        ));
    }
    out.push_str(&format!(
        "{}\n\nReproduce: `{SUITE} --base-url … --seed {} --profile {}` against a fresh deployment.\n",
        report.matrix.render().lines().rev().find(|l| l.contains(" pairs: ")).unwrap_or_default(),
        report.seed,
        info.profile,
    ));
    out
}

/// Writes the four files into `dir` (made when missing).
pub fn write(dir: &Path, report: &Report, spec: &Spec, info: &RunInfo) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).map(|s| s + "\n");
    std::fs::write(
        dir.join("results.json"),
        pretty(&results(report, spec, info))?,
    )?;
    std::fs::write(dir.join("exchanges.har"), pretty(&har(report, info))?)?;
    std::fs::write(dir.join("junit.xml"), crate::report::junit(report)?)?;
    std::fs::write(dir.join("summary.md"), summary(report, spec, info))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_by_labels() {
        let r = Redactor::new(&[
            ("am_live_realKeyOfTheRun123456".into(), "<api-key>".into()),
            ("carrier-s3cret".into(), "<carrier-secret>".into()),
        ]);
        let text = r#"Bearer am_live_realKeyOfTheRun123456 carrier-s3cret {"key":"am_test_AbCdEfGh12345678","secret":"whsec_c2VjcmV0c2VjcmV0"} am_live_00000000000000000000000000000000"#;
        assert_eq!(
            r.redact(text),
            r#"Bearer <api-key> <carrier-secret> {"key":"am_test_<redacted>","secret":"whsec_<redacted>"} am_live_00000000000000000000000000000000"#
        );
    }
}
