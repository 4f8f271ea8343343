//! The coverage matrix: every (operation, documented status) pair of the spec with what the run
//! found for it, plus the server-wide answers.

use std::collections::BTreeMap;

use crate::{
    pairs::{self, Profile},
    spec::Spec,
};

/// What the run found for one pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    NotCovered,
    Passed {
        case: String,
    },
    Failed {
        case: String,
        problems: Vec<String>,
    },
    /// Could not be provoked within the stated budget (not a pass, not a failure).
    NotProvable {
        reason: String,
    },
    /// Only a fault produces it; proven by fault injection, not by this run.
    NeedsFaultInjection,
    /// The deployment's configuration or the run's kind of key rules it out (a 501 of a
    /// deployment that has webhooks, a test-mode answer to a live key): another run proves
    /// it. Not a failure, even certifying.
    NotApplicable {
        reason: String,
    },
    /// Did not pass, as a declared divergence (`--expect`) says it would not.
    Expected {
        reason: String,
        expires: String,
        /// What the run found (`FAILED: …`, `not provable: …`).
        was: String,
    },
}

impl Verdict {
    fn label(&self) -> &'static str {
        match self {
            Verdict::NotCovered => "not covered",
            Verdict::Passed { .. } => "passed",
            Verdict::Failed { .. } => "FAILED",
            Verdict::NotProvable { .. } => "not provable",
            Verdict::NeedsFaultInjection => "needs fault injection",
            Verdict::NotApplicable { .. } => "not applicable",
            Verdict::Expected { .. } => "expected to fail",
        }
    }

    /// The verdict in one line: its label and what it rests on.
    pub fn summary(&self) -> String {
        match self {
            Verdict::NotCovered | Verdict::NeedsFaultInjection => self.label().to_owned(),
            Verdict::Passed { case } => format!("passed ({case})"),
            Verdict::Failed { case, problems } => {
                format!("FAILED ({case}): {}", problems.join("; "))
            }
            Verdict::NotProvable { reason } => format!("not provable ({reason})"),
            Verdict::NotApplicable { reason } => format!("not applicable ({reason})"),
            Verdict::Expected {
                reason,
                expires,
                was,
            } => format!("expected to fail until {expires} ({reason}); the run found {was}"),
        }
    }

    /// The verdict's word in reports: `passed`, `failed`, `not covered`, `not provable`,
    /// `needs fault injection`, `expected to fail`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Failed { .. } => "failed",
            other => other.label(),
        }
    }
}

/// The label server-wide rows use in place of an operation id.
pub const SERVER_WIDE: &str = "(server-wide)";

/// Operation id and status → verdict, and the cases the run's deadline cut off.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub rows: BTreeMap<(String, u16), Verdict>,
    /// Cases not run (or not run to the end) because the deadline passed.
    pub unfinished: Vec<String>,
    /// The part of the contract the run holds; pairs outside it are neither listed nor recorded.
    pub profile: Profile,
}

impl Matrix {
    /// Every pair the spec documents, not yet covered; the spec-wide fault-only statuses as
    /// needing fault injection; and the server-wide route answers.
    pub fn from_spec(spec: &Spec) -> Matrix {
        Matrix::for_profile(spec, Profile::Full)
    }

    /// The pairs of `profile`: those of its operations, and — for the webhooks profile and the
    /// full one — a row per webhook event type the spec documents (`x-webhooks`), proven by the
    /// events the suite's listener receives.
    pub fn for_profile(spec: &Spec, profile: Profile) -> Matrix {
        let mut rows = BTreeMap::new();
        for event in &spec.webhook_events {
            rows.insert((pairs::webhook_row(event), 200), Verdict::NotCovered);
        }
        for op in &spec.operations {
            for status in op.responses.keys() {
                // An operation's own fault answer (the MMS centre's 503) takes a fault, as the
                // server-wide ones do.
                let verdict = if *status >= 500 && *status != 501 {
                    Verdict::NeedsFaultInjection
                } else {
                    Verdict::NotCovered
                };
                rows.insert((op.id.clone(), *status), verdict);
            }
        }
        for status in spec.global.keys() {
            let verdict = if *status >= 500 {
                Verdict::NeedsFaultInjection
            } else {
                Verdict::NotCovered
            };
            rows.insert((SERVER_WIDE.to_owned(), *status), verdict);
        }
        rows.retain(|(op, _), _| profile.includes(op));
        Matrix {
            rows,
            unfinished: Vec::new(),
            profile,
        }
    }

