//! The command line of `agentmessage-conformance`: runs the conformance suite against a
//! deployment and prints the coverage matrix; exits non-zero when any documented pair failed or
//! was not covered. `list` prints every pair's id, profile and what proving it takes; `replay`
//! re-sends the requests that decided one pair of a run's evidence.

use std::{io::Write, path::PathBuf, sync::Arc};

use clap::{Args, Parser, Subcommand};

use crate::{
    evidence, expectations::Expectations, pairs, Options, Profile, Progress, Spec, Target,
};

/// The spec this version of the suite was built with (`list` reads it when given no other).
const BUILT_WITH: &str = include_str!("../../openapi/openapi.json");

#[derive(Parser)]
#[command(
    name = "agentmessage-conformance",
    version,
    about = "Check that an AgentMessage deployment keeps its published contract",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print every pair's id, its profile, what it proves and what proving it takes.
    List {
        /// The spec to list: a file or URL (default: the spec this suite was built with).
        #[arg(long)]
        spec: Option<String>,
        /// Only the pairs of this profile: core, full, webhooks, carrier, test-mode.
        #[arg(long, default_value = "full", value_parser = parse_profile)]
        profile: Profile,
    },
    /// Re-send the requests that decided one pair of a run's evidence and compare the answers.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// The directory a run wrote with --out.
    dir: PathBuf,
    /// The pair, as `list` names it (messages_create/453).
    #[arg(long)]
    id: String,
    /// The deployment to replay against.
    #[arg(long)]
    base_url: String,
    /// The key to send in place of the recorded run's key (`<api-key>`).
    #[arg(long, env = "AGENTMESSAGE_CONFORMANCE_API_KEY")]
    api_key: String,
    /// The carrier's secret, for requests that carried it.
    #[arg(
        long,
        env = "AGENTMESSAGE_CONFORMANCE_CARRIER_SECRET",
        hide_env_values = true
    )]
    carrier_secret: Option<String>,
    /// The MMS centre's HTTP Basic credentials towards the deployment, `USER:PASSWORD` (the
    /// server's `--mm7-inbound-username` and AGENTMESSAGE_MM7_INBOUND_PASSWORD), to check
    /// `POST /v1/carrier/mm7` past 401 and the media of an inbound MMS.
    #[arg(
        long,
        env = "AGENTMESSAGE_CONFORMANCE_MM7_CREDENTIALS",
        hide_env_values = true,
        value_parser = parse_credentials
    )]
    mm7_credentials: Option<(String, String)>,
    /// The spec to hold the answers to (default: BASE_URL/openapi.json).
    #[arg(long)]
    spec: Option<String>,
    /// How long a replayed stalled body waits for its answer.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    stall_wait: std::time::Duration,
}

#[derive(Args)]
struct RunArgs {
    /// The deployment, e.g. http://127.0.0.1:8080.
    #[arg(long, required = true)]
    base_url: Option<String>,
    /// An API key holding every scope, of an organization that owns at least one number.
    #[arg(long, env = "AGENTMESSAGE_CONFORMANCE_API_KEY", required = true)]
    api_key: Option<String>,
    /// The carrier's secret (the server's AGENTMESSAGE_CARRIER_SECRET), to check the carrier
    /// callbacks; without it their successful answers are reported as not provable.
    #[arg(
        long,
        env = "AGENTMESSAGE_CONFORMANCE_CARRIER_SECRET",
        hide_env_values = true
    )]
    carrier_secret: Option<String>,
    /// The MMS centre's HTTP Basic credentials towards the deployment, `USER:PASSWORD` (the
    /// server's `--mm7-inbound-username` and AGENTMESSAGE_MM7_INBOUND_PASSWORD), to check
    /// `POST /v1/carrier/mm7` past 401 and the media of an inbound MMS.
    #[arg(
        long,
        env = "AGENTMESSAGE_CONFORMANCE_MM7_CREDENTIALS",
        hide_env_values = true,
        value_parser = parse_credentials
    )]
    mm7_credentials: Option<(String, String)>,
    /// The spec to hold the deployment to: a file or URL (default: BASE_URL/openapi.json).
    #[arg(long)]
    spec: Option<String>,
    /// The part of the contract to prove: core (POST /v1/messages), full, webhooks, carrier,
    /// test-mode.
    #[arg(long, default_value = "full", value_parser = parse_profile)]
    profile: Profile,
    /// Certify: a pair not provable (or not finished) fails the run.
    #[arg(long)]
    certify: bool,
    /// Declared divergences (TOML: [[divergence]] id, reason, expires): a listed failure is
    /// reported as expected; a listed pass is flagged; an expired entry fails the run.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Write the run's evidence here: results.json, junit.xml, exchanges.har, summary.md.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seed every choice of the run (numbers, ids, property cases): the same seed, spec and
    /// fresh deployment send the same requests. Default: a random seed, printed at the start.
    #[arg(long)]
    seed: Option<u64>,
    /// Also write a JUnit XML report here.
    #[arg(long)]
    report: Option<PathBuf>,
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

