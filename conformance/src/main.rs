//! `agentmessage-conformance`: runs the conformance suite against a deployment and prints the
//! coverage matrix; exits non-zero when any documented pair failed or was not covered.

use std::process::ExitCode;

use clap::Parser;
use conformance::{Options, Spec, Target};

#[derive(Parser)]
#[command(
    name = "agentmessage-conformance",
    version,
    about = "Check that an AgentMessage deployment keeps its published contract"
)]
struct Cli {
    /// The deployment, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    base_url: String,
    /// An API key holding every scope, of an organization that owns at least one number.
    #[arg(long, env = "AGENTMESSAGE_CONFORMANCE_API_KEY")]
    api_key: String,
    /// The carrier's secret (the server's AGENTMESSAGE_CARRIER_SECRET), to check the carrier
    /// callbacks; without it their successful answers are reported as not provable.
    #[arg(
        long,
        env = "AGENTMESSAGE_CONFORMANCE_CARRIER_SECRET",
        hide_env_values = true
    )]
    carrier_secret: Option<String>,
    /// The spec to hold the deployment to: a file or URL (default: BASE_URL/openapi.json).
    #[arg(long)]
    spec: Option<String>,
    /// Also write a JUnit XML report here.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Most sends spent trying to provoke 429.
    #[arg(long, default_value_t = 500)]
    rate_limit_budget: usize,
    /// Cases per property test.
    #[arg(long, default_value_t = 32)]
    property_cases: u32,
    /// Most shrinking steps (each one request) a failing property takes.
    #[arg(long, default_value_t = 16)]
    max_shrink_iters: u32,
    /// How long one request may take before it counts as unanswered.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: std::time::Duration,
    /// The deployment's body-read timeout (its AGENTMESSAGE_BODY_READ_TIMEOUT); given, the suite
    /// proves 408 by sending a body that stops half-way.
    #[arg(long, value_parser = humantime::parse_duration)]
    body_timeout: Option<std::time::Duration>,
    /// When the run stops: what is unfinished then is reported `not finished`, and the run fails.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    deadline: std::time::Duration,
    /// Receive the suite's own webhook events on ADDR (which the deployment must reach, and a
    /// worker must serve): the suite registers an endpoint there, then checks every event's
    /// signature and order. The deployment must allow the address (loopback and private ones
    /// need AGENTMESSAGE_WEBHOOK_ALLOW_PRIVATE).
    #[arg(long, value_name = "ADDR")]
    webhook_listen: Option<std::net::SocketAddr>,
    /// How long the suite waits at the end for its events to be delivered to --webhook-listen.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    webhook_wait: std::time::Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<bool> {
        let target = Target::with_timeout(&cli.base_url, &cli.api_key, cli.request_timeout)?;
        let source = cli
            .spec
            .clone()
            .unwrap_or_else(|| format!("{}/openapi.json", target.base_url));
        let spec = Spec::load(&source, &target.http)?;
        let options = Options {
            rate_limit_budget: cli.rate_limit_budget,
            property_cases: cli.property_cases,
            regressions_dir: None,
            carrier_secret: cli.carrier_secret.clone(),
            request_timeout: cli.request_timeout,
            deadline: cli.deadline,
            max_shrink_iters: cli.max_shrink_iters,
            body_timeout: cli.body_timeout,
            webhook_listen: cli.webhook_listen,
            webhook_wait: cli.webhook_wait,
            progress: Some(conformance::cases::Progress::stderr()),
        };
        let report = conformance::run(&target, &spec, options);
        print!("{}", report.render());
        if let Some(path) = &cli.report {
            std::fs::write(path, conformance::report::junit(&report)?)?;
        }
        Ok(!report.failed())
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
