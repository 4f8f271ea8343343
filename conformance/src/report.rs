//! The JUnit XML report: one test case per (operation, status) pair.

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use crate::{matrix::Verdict, Report};

/// The report as JUnit XML.
pub fn junit(report: &Report) -> anyhow::Result<String> {
    let mut suite = TestSuite::new("agentmessage-conformance");
    for ((op, status), verdict) in &report.matrix.rows {
        let name = format!("{op} {status}");
        let case_status = match verdict {
            Verdict::Passed { .. } => TestCaseStatus::success(),
            Verdict::Failed { case, problems } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{case}: {}", problems.join("; ")));
                s
            }
            Verdict::NotCovered if !report.matrix.unfinished.is_empty() => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message("not finished: the run's deadline passed first");
                s
            }
            Verdict::NotCovered => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message("no case provoked this documented status");
                s
            }
            Verdict::NotProvable { reason } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.clone());
                s
            }
            Verdict::NeedsFaultInjection => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("only a fault produces this status; prove it with fault injection");
                s
            }
        };
        suite.add_test_case(TestCase::new(name, case_status));
    }
    for case in &report.matrix.unfinished {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message("not finished: the run's deadline passed first");
        suite.add_test_case(TestCase::new(format!("not finished: {case}"), s));
    }
    if let Some(err) = &report.setup_error {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(err.clone());
        suite.add_test_case(TestCase::new("set-up", s));
    }
    let mut junit = JUnit::new("agentmessage-conformance");
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}