fn parse_profile(name: &str) -> Result<Profile, String> {
    Profile::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        format!("no profile {name:?}; the profiles are {}", names.join(", "))
    })
}

/// The pairs of `profile` in `spec`, one line each: id, profile, what it proves, what proving it
/// takes; then those no deployment can prove from outside.
pub fn list(spec: &Spec, profile: Profile) -> String {
    let matrix = crate::Matrix::for_profile(spec, profile);
    let mut out = String::new();
    let mut never = vec![];
    for (op, status) in matrix.rows.keys() {
        let id = pairs::id(op, *status);
        let proves = match spec.operation(op) {
            Some(o) => format!(
                "{} {} answers {status}: {}",
                o.method,
                o.path,
                o.responses
                    .get(status)
                    .map(|d| d.description.as_str())
                    .unwrap_or_default()
            ),
            None if op.starts_with(pairs::WEBHOOKS) => format!(
                "the {} events of the run's changes reach the receiver signed, once each, in order",
                op.trim_start_matches("x-webhooks/")
            ),
            None => format!(
                "any request can get {status}: {}",
                spec.global
                    .get(status)
                    .map(|d| d.description.as_str())
                    .unwrap_or_default()
            ),
        };
        let provable = pairs::provable(spec, op, *status);
        if matches!(provable, pairs::Provable::Never(_)) {
            never.push(format!("  {id}: {}", provable.describe()));
        }
        out.push_str(&format!(
            "{id}\t{}\t{proves}\t{}\n",
            pairs::Profile::of(op),
            provable.describe()
        ));
    }
    out.push_str(&format!(
        "{} pairs in profile {profile}; no deployment can prove {} of them from outside{}\n",
        matrix.rows.len(),
        never.len(),
        if never.is_empty() { "" } else { ":" }
    ));
    for line in never {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Where the command writes: the matrix and listings to `out`, progress to `err`.
pub struct Output {
    pub out: Box<dyn Write + Send>,
    pub err: Arc<std::sync::Mutex<Box<dyn Write + Send>>>,
}

impl Output {
    /// stdout and stderr.
    pub fn standard() -> Output {
        Output {
            out: Box::new(std::io::stdout()),
            err: Arc::new(std::sync::Mutex::new(Box::new(std::io::stderr()))),
        }
    }

    fn note(&self, line: &str) {
        if let Ok(mut err) = self.err.lock() {
            let _ = writeln!(err, "{line}");
        }
    }
}

fn run(args: RunArgs, output: &mut Output) -> anyhow::Result<bool> {
    let (Some(base_url), Some(api_key)) = (args.base_url, args.api_key) else {
        anyhow::bail!("--base-url and --api-key are required");
    };
    let expectations = args.expect.as_deref().map(Expectations::load).transpose()?;
    let target = Target::with_timeout(&base_url, &api_key, args.request_timeout)?;
    let source = args
        .spec
        .clone()
        .unwrap_or_else(|| format!("{}/openapi.json", target.base_url));
    let spec = Spec::load(&source, &target.http)?;
    let options = Options {
        rate_limit_budget: args.rate_limit_budget,
        property_cases: args.property_cases,
        regressions_dir: None,
        carrier_secret: args.carrier_secret.clone(),
        mm7_credentials: args.mm7_credentials.clone(),
        request_timeout: args.request_timeout,
        deadline: args.deadline,
        max_shrink_iters: args.max_shrink_iters,
        body_timeout: args.body_timeout,
        webhook_listen: args.webhook_listen,
        webhook_wait: args.webhook_wait,
        progress: Some({
            let err = output.err.clone();
            Progress(Arc::new(move |line: &str| {
                if let Ok(mut err) = err.lock() {
                    let _ = writeln!(err, "{line}");
                }
            }))
        }),
        seed: args.seed,
        profile: args.profile,
        certify: args.certify,
    };
    let mut report = crate::run(&target, &spec, options);
    if let Some(expectations) = &expectations {
        report.apply(expectations, &crate::expectations::today());
    }
    write!(output.out, "{}", report.render())?;
    if let Some(path) = &args.report {
        std::fs::write(path, crate::report::junit(&report)?)?;
    }
    if let Some(dir) = &args.out {
        let info = evidence::RunInfo {
            base_url: &target.base_url,
            spec_source: &source,
            profile: args.profile,
        };
        evidence::write(dir, &report, &spec, &info)?;
        output.note(&format!(
            "conformance: evidence written to {}",
            dir.display()
        ));
    }
    Ok(!report.failed())
}

/// `USER:PASSWORD`.
fn parse_credentials(text: &str) -> Result<(String, String), String> {
    let (user, password) = text.split_once(':').ok_or("give USER:PASSWORD")?;
    if user.is_empty() || password.is_empty() {
        return Err("give USER:PASSWORD, neither empty".into());
    }
    Ok((user.to_owned(), password.to_owned()))
}

fn replay(args: ReplayArgs, output: &mut Output) -> anyhow::Result<bool> {
    let target = Target::new(&args.base_url, &args.api_key)?;
    let source = args
        .spec
        .clone()
        .unwrap_or_else(|| format!("{}/openapi.json", target.base_url));
    let spec = Spec::load(&source, &target.http)?;
    let replayed = crate::replay::replay(
        &args.dir,
        &args.id,
        &target,
        &spec,
        args.carrier_secret.as_deref(),
        args.mm7_credentials.as_ref(),
        args.stall_wait,
    )?;
    let mut same = true;
    for r in &replayed {
        let now = r.now.map_or("no answer".to_owned(), |s| s.to_string());
        let verdict = if r.same() { "same" } else { "DIFFERENT" };
        writeln!(
            output.out,
            "{}: recorded {}, now {now}: {verdict}",
            r.request, r.recorded
        )?;
        for p in &r.problems {
            writeln!(output.out, "  - {p}")?;
        }
        same &= r.same();
    }
    writeln!(
        output.out,
        "replay of {}: {}",
        args.id,
        if same {
            "same as recorded"
        } else {
            "DIFFERENT"
        }
    )?;
    Ok(same)
}

/// Runs the command line `args` (the program's name first), writing to `output`: the exit
/// code — 0 passed (or listed, or replayed the same), 1 failed (or replayed differently), 2 could
/// not start.
pub fn main_with<I, T>(args: I, output: &mut Output) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            if err.use_stderr() {
                output.note(&err.render().to_string());
            } else {
                let _ = write!(output.out, "{}", err.render());
            }
            return code;
        }
    };
    let result = match cli.command {
        Some(Command::List { spec, profile }) => (|| {
            let spec = match spec {
                Some(source) => Spec::load(&source, &reqwest::blocking::Client::new())?,
                None => Spec::parse(serde_json::from_str(BUILT_WITH)?)?,
            };
            write!(output.out, "{}", list(&spec, profile))?;
            Ok(true)
        })(),
        Some(Command::Replay(args)) => replay(args, output),
        None => run(cli.run, output),
    };
    let _ = output.out.flush();
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(err) => {
            output.note(&format!("error: {err:#}"));
            2
        }
    }
}
