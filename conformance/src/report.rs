//! The JUnit XML report: one test case per pair, named by its id.

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use crate::{matrix::Verdict, pairs, Report};

/// The report as JUnit XML. Certifying, a pair not provable is a failure, not a skip.
pub fn junit(report: &Report) -> anyhow::Result<String> {
    let mut suite = TestSuite::new("agentmessage-conformance");
    // No secret in a report that is handed on: the run's key, minted keys, webhook secrets.
    let redactor = crate::evidence::Redactor::new(&report.secrets);
    let failure = |message: String| {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(redactor.redact(&message));
        s
    };
    let skipped = |message: String| {
        let mut s = TestCaseStatus::skipped();
        s.set_message(redactor.redact(&message));
        s
    };
    for ((op, status), verdict) in &report.matrix.rows {
        let case_status = match verdict {
            Verdict::Passed { .. } => TestCaseStatus::success(),
            Verdict::Failed { case, problems } => {
                failure(format!("{case}: {}", problems.join("; ")))
            }
            Verdict::NotCovered if !report.matrix.unfinished.is_empty() => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message("not finished: the run's deadline passed first");
                s
            }
            Verdict::NotCovered => failure("no case provoked this documented status".into()),
            Verdict::NotProvable { reason } if report.certify => {
                failure(format!("not provable (certifying): {reason}"))
            }
            Verdict::NotProvable { reason } => skipped(reason.clone()),
            Verdict::NotApplicable { reason } => skipped(format!("not applicable: {reason}")),
            Verdict::NeedsFaultInjection => {
                skipped("only a fault produces this status; prove it with fault injection".into())
            }
            Verdict::Expected {
                reason,
                expires,
                was,
            } => skipped(format!(
                "expected to fail until {expires}: {reason} (the run found {was})"
            )),
        };
        let mut case = TestCase::new(pairs::id(op, *status), case_status);
        case.set_classname(pairs::Profile::of(op).name());
        suite.add_test_case(case);
    }
    for case in &report.matrix.unfinished {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message("not finished: the run's deadline passed first");
        suite.add_test_case(TestCase::new(format!("not finished: {case}"), s));
    }
    if let Some(err) = &report.setup_error {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(redactor.redact(err));
        suite.add_test_case(TestCase::new("set-up", s));
    }
    for error in &report.expectations.errors {
        suite.add_test_case(TestCase::new("expectations", failure(error.clone())));
    }
    let mut junit = JUnit::new("agentmessage-conformance");
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}
