//! AgentMessage's conformance suite: proves, through HTTP alone, that a deployment answers every
//! (operation, status) pair its published spec documents, with the documented body, envelope and
//! headers. It needs an API key holding every scope whose organization owns at least one number,
//! and it sends only to fictional test numbers (`+1 AAA 555-01XX`).

pub mod cases;
pub mod check;
pub mod cli;
pub mod client;
pub mod ctx;
pub mod evidence;
pub mod expectations;
pub mod listener;
pub mod matrix;
pub mod pairs;
pub mod properties;
pub mod replay;
pub mod report;
pub mod schema;
pub mod spec;

use std::collections::BTreeMap;

use serde_json::Value;

pub use client::Target;
pub use ctx::{Options, Progress};
pub use matrix::{Matrix, Verdict};
pub use pairs::Profile;
pub use spec::Spec;

/// The outcome of one run.
pub struct Report {
    pub matrix: Matrix,
    /// The first body that kept the contract for each (operation, status) pair.
    pub observations: BTreeMap<(String, u16), Value>,
    /// Set when the run could not get going (no owned number, key refused, …).
    pub setup_error: Option<String>,
    /// The seed the run's choices came from.
    pub seed: u64,
    /// Whether the run certifies: a pair not provable fails it.
    pub certify: bool,
    /// What `--expect` found beside the verdicts it changed.
    pub expectations: expectations::Applied,
    /// Every exchange of the run, in the order sent.
    pub exchanges: Vec<client::Exchange>,
    /// The exchanges (indices into `exchanges`) that decided each pair.
    pub evidence: BTreeMap<(String, u16), Vec<usize>>,
    /// The webhook events the suite's listener received.
    pub webhook_events: Vec<listener::Got>,
    /// Secrets the run used or was shown, with the label the evidence shows in their place.
    pub secrets: Vec<(String, String)>,
    /// When the run began (RFC 3339) and how long it took.
    pub started: String,
    pub duration: std::time::Duration,
}

impl Report {
    pub fn failed(&self) -> bool {
        let matrix_failed = if self.certify {
            self.matrix.failed_certifying()
        } else {
            self.matrix.failed()
        };
        self.setup_error.is_some() || matrix_failed || !self.expectations.errors.is_empty()
    }

    /// Applies declared divergences (`--expect`) on `today` (`YYYY-MM-DD`).
    pub fn apply(&mut self, expectations: &expectations::Expectations, today: &str) {
        self.expectations = expectations.apply(&mut self.matrix, today);
    }

    pub fn render(&self) -> String {
        let mut out = self.matrix.render();
        if let Some(err) = &self.setup_error {
            out.push_str(&format!("set-up failed: {err}\n"));
        }
        for id in &self.expectations.passing {
            out.push_str(&format!(
                "expectations: {id} passes, but is listed as expected to fail; remove its entry\n"
            ));
        }
        for error in &self.expectations.errors {
            out.push_str(&format!("expectations: {error}\n"));
        }
        if self.certify && !self.matrix.failed() && self.matrix.failed_certifying() {
            out.push_str("certifying: a pair not provable fails the run\n");
        }
        out.push_str(&format!("seed: {}\n", self.seed));
        out.push_str(if self.failed() {
            "conformance: FAILED\n"
        } else {
            "conformance: passed\n"
        });
        out
    }
}

/// Runs the whole suite (the pairs of `options.profile`) against `target`, telling
/// `options.progress` as each area begins.
pub fn run(target: &Target, spec: &Spec, options: Options) -> Report {
    let schemas = schema::Schemas::new(&spec.doc);
    let started = std::time::Instant::now();
    let progress = options.progress.clone();
    let tell = |ctx: &ctx::Ctx, area: &str| {
        if let Some(progress) = &progress {
            let (decided, total) = ctx.matrix.progress();
            (progress.0)(&format!(
                "conformance: {decided}/{total} pairs decided, {:.0} s: {area}",
                started.elapsed().as_secs_f64()
            ));
        }
    };
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let first_exchange = target.mark();
    let certify = options.certify;
    let mut ctx = ctx::Ctx::new(target, spec, &schemas, options);
    if let Some(progress) = &progress {
        (progress.0)(&format!(
            "conformance: seed {} (give --seed {} to send the same requests again), profile {}",
            ctx.seed, ctx.seed, ctx.options.profile
        ));
    }
    tell(&ctx, "setting up (the key, a number it owns)");
    let setup_error = match cases::setup::setup(&mut ctx) {
        Ok(()) => {
            for area in cases::AREAS {
                let held = ctx.matrix.rows.keys().any(|(op, _)| area.decides(op));
                if held {
                    tell(&ctx, area.name);
                    (area.prove)(&mut ctx);
                }
            }
            None
        }
        Err(err) => Some(format!("{err:#}")),
    };
    tell(&ctx, "cleaning up");
    let webhook_events = ctx
        .webhooks
        .listener
        .as_ref()
        .map(|l| l.got())
        .unwrap_or_default();
    let mut secrets = vec![(target.api_key.clone(), "<api-key>".to_owned())];
    if let Some(secret) = &ctx.options.carrier_secret {
        secrets.push((secret.clone(), "<carrier-secret>".to_owned()));
    }
    if let Some((user, password)) = &ctx.options.mm7_credentials {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        secrets.push((token, crate::evidence::MM7_LABEL.to_owned()));
        secrets.push((password.clone(), crate::evidence::MM7_LABEL.to_owned()));
    }
    for (_, key, scopes) in &ctx.restricted {
        secrets.push((key.clone(), format!("<minted-key {}>", scopes.join(","))));
    }
    cases::setup::cleanup(&mut ctx);
    cases::webhooks::cleanup(&mut ctx);
    tell(&ctx, "done");
    let exchanges = target
        .log
        .lock()
        .map(|log| log[first_exchange.min(log.len())..].to_vec())
        .unwrap_or_default();
    let evidence = ctx
        .evidence
        .into_iter()
        .map(|(pair, indices)| {
            let shifted = indices
                .into_iter()
                .filter_map(|i| i.checked_sub(first_exchange))
                .collect();
            (pair, shifted)
        })
        .collect();
    Report {
        matrix: ctx.matrix,
        observations: ctx.observations,
        setup_error,
        seed: ctx.seed,
        certify,
        expectations: Default::default(),
        exchanges,
        evidence,
        webhook_events,
        secrets,
        started: started_at,
        duration: started.elapsed(),
    }
}
