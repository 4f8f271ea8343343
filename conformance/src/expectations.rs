//! Declared divergences (`--expect FILE`): pairs a deployment is known not to keep yet, each with
//! a reason and an expiry date. A listed pair that fails is reported as expected; a listed pair
//! that passes is flagged (the entry can go); an entry past its expiry fails the run, and so does
//! an entry naming no pair of the run.
//!
//! ```toml
//! [[divergence]]
//! id = "messages_create/453"
//! reason = "consent is checked by the upstream gateway in this deployment"
//! expires = 2027-03-31
//! ```

use serde::Deserialize;

use crate::{
    matrix::{Matrix, Verdict},
    pairs,
};

/// The expectations file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default, rename = "divergence")]
    pub divergences: Vec<Divergence>,
}

/// One declared divergence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Divergence {
    /// The pair's id, as `agentmessage-conformance list` prints it.
    pub id: String,
    /// Why the deployment diverges (shown in every report).
    pub reason: String,
    /// The last day the divergence is accepted (a TOML date, `2027-03-31`).
    pub expires: toml::value::Datetime,
}

/// What applying the expectations found beside the verdicts they changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Listed pairs that passed: their entries can go.
    pub passing: Vec<String>,
    /// Entries that fail the run: expired, or naming no pair of the run.
    pub errors: Vec<String>,
}

impl Expectations {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Expectations> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Expectations::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Expectations> {
        let parsed: Expectations = toml::from_str(text)?;
        for d in &parsed.divergences {
            if d.expires.date.is_none() || d.expires.time.is_some() {
                anyhow::bail!("{}: expires must be a date such as 2027-03-31", d.id);
            }
        }
        Ok(parsed)
    }

    /// Applies the entries to `matrix` on `today` (`YYYY-MM-DD`): a listed pair that failed,
    /// was not covered or was not provable becomes an expected failure.
    pub fn apply(&self, matrix: &mut Matrix, today: &str) -> Applied {
        let mut applied = Applied::default();
        for d in &self.divergences {
            let expires = d.expires.to_string();
            if expires.as_str() < today {
                applied.errors.push(format!(
                    "the expectation for {} expired on {expires} ({})",
                    d.id, d.reason
                ));
                continue;
            }
            let Some(key) = pairs::parse_id(&d.id).filter(|k| matrix.rows.contains_key(k)) else {
                applied.errors.push(format!(
                    "the expectation for {} names no pair of this run (see `agentmessage-conformance list`)",
                    d.id
                ));
                continue;
            };
            let verdict = matrix.rows.get_mut(&key).expect("checked above");
            match verdict {
                Verdict::Passed { .. } => applied.passing.push(d.id.clone()),
                Verdict::NeedsFaultInjection | Verdict::Expected { .. } => {}
                other => {
                    let was = other.summary();
                    *other = Verdict::Expected {
                        reason: d.reason.clone(),
                        expires: expires.clone(),
                        was,
                    };
                }
            }
        }
        applied
    }
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spec;
    use serde_json::json;

    fn matrix() -> Matrix {
        let spec = Spec::parse(json!({
            "paths": {"/v1/things": {"get": {"operationId": "things_list", "responses": {
                "200": {"description": "x"}, "404": {"description": "x"}, "409": {"description": "x"}
            }}}},
            "components": {}
        }))
        .unwrap();
        let mut m = Matrix::from_spec(&spec);
        m.record("things_list", 200, "list", vec![]);
        m.record("things_list", 404, "nothing", vec!["answered 200".into()]);
        m
    }

    #[test]
    fn a_listed_failure_is_expected_a_listed_pass_is_flagged_an_expired_entry_fails() {
        let expectations = Expectations::parse(
            r#"
            [[divergence]]
            id = "things_list/404"
            reason = "the gateway answers 200 with an empty list"
            expires = 2027-01-31

            [[divergence]]
            id = "things_list/200"
            reason = "was broken last month"
            expires = 2027-01-31

            [[divergence]]
            id = "things_list/409"
            reason = "old"
            expires = 2026-11-30

            [[divergence]]
            id = "things_list/418"
            reason = "a typo"
            expires = 2027-01-31
            "#,
        )
        .unwrap();
        let mut m = matrix();
        assert!(m.failed());
        let applied = expectations.apply(&mut m, "2026-12-06");
        assert!(matches!(
            m.verdict("things_list", 404),
            Some(Verdict::Expected { reason, .. }) if reason.contains("empty list")
        ));
        assert_eq!(applied.passing, ["things_list/200"]);
        assert_eq!(applied.errors.len(), 2, "{:?}", applied.errors);
        assert!(applied.errors[0].contains("expired on 2026-11-30"));
        assert!(applied.errors[1].contains("things_list/418"));
        // 409 stays not covered: its entry expired.
        assert!(m.failed());
        assert!(m.render().contains("expected to fail"));
    }

    #[test]
    fn a_malformed_file_is_refused() {
        assert!(Expectations::parse("[[divergence]]\nid = \"a/200\"\nreason = \"r\"\n").is_err());
        assert!(Expectations::parse(
            "[[divergence]]\nid = \"a/200\"\nreason = \"r\"\nexpires = 2027-01-01T00:00:00Z\n"
        )
        .is_err());
        assert!(Expectations::parse("[[divergences]]\n").is_err());
    }
}
