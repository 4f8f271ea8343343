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

/// One area of the suite: the cases that prove a group of pairs.
type Area = fn(&mut cases::Ctx);

/// Runs the whole suite against `target`, telling `options.progress` as each area begins.
pub fn run(target: &Target, spec: &Spec, options: Options) -> Report {
    let schemas = schema::Schemas::new(&spec.doc);
    let started = std::time::Instant::now();
    let progress = options.progress.clone();
    let tell = |ctx: &cases::Ctx, area: &str| {
        if let Some(progress) = &progress {
            let (decided, total) = ctx.matrix.progress();
            (progress.0)(&format!(
                "conformance: {decided}/{total} pairs decided, {:.0} s: {area}",
                started.elapsed().as_secs_f64()
            ));
        }
    };
    let mut ctx = cases::Ctx::new(target, spec, &schemas, options);
    tell(&ctx, "setting up (the key, a number it owns)");
    let setup_error = match cases::setup(&mut ctx) {
        Ok(()) => {
            let areas: [(&str, Area); 10] = [
                ("the webhook listener", webhooks::begin),
                (
                    "every operation's generic answers (401, 403, 413, 415, …)",
                    cases::generic,
                ),
                (
                    "server-wide answers (404, 405, 408, 414, 431)",
                    cases::server_wide,
                ),
                ("each operation's own behaviour", cases::behaviour),
                ("properties of the request bodies", properties::run),
                ("properties of the parameters", properties::parameters),
                ("webhook endpoints and deliveries", webhooks::cases),
                ("the API key limit", cases::key_limit),
                ("the rate limit (429)", cases::rate_limit),
                (
                    "the events the listener received",
                    webhooks::verify_listener,
                ),
            ];
            for (area, prove) in areas {
                tell(&ctx, area);
                prove(&mut ctx);
            }
            None
        }
        Err(err) => Some(format!("{err:#}")),
    };
    tell(&ctx, "cleaning up");
    cases::cleanup(&mut ctx);
    webhooks::cleanup(&mut ctx);
    tell(&ctx, "done");
    Report {
        matrix: ctx.matrix,
        observations: ctx.observations,
        setup_error,
    }
}
