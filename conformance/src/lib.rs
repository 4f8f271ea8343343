//! AgentMessage's conformance suite: proves, through HTTP alone, that a deployment answers every
//! (operation, status) pair its published spec documents, with the documented body, envelope and
//! headers. It needs an API key holding every scope whose organization owns at least one number,
//! and it sends only to fictional test numbers (`+1 AAA 555-01XX`).

pub mod cases;
pub mod check;
pub mod client;
pub mod listener;
pub mod matrix;
pub mod properties;
pub mod report;
pub mod schema;
pub mod spec;
pub mod webhooks;

use std::collections::BTreeMap;

use serde_json::Value;

pub use cases::Options;
pub use client::Target;
pub use matrix::{Matrix, Verdict};
pub use spec::Spec;

/// The outcome of one run.
pub struct Report {
    pub matrix: Matrix,
    /// The first body that kept the contract for each (operation, status) pair.
    pub observations: BTreeMap<(String, u16), Value>,
    /// Set when the run could not get going (no owned number, key refused, …).
    pub setup_error: Option<String>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.setup_error.is_some() || self.matrix.failed()
    }

    pub fn render(&self) -> String {
        let mut out = self.matrix.render();
        if let Some(err) = &self.setup_error {
            out.push_str(&format!("set-up failed: {err}\n"));
        }
        out.push_str(if self.failed() {
            "conformance: FAILED\n"
        } else {
            "conformance: passed\n"
        });
        out
    }
}

/// Runs the whole suite against `target`.
pub fn run(target: &Target, spec: &Spec, options: Options) -> Report {
    let schemas = schema::Schemas::new(&spec.doc);
    let mut ctx = cases::Ctx::new(target, spec, &schemas, options);
    let setup_error = match cases::setup(&mut ctx) {
        Ok(()) => {
            webhooks::begin(&mut ctx);
            cases::generic(&mut ctx);
            cases::server_wide(&mut ctx);
            cases::behaviour(&mut ctx);
            properties::run(&mut ctx);
            properties::parameters(&mut ctx);
            webhooks::cases(&mut ctx);
            cases::key_limit(&mut ctx);
            cases::rate_limit(&mut ctx);
            webhooks::verify_listener(&mut ctx);
            None
        }
        Err(err) => Some(format!("{err:#}")),
    };
    cases::cleanup(&mut ctx);
    webhooks::cleanup(&mut ctx);
    Report {
        matrix: ctx.matrix,
        observations: ctx.observations,
        setup_error,
    }
}