    /// How many pairs have a verdict, of how many there are.
    pub fn progress(&self) -> (usize, usize) {
        let decided = self
            .rows
            .values()
            .filter(|v| !matches!(v, Verdict::NotCovered))
            .count();
        (decided, self.rows.len())
    }

    /// Notes a case the deadline cut off; the run then fails.
    pub fn unfinished(&mut self, case: &str) {
        if !self.unfinished.iter().any(|c| c == case) {
            self.unfinished.push(case.to_owned());
        }
    }

    /// Records one observation: a failure sticks; a pass replaces only "not covered" or "not
    /// provable"/"needs fault injection" (a proven pair). Pairs the spec does not document are
    /// added as failures.
    pub fn record(&mut self, op: &str, status: u16, case: &str, problems: Vec<String>) {
        if !self.profile.includes(op) {
            return;
        }
        let key = (op.to_owned(), status);
        let entry = self.rows.entry(key).or_insert(Verdict::NotCovered);
        if problems.is_empty() {
            if !matches!(entry, Verdict::Failed { .. } | Verdict::Passed { .. }) {
                *entry = Verdict::Passed {
                    case: case.to_owned(),
                };
            }
        } else {
            match entry {
                Verdict::Failed {
                    problems: existing, ..
                } => {
                    for p in problems {
                        if existing.len() < 8 && !existing.contains(&p) {
                            existing.push(p);
                        }
                    }
                }
                _ => {
                    *entry = Verdict::Failed {
                        case: case.to_owned(),
                        problems,
                    }
                }
            }
        }
    }

    /// Marks a pair the run's configuration rules out (see [`Verdict::NotApplicable`]).
    pub fn not_applicable(&mut self, op: &str, status: u16, reason: String) {
        if let Some(entry @ Verdict::NotCovered) = self.rows.get_mut(&(op.to_owned(), status)) {
            *entry = Verdict::NotApplicable { reason };
        }
    }

    pub fn not_provable(&mut self, op: &str, status: u16, reason: String) {
        if !self.profile.includes(op) {
            return;
        }
        let entry = self
            .rows
            .entry((op.to_owned(), status))
            .or_insert(Verdict::NotCovered);
        if matches!(entry, Verdict::NotCovered) {
            *entry = Verdict::NotProvable { reason };
        }
    }

    /// The run fails when any pair failed or was not covered, or the deadline cut it short.
    pub fn failed(&self) -> bool {
        !self.unfinished.is_empty()
            || self
                .rows
                .values()
                .any(|v| matches!(v, Verdict::Failed { .. } | Verdict::NotCovered))
    }

    /// Certifying (`--certify`), a pair not provable fails the run too. (Pairs only a fault
    /// produces are proven by fault injection, never from outside, and do not count.)
    pub fn failed_certifying(&self) -> bool {
        self.failed()
            || self
                .rows
                .values()
                .any(|v| matches!(v, Verdict::NotProvable { .. }))
    }

    pub fn verdict(&self, op: &str, status: u16) -> Option<&Verdict> {
        self.rows.get(&(op.to_owned(), status))
    }

