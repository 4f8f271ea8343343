//! The `agentmessage` command line: serve, migrate, spec, admin.

use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use agentmessage::{
    config::{DatabaseArgs, ProcessArgs, ServeArgs},
    delivery::Worker,
    domain::organization::KeyMode,
    domain::{PhoneNumber, ScopeSet},
    service::{organizations::DEMO_FROM, organizations::DEMO_TO, Services},
    store::Store,
};
use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "agentmessage",
    version,
    about = "AgentMessage: an OpenAPI-first SMS/MMS messaging API server"
)]
struct Cli {
    /// How log lines look: `pretty` (coloured, for a terminal), `plain` (the same without colour
    /// codes, for files and journald) or `json` (one object a line, with the request's id).
    /// Default: `pretty` on a terminal, `plain` otherwise.
    #[arg(long, global = true, env = "AGENTMESSAGE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// A TOML file of settings (any flag of `serve` and `worker`, by its name: `listen`,
    /// `smpp_address`, `[smpp] address`, …). A flag wins over the environment, the environment
    /// over the file, the file over the default; `agentmessage config show` prints the outcome.
    #[arg(long, global = true, env = "AGENTMESSAGE_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Plain,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (migrations are applied first).
    Serve(ServeArgs),
    /// Run only the delivery worker (hands queued messages to the carrier, applies receipts).
    Worker(ProcessArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the OpenAPI document (JSON, or YAML with --yaml); needs no database.
    Spec {
        #[arg(long)]
        yaml: bool,
    },
    /// Set up organizations, keys and numbers. Each prints one JSON object on stdout.
    #[command(subcommand)]
    Admin(Admin),
    /// Inspect the settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script: `agentmessage completions bash > /etc/bash_completion.d/agentmessage`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Create an organization: prints {"id": …}.
    CreateOrg {
        #[arg(long)]
        name: String,
        /// Sustained sends per second.
        #[arg(long, default_value_t = 10)]
        rate_per_second: u32,
        /// Sends allowed in a burst.
        #[arg(long, default_value_t = 20)]
        burst: u32,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Create an API key: prints {"id": …, "key": "am_live_…"}, the only time the key is shown.
    CreateKey {
        #[arg(long)]
        org: Uuid,
        /// Comma-separated scopes, e.g. messages:send,messages:read, or `all`.
        #[arg(long)]
        scopes: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
        /// A test-mode key (`am_test_…`): its messages go to the simulated carrier only.
        #[arg(long)]
        test: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an API key: prints {"id": …, "revoked_at": …}.
    RevokeKey {
        #[arg(long)]
        key_id: Uuid,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List organizations: prints {"organizations": [{"id", "name", "rate_per_second", "burst"}, …]}.
    ListOrgs {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List an organization's API keys of both modes, revoked ones too (never the secret): prints
    /// {"keys": [{"id", "name", "prefix", "mode", "scopes", "created_at", "revoked_at", "last_used_at"}, …]}.
    ListKeys {
        #[arg(long)]
        org: Uuid,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List an organization's numbers: prints {"numbers": [{"id", "phone_number"}, …]}.
    ListNumbers {
        #[arg(long)]
        org: Uuid,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Take a number away from an organization: prints {"removed": "+1…"}. Sends from it are
    /// refused from then on; messages already sent keep it.
    RemoveNumber {
        #[arg(long)]
        org: Uuid,
        /// E.164.
        #[arg(long)]
        number: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Change an organization's rate limit on sends and lookups: prints the organization.
    /// Running API processes apply it within their key cache's check interval.
    SetRateLimit {
        #[arg(long)]
        org: Uuid,
        /// Sends and lookups allowed per second, sustained.
        #[arg(long)]
        rate_per_second: u32,
        /// Sends and lookups allowed in a burst.
        #[arg(long)]
        burst: u32,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Give an organization a phone number: prints {"id": …, "phone_number": …}.
    AddNumber {
        #[arg(long)]
        org: Uuid,
        /// E.164.
        #[arg(long)]
        number: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every setting `serve` would run with (the same flags, environment and `--config`),
    /// one `name = value  # source` line each (source: flag, env, file or default), secrets and
    /// database passwords masked.
    Show(ServeArgs),
}

/// The environment variables the configuration file gave (for `config show`).
static FROM_FILE: std::sync::OnceLock<std::collections::BTreeSet<String>> =
    std::sync::OnceLock::new();

/// The settings of the file named by `--config` (or `AGENTMESSAGE_CONFIG`), under the
/// environment: each one the environment does not give becomes its environment variable, so
/// that the flags win over both. Runs before any thread starts.
fn load_config_file() -> anyhow::Result<()> {
    use clap::CommandFactory;
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = agentmessage::config_file::path_in(&args) else {
        let _ = FROM_FILE.set(Default::default());
        return Ok(());
    };
    let command = Cli::command();
    let known = agentmessage::config_file::settings_of(&command, &["serve", "worker"]);
    let mut from_file = std::collections::BTreeSet::new();
    for (env, value) in agentmessage::config_file::layered(&path, &known)? {
        if std::env::var_os(&env).is_none() {
            std::env::set_var(&env, value);
            from_file.insert(env);
        }
    }
    let _ = FROM_FILE.set(from_file);
    Ok(())
}

fn main() -> ExitCode {
    agentmessage::server::limit_allocator_arenas();
    if let Err(err) = load_config_file() {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let matches = {
        use clap::CommandFactory;
        Cli::command().get_matches()
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    if let Command::Config(ConfigCommand::Show(_)) = &cli.command {
        return config_show(&matches);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        init_logging(&cli);
        match run(cli).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `config show`: every setting of `serve` with its value and where it came from.
fn config_show(matches: &clap::ArgMatches) -> ExitCode {
    use clap::{parser::ValueSource, CommandFactory};
    use std::io::Write;
    let command = Cli::command();
    let Some(show) = matches
        .subcommand_matches("config")
        .and_then(|m| m.subcommand_matches("show"))
    else {
        return ExitCode::FAILURE;
    };
    let from_file = FROM_FILE.get().cloned().unwrap_or_default();
    let source = |env: &str, from: Option<ValueSource>| match from {
        Some(ValueSource::CommandLine) => "flag",
        Some(ValueSource::EnvVariable) if from_file.contains(env) => "file",
        Some(ValueSource::EnvVariable) => "env",
        _ => "default",
    };
    let mut lines = Vec::new();
    let args = command
        .find_subcommand("config")
        .and_then(|c| c.find_subcommand("show"))
        .map(|c| c.get_arguments().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for arg in &args {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let env = env.to_string_lossy().into_owned();
        if env == agentmessage::config_file::CONFIG_ENV {
            continue;
        }
        let name = long.replace('-', "_");
        let id = arg.get_id().as_str();
        let raw: Option<Vec<String>> = show
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect());
        let value = match raw {
            None => "(unset)".to_owned(),
            Some(values)
                if agentmessage::config_file::is_secret(&name)
                    && values.iter().any(|v| !v.is_empty()) =>
            {
                "\"***\"".to_owned()
            }
            Some(values) => {
                let joined = values.join(",");
                let shown = if name == "database_url" {
                    agentmessage::store::redacted_url(&joined)
                } else {
                    joined
                };
                format!("{shown:?}")
            }
        };
        lines.push(format!(
            "{name} = {value}  # {}",
            source(&env, show.value_source(id))
        ));
    }
    for (name, env) in agentmessage::config_file::ENV_ONLY {
        let (value, from) = match std::env::var_os(env) {
            Some(_) if from_file.contains(*env) => ("\"***\"", "file"),
            Some(_) => ("\"***\"", "env"),
            None => ("(unset)", "default"),
        };
        lines.push(format!("{name} = {value}  # {from}"));
    }
    let argv: Vec<String> = std::env::args().collect();
    if let Some(path) = agentmessage::config_file::path_in(&argv) {
        match agentmessage::connections::read(&path) {
            Ok(routing) => lines.extend(routing.shown()),
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::from(2);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    ExitCode::SUCCESS
}

/// Log lines go to stderr (stdout carries the commands' output and the demo banner). The
/// default level is `info` for the long-running commands and `warn` for the one-shot ones, whose
/// output is their JSON; the migration runner's per-migration lines are at `debug` either way
/// (`open` logs one line). `AGENTMESSAGE_LOG` overrides the filter.
fn init_logging(cli: &Cli) {
    use std::io::IsTerminal;
    let long_running = matches!(cli.command, Command::Serve(_) | Command::Worker(_));
    let default = if long_running {
        "info,sea_orm_migration=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTMESSAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let format = cli
        .log_format
        .unwrap_or(if std::io::stderr().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Plain
        });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // One JSON object a line; a request's lines carry its `request_id` (the request's span).
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => logs.with_ansi(true).init(),
        LogFormat::Plain => logs.with_ansi(false).init(),
    }
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    let store = Store::connect_with(&database.database_url, database.store_settings())
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                agentmessage::store::redacted_url(&database.database_url)
            )
        })?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!(
        database = %agentmessage::store::redacted_url(&database.database_url),
        "database schema up to date"
    );
    Ok(store)
}

fn service_error(err: agentmessage::service::Error) -> anyhow::Error {
    match err {
        agentmessage::service::Error::Validation(fields) => {
            anyhow!("invalid input: {:?}", fields.into_map())
        }
        agentmessage::service::Error::NotFound => anyhow!("no such organization or key"),
        other => anyhow!(other),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Spec { yaml } => {
            use std::io::Write;
            let text = if yaml {
                agentmessage::spec_yaml()
            } else {
                format!("{}\n", agentmessage::spec_json())
            };
            // A closed pipe (`agentmessage spec | head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Command::Migrate(database) => {
            open(&database).await?;
            eprintln!("migrations applied");
        }
        Command::Serve(mut args) => {
            args.process.config_file = cli.config.clone();
            serve(args).await?
        }
        Command::Worker(mut args) => {
            args.config_file = cli.config.clone();
            let plan = args.plan()?;
            let store = open(&args.database).await?;
            let services = Services::new(store, args.settings(&plan)?);
            agentmessage::api::install_renderer(&services);
            let ops = ops_listener(args.ops_listen).await?;
            tracing::info!(
                connections = ?plan.connections.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                ops = %args.ops_listen,
                "AgentMessage delivery worker running"
            );
            let worker = worker(services.clone(), &args, plan)?;
            let ops = tokio::spawn(agentmessage::ops::serve(
                ops,
                services,
                agentmessage::ops::Role::Worker,
                shutdown_signal(),
            ));
            let stopped = async {
                shutdown_signal().await;
                tracing::info!(grace = ?args.shutdown_grace, "stopping: finishing what the worker holds");
                tokio::time::sleep(args.shutdown_grace).await;
            };
            tokio::select! {
                _ = worker.run(shutdown_signal()) => {}
                _ = stopped => tracing::warn!("the worker did not stop within the shutdown grace"),
            }
            let _ = ops.await;
            tracing::info!("AgentMessage delivery worker stopped");
        }
        Command::Admin(admin) => admin_command(admin).await?,
        // Answered before the runtime starts.
        Command::Config(ConfigCommand::Show(_)) => {}
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "agentmessage",
                &mut std::io::stdout(),
            );
        }
    }
    Ok(())
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    // The demo covers every README section: webhooks need a secret key, so a demo without one
    // gets its own, made once and kept beside the database.
    let demo_secret = if args.demo && args.process.webhooks.secret_key.is_none() {
        let (key, file) = demo_secret_key(&args.process.database.database_url)?;
        args.process.webhooks.secret_key = Some(key);
        Some(file)
    } else {
        None
    };
    let process = &args.process;
    // Read (and checked) before anything starts, by an API-only process too: what the
    // connections carry decides which sends are taken.
    let plan = process.plan()?;
    let store = open(&process.database).await?;
    let settings = agentmessage::service::Settings {
        body_read_timeout: args.body_read_timeout,
        ..process.settings(&plan)?
    };
    let services = Services::new(store, settings);
    let demo = if args.demo {
        Some(services.prepare_demo().await.map_err(service_error)?)
    } else {
        None
    };
    match agentmessage::server::raise_descriptor_limit() {
        Ok(limit) => tracing::debug!(limit, "open-descriptor limit"),
        Err(err) => tracing::warn!(%err, "could not raise the open-descriptor limit"),
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let worker_task = match args.no_worker {
        true => None,
        false => {
            let worker = worker(services.clone(), process, plan)?;
            Some(tokio::spawn(worker.run(shutdown_signal())))
        }
    };
    let role = if args.no_worker {
        agentmessage::ops::Role::Api
    } else {
        agentmessage::ops::Role::Worker
    };
    let signalled = Arc::new(std::sync::OnceLock::new());
    let noted = signalled.clone();
    let grace = process.shutdown_grace;
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = noted.set(std::time::Instant::now());
        tracing::info!(
            ?grace,
            "stopping: no new connections; finishing requests in flight"
        );
    });
    let ops = ops_listener(process.ops_listen).await?;
    let ops_task = tokio::spawn(agentmessage::ops::serve(
        ops,
        services.clone(),
        role,
        shutdown_signal(),
    ));
    tracing::info!(listen = %bound, worker = !args.no_worker, "AgentMessage listening");
    if let Some(demo) = &demo {
        print_demo_banner(demo, bound, process.ops_listen, demo_secret.as_deref());
    }
    agentmessage::server::serve(
        listener,
        agentmessage::app(services),
        args.server_settings(),
        shutdown_signal(),
    )
    .await
    .context("serving")?;
    // The listener has stopped and its requests are answered; the worker finishes what it
    // holds (its answers recorded, its carrier sessions closed) within what is left of the
    // grace, counted from the signal: the whole stop takes at most the grace.
    let left = process
        .shutdown_grace
        .saturating_sub(signalled.get().map_or(Duration::ZERO, |at| at.elapsed()));
    if let Some(task) = worker_task {
        if tokio::time::timeout(left, task).await.is_err() {
            tracing::warn!("the worker did not stop within the shutdown grace");
        }
    }
    let _ = ops_task.await;
    tracing::info!("AgentMessage stopped");
    Ok(())
}

/// The demo's secret key for webhook signing secrets: read from the file beside the SQLite
/// database (`<database>.secret-key`, mode 0600), made there the first time. Returns the key and
/// the file.
fn demo_secret_key(database_url: &str) -> anyhow::Result<(String, std::path::PathBuf)> {
    use base64::Engine;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file = match agentmessage::store::sqlite_file(database_url) {
        Some(db) => {
            let mut name = db.into_os_string();
            name.push(".secret-key");
            std::path::PathBuf::from(name)
        }
        None => std::path::PathBuf::from("agentmessage-demo.secret-key"),
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => return Ok((text.trim().to_owned(), file)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .with_context(|| format!("creating {}", file.display()))?;
    writeln!(out, "{key}").with_context(|| format!("writing {}", file.display()))?;
    Ok((key, file))
}

/// What `serve --demo` prints last, on stdout (log lines go to stderr): the keys, a send that
/// works as pasted, and where to read on.
fn print_demo_banner(
    demo: &agentmessage::service::organizations::Demo,
    bound: std::net::SocketAddr,
    ops: std::net::SocketAddr,
    secret_file: Option<&std::path::Path>,
) {
    let host = if bound.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
    } else {
        bound
    };
    let base = format!("http://{host}");
    let mut banner = String::new();
    banner.push_str("\n========================================================================\n");
    banner.push_str(&format!(
        "AgentMessage demo is ready: organization {} owns {DEMO_FROM}; {DEMO_TO} has opted in.\n\n",
        demo.org_id
    ));
    banner.push_str("API keys (every scope; shown once, stored hashed):\n");
    banner.push_str(&format!("  live: {}\n", demo.key));
    banner.push_str(&format!(
        "  test: {}   (test mode: the simulated carrier only)\n\n",
        demo.test_key
    ));
    banner.push_str("Send the example message:\n\n");
    banner.push_str(&format!(
        "curl -X POST \"{base}/v1/messages\" \\\n  -H \"Authorization: Bearer {}\" \\\n  -H \"Idempotency-Key: $(date +%s%N)\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"from\": \"{DEMO_FROM}\", \"to\": \"{DEMO_TO}\", \"text\": \"hello from agentmessage\", \"priority\": \"default\", \"tag\": \"order-7421\"}}'\n\n",
        demo.key
    ));
    banner.push_str(&format!("API reference:  {base}/reference\n"));
    banner.push_str(&format!("Swagger UI:     {base}/docs\n"));
    banner.push_str(&format!(
        "Operations:     http://{ops}/readyz and /metrics\n"
    ));
    if let Some(file) = secret_file {
        banner.push_str(&format!(
            "Webhooks:       signing secrets are sealed under the demo's key in {}\n",
            file.display()
        ));
    }
    banner.push_str(
        "README:         README.md in the source: every section works against this demo\n",
    );
    banner.push_str("========================================================================\n");
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes());
    let _ = out.flush();
}

/// Binds the operations listener.
async fn ops_listener(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("listening on {addr} for /healthz, /readyz and /metrics (--ops-listen)")
    })?;
    tracing::info!(ops = %listener.local_addr()?, "operations listener");
    Ok(listener)
}

/// A delivery worker over the connections and routes of `plan`: the simulated carrier of the
/// embedded default, the single-carrier settings' carriers, or the configuration file's named
/// connections; test mode always on a simulated carrier (stored as `test` unless the live
/// carrier is the simulated one already).
fn worker(
    services: Services,
    process: &ProcessArgs,
    plan: agentmessage::connections::Plan,
) -> anyhow::Result<Worker> {
    let args = &process.worker;
    let settings = agentmessage::delivery::WorkerSettings {
        webhooks: process.webhooks.dispatcher(),
        ..args.settings()
    };
    let routing = plan.start(&services, args.receipt_delay)?;
    let worker = Worker::routed(services.clone(), routing, settings);
    services.report_carrier(worker.health_probe());
    Ok(worker)
}

/// Completes on SIGTERM or Ctrl-C (every caller gets its own copy of the signal).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "SIGTERM cannot be watched; stop with Ctrl-C");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// A service error for the command line, with `missing` as the message when it is a 404.
fn or_missing(missing: String) -> impl FnOnce(agentmessage::service::Error) -> anyhow::Error {
    move |err| match err {
        agentmessage::service::Error::NotFound => anyhow!(missing),
        other => service_error(other),
    }
}

/// An organization as the admin commands print it.
fn org_json(o: &agentmessage::domain::organization::Organization) -> serde_json::Value {
    json!({"id": o.id, "name": o.name, "rate_per_second": o.rate_per_second, "burst": o.burst})
}

async fn admin_command(admin: Admin) -> anyhow::Result<()> {
    let output = match admin {
        Admin::CreateOrg {
            name,
            rate_per_second,
            burst,
            database,
        } => {
            if rate_per_second == 0 || burst == 0 {
                return Err(anyhow!("--rate-per-second and --burst must be at least 1"));
            }
            let services = Services::new(open(&database).await?, Default::default());
            let org = services
                .create_organization(&name, rate_per_second, burst)
                .await
                .map_err(service_error)?;
            json!({"id": org.id})
        }
        Admin::CreateKey {
            org,
            scopes,
            name,
            test,
            database,
        } => {
            let scopes = if scopes.trim() == "all" {
                ScopeSet::all()
            } else {
                ScopeSet::parse_list(&scopes)?
            };
            if scopes.is_empty() {
                return Err(anyhow!(
                    "--scopes must name at least one scope: {}, or all",
                    agentmessage::domain::Scope::names()
                ));
            }
            let services = Services::new(open(&database).await?, Default::default());
            services
                .organization(org)
                .await
                .map_err(or_missing(format!("no organization {org}")))?;
            let (row, key) = services
                .insert_key(
                    org,
                    name.as_deref(),
                    &scopes,
                    if test { KeyMode::Test } else { KeyMode::Live },
                )
                .await
                .map_err(service_error)?;
            let granted: Vec<&str> = row.scopes.iter().map(|s| s.as_str()).collect();
            json!({"id": row.id, "key": key, "scopes": granted})
        }
        Admin::RevokeKey { key_id, database } => {
            let services = Services::new(open(&database).await?, Default::default());
            let row = services
                .revoke_any_api_key(key_id)
                .await
                .map_err(or_missing(format!("no key {key_id}")))?;
            let revoked_at = row.revoked_at.map(|t| t.to_wire());
            json!({"id": row.id, "revoked_at": revoked_at})
        }
        Admin::ListOrgs { database } => {
            let services = Services::new(open(&database).await?, Default::default());
            let orgs = services.organizations().await.map_err(service_error)?;
            let orgs: Vec<_> = orgs.iter().map(org_json).collect();
            json!({ "organizations": orgs })
        }
        Admin::ListKeys { org, database } => {
            let services = Services::new(open(&database).await?, Default::default());
            let keys = services
                .keys_of(org)
                .await
                .map_err(or_missing(format!("no organization {org}")))?;
            let keys: Vec<_> = keys
                .iter()
                .map(|k| {
                    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                    json!({
                        "id": k.id,
                        "name": k.name,
                        "prefix": k.display_prefix,
                        "mode": k.mode.as_str(),
                        "scopes": scopes,
                        "created_at": k.created_at.to_wire(),
                        "revoked_at": k.revoked_at.map(|t| t.to_wire()),
                        "last_used_at": k.last_used_at.map(|t| t.to_wire()),
                    })
                })
                .collect();
            json!({ "keys": keys })
        }
        Admin::ListNumbers { org, database } => {
            let services = Services::new(open(&database).await?, Default::default());
            let numbers = services
                .numbers_of(org)
                .await
                .map_err(or_missing(format!("no organization {org}")))?;
            let numbers: Vec<_> = numbers
                .iter()
                .map(|n| json!({"id": n.id, "phone_number": n.phone_number.as_str()}))
                .collect();
            json!({ "numbers": numbers })
        }
        Admin::RemoveNumber {
            org,
            number,
            database,
        } => {
            let number = PhoneNumber::parse(&number)
                .ok_or_else(|| anyhow!("--number must be E.164, like +15551112222"))?;
            let services = Services::new(open(&database).await?, Default::default());
            services
                .remove_number(org, &number)
                .await
                .map_err(or_missing(format!(
                    "organization {org} does not own {} (or does not exist)",
                    number.as_str()
                )))?;
            json!({"removed": number.as_str()})
        }
        Admin::SetRateLimit {
            org,
            rate_per_second,
            burst,
            database,
        } => {
            if rate_per_second == 0 || burst == 0 {
                return Err(anyhow!("--rate-per-second and --burst must be at least 1"));
            }
            let services = Services::new(open(&database).await?, Default::default());
            let o = services
                .set_rate_limit(org, rate_per_second, burst)
                .await
                .map_err(or_missing(format!("no organization {org}")))?;
            org_json(&o)
        }
        Admin::AddNumber {
            org,
            number,
            database,
        } => {
            let number = PhoneNumber::parse(&number)
                .ok_or_else(|| anyhow!("--number must be E.164, like +15551112222"))?;
            let services = Services::new(open(&database).await?, Default::default());
            let row = services
                .add_number(org, &number)
                .await
                .map_err(service_error)?;
            json!({"id": row.id, "phone_number": row.phone_number.as_str()})
        }
    };
    println!("{output}");
    Ok(())
}
