//! The coverage matrix: every (operation, documented status) pair of the spec with what the run
//! found for it, plus the server-wide answers.

use std::collections::BTreeMap;

use crate::spec::Spec;

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
}

impl Verdict {
    fn label(&self) -> &'static str {
        match self {
            Verdict::NotCovered => "not covered",
            Verdict::Passed { .. } => "passed",
            Verdict::Failed { .. } => "FAILED",
            Verdict::NotProvable { .. } => "not provable",
            Verdict::NeedsFaultInjection => "needs fault injection",
        }
    }
}

/// The label server-wide rows use in place of an operation id.
pub const SERVER_WIDE: &str = "(server-wide)";

/// Operation id and status → verdict, and the cases the run's deadline cut off.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub rows: BTreeMap<(String, u16), Verdict>,
    /// Cases not run (or not run to the end) because the deadline passed.
    pub unfinished: Vec<String>,
}

impl Matrix {
    /// Every pair the spec documents, not yet covered; the spec-wide fault-only statuses as
    /// needing fault injection; and the server-wide route answers.
    pub fn from_spec(spec: &Spec) -> Matrix {
        let mut rows = BTreeMap::new();
        for op in &spec.operations {
            for status in op.responses.keys() {
                rows.insert((op.id.clone(), *status), Verdict::NotCovered);
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
        Matrix {
            rows,
            unfinished: Vec::new(),
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

    pub fn not_provable(&mut self, op: &str, status: u16, reason: String) {
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

    /// The matrix as text: one line per pair, details under failures.
    pub fn render(&self) -> String {
        let width = self.rows.keys().map(|(op, _)| op.len()).max().unwrap_or(10);
        let mut out = format!("{:width$}  status  verdict\n", "operation");
        let cut_short = !self.unfinished.is_empty();
        for ((op, status), verdict) in &self.rows {
            // Past the deadline, a pair nothing reached is not finished rather than uncovered.
            let label = if cut_short && *verdict == Verdict::NotCovered {
                "not finished"
            } else {
                verdict.label()
            };
            out.push_str(&format!("{op:width$}  {status:<6}  {label}"));
            match verdict {
                Verdict::Passed { case } => out.push_str(&format!("  ({case})")),
                Verdict::NotProvable { reason } => out.push_str(&format!("  ({reason})")),
                Verdict::Failed { case, problems } => {
                    out.push_str(&format!("  ({case})"));
                    for p in problems {
                        out.push_str(&format!("\n{:width$}          - {p}", ""));
                    }
                }
                _ => {}
            }
            out.push('\n');
        }
        let count = |f: fn(&Verdict) -> bool| self.rows.values().filter(|v| f(v)).count();
        out.push_str(&format!(
            "{} pairs: {} passed, {} failed, {} not covered, {} not provable, {} need fault injection\n",
            self.rows.len(),
            count(|v| matches!(v, Verdict::Passed { .. })),
            count(|v| matches!(v, Verdict::Failed { .. })),
            count(|v| matches!(v, Verdict::NotCovered)),
            count(|v| matches!(v, Verdict::NotProvable { .. })),
            count(|v| matches!(v, Verdict::NeedsFaultInjection)),
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
        assert!(matrix.render().contains("409     not covered"));
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