    /// The pairs that failed or were not covered.
    pub fn broken(&self) -> Vec<(String, u16)> {
        self.rows
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Failed { .. } | Verdict::NotCovered))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The matrix as text: one line per pair (by id), details under failures.
    pub fn render(&self) -> String {
        let ids: Vec<String> = self
            .rows
            .keys()
            .map(|(op, status)| pairs::id(op, *status))
            .collect();
        let width = ids.iter().map(String::len).max().unwrap_or(10).max(4);
        let mut out = format!("{:width$}  verdict\n", "pair");
        let cut_short = !self.unfinished.is_empty();
        for (id, verdict) in ids.iter().zip(self.rows.values()) {
            // Past the deadline, a pair nothing reached is not finished rather than uncovered.
            let label = if cut_short && *verdict == Verdict::NotCovered {
                "not finished"
            } else {
                verdict.label()
            };
            out.push_str(&format!("{id:width$}  {label}"));
            match verdict {
                Verdict::Passed { case } => out.push_str(&format!("  ({case})")),
                Verdict::NotProvable { reason } | Verdict::NotApplicable { reason } => {
                    out.push_str(&format!("  ({reason})"))
                }
                Verdict::Failed { case, problems } => {
                    out.push_str(&format!("  ({case})"));
                    for p in problems {
                        out.push_str(&format!("\n{:width$}    - {p}", ""));
                    }
                }
                Verdict::Expected {
                    reason,
                    expires,
                    was,
                } => {
                    out.push_str(&format!("  (until {expires}: {reason})"));
                    out.push_str(&format!("\n{:width$}    - the run found {was}", ""));
                }
                _ => {}
            }
            out.push('\n');
        }
        let count = |f: fn(&Verdict) -> bool| self.rows.values().filter(|v| f(v)).count();
        out.push_str(&format!(
            "{} pairs: {} passed, {} failed, {} not covered, {} not provable, {} not applicable, {} need fault injection, {} expected to fail\n",
            self.rows.len(),
            count(|v| matches!(v, Verdict::Passed { .. })),
            count(|v| matches!(v, Verdict::Failed { .. })),
            count(|v| matches!(v, Verdict::NotCovered)),
            count(|v| matches!(v, Verdict::NotProvable { .. })),
            count(|v| matches!(v, Verdict::NotApplicable { .. })),
            count(|v| matches!(v, Verdict::NeedsFaultInjection)),
            count(|v| matches!(v, Verdict::Expected { .. })),
        ));
        if cut_short {
            out.push_str(&format!(
                "not finished: the deadline passed before {} case(s) ran:\n",
                self.unfinished.len()
            ));
            for case in &self.unfinished {
                out.push_str(&format!("  - {case}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_with(statuses: &[&str]) -> Spec {
        let responses: serde_json::Map<String, serde_json::Value> = statuses
            .iter()
            .map(|s| (s.to_string(), json!({"description": "x"})))
            .collect();
        Spec::parse(json!({
            "paths": {"/v1/things": {"get": {"operationId": "things_list", "responses": responses}}},
            "components": {}
        }))
        .unwrap()
    }

    #[test]
    fn a_documented_status_without_a_case_fails_the_run() {
        let spec = spec_with(&["200", "401", "409"]);
        let mut matrix = Matrix::from_spec(&spec);
        matrix.record("things_list", 200, "list", vec![]);
        matrix.record("things_list", 401, "no key", vec![]);
        assert!(matrix.failed(), "409 has no case");
        assert_eq!(matrix.broken(), [("things_list".to_owned(), 409)]);
        assert!(matrix.render().contains("things_list/409  not covered"));
        matrix.record("things_list", 409, "conflict", vec![]);
        assert!(!matrix.failed());
    }

    #[test]
    fn a_failure_is_not_hidden_by_a_later_pass() {
        let spec = spec_with(&["200"]);
        let mut matrix = Matrix::from_spec(&spec);
        matrix.record("things_list", 200, "a", vec!["bad body".into()]);
        matrix.record("things_list", 200, "b", vec![]);
        assert!(matrix.failed());
        matrix.record(
            "things_list",
            418,
            "c",
            vec!["answered 418, which the spec does not document".into()],
        );
        assert!(matrix.broken().contains(&("things_list".to_owned(), 418)));
    }

    #[test]
    fn a_pair_that_could_not_be_provoked_is_not_a_pass() {
        let spec = spec_with(&["200", "429"]);
        let mut matrix = Matrix::from_spec(&spec);
        matrix.record("things_list", 200, "a", vec![]);
        matrix.not_provable("things_list", 429, "no 429 within 300 requests".into());
        assert!(!matrix.failed());
        assert!(matrix.render().contains("not provable"));
        assert!(!matches!(
            matrix.verdict("things_list", 429),
            Some(Verdict::Passed { .. })
        ));
    }
}
