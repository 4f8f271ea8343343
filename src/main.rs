//! The `agentmessage` command line: serve, migrate, spec, admin.

use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use agentmessage::{
    config::{DatabaseArgs, ProcessArgs, ServeArgs},
    delivery::{
        registry::{self, CarrierKind, CarrierSetup},
        Worker,
    },
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
    #[command(subcommand)]
    command: Command,
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

#[tokio::main]
async fn main() -> ExitCode {
    agentmessage::server::limit_allocator_arenas();
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTMESSAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `AGENTMESSAGE_LOG_FORMAT=json`: one JSON object a line; a request's lines carry its
    // `request_id` (the request's span).
    if std::env::var("AGENTMESSAGE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
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
        Command::Serve(args) => serve(args).await?,
        Command::Worker(args) => {
            let store = open(&args.database).await?;
            let services = Services::new(store, args.settings()?);
            agentmessage::api::install_renderer(&services);
            let ops = ops_listener(args.ops_listen).await?;
            tracing::info!(
                carrier = args.carrier.carrier_name(),
                ops = %args.ops_listen,
                "AgentMessage delivery worker running"
            );
            let worker = worker(services.clone(), &args);
            let ops = tokio::spawn(agentmessage::ops::serve(
                ops,
                services,
                agentmessage::ops::Role::Worker,
                shutdown_signal(),
            ));
            let stopped = async {
                shutdown_signal().await;
                tokio::time::sleep(args.shutdown_grace).await;
            };
            tokio::select! {
                _ = worker.run(shutdown_signal()) => {}
                _ = stopped => tracing::warn!("the worker did not stop within the shutdown grace"),
            }
            let _ = ops.await;
        }
        Command::Admin(admin) => admin_command(admin).await?,
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let process = &args.process;
    let store = open(&process.database).await?;
    let settings = agentmessage::service::Settings {
        body_read_timeout: args.body_read_timeout,
        ..process.settings()?
    };
    let services = Services::new(store, settings);
    if args.demo {
        let demo = services.prepare_demo().await.map_err(service_error)?;
        let base = format!("http://{}", args.listen);
        println!("AgentMessage demo organization {} is ready.", demo.org_id);
        println!("Demo API key (every scope; shown once): {}", demo.key);
        println!();
        println!("Send the example message:");
        println!(
            "curl -X POST \"{base}/v1/messages\" -H \"Authorization: Bearer {}\" -H \"Content-Type: application/json\" \
             -d '{{\"from\": \"{DEMO_FROM}\", \"to\": \"{DEMO_TO}\", \"text\": \"hello from agentmessage\", \"priority\": \"default\", \"tag\": \"order-7421\"}}'",
            demo.key
        );
        println!();
        println!("API docs: {base}/docs");
    }
    match agentmessage::server::raise_descriptor_limit() {
        Ok(limit) => tracing::debug!(limit, "open-descriptor limit"),
        Err(err) => tracing::warn!(%err, "could not raise the open-descriptor limit"),
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let worker_task = (!args.no_worker).then(|| {
        let worker = worker(services.clone(), process);
        tokio::spawn(worker.run(shutdown_signal()))
    });
    let role = if args.no_worker {
        agentmessage::ops::Role::Api
    } else {
        agentmessage::ops::Role::Worker
    };
    let signalled = Arc::new(std::sync::OnceLock::new());
    let noted = signalled.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = noted.set(std::time::Instant::now());
    });
    let ops = ops_listener(process.ops_listen).await?;
    let ops_task = tokio::spawn(agentmessage::ops::serve(
        ops,
        services.clone(),
        role,
        shutdown_signal(),
    ));
    tracing::info!(listen = %bound, worker = !args.no_worker, "AgentMessage listening");
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
    Ok(())
}

/// Binds the operations listener.
async fn ops_listener(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("listening on {addr} for /healthz, /readyz and /metrics (--ops-listen)")
    })?;
    tracing::info!(ops = %listener.local_addr()?, "operations listener");
    Ok(listener)
}

/// A delivery worker: with the simulated carrier of the embedded default, or with the SMPP
/// carrier for live messages and the simulated one (stored as carrier `test`) for test mode.
fn worker(services: Services, process: &ProcessArgs) -> Worker {
    let (args, carrier) = (&process.worker, &process.carrier);
    let settings = agentmessage::delivery::WorkerSettings {
        webhooks: process.webhooks.dispatcher(),
        ..args.settings()
    };
    let setup = carrier.setup(args.receipt_delay);
    let live = registry::start(services.clone(), carrier.carrier_name(), setup);
    let worker = Worker::new(services.clone(), live, settings);
    // Test mode's messages never reach a live carrier: the simulated one, stored as `test`,
    // unless the live carrier is the simulated one already.
    let worker = match carrier.carrier {
        CarrierKind::Simulated => worker,
        _ => {
            let simulated = CarrierSetup::Simulated {
                receipt_delay: args.receipt_delay,
            };
            worker.with_test_carrier(registry::start(services.clone(), "test", simulated))
        }
    };
    services.report_carrier(worker.health_probe());
    worker
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
            match services.organization(org).await {
                Ok(_) => {}
                Err(agentmessage::service::Error::NotFound) => {
                    return Err(anyhow!("no organization {org}"))
                }
                Err(err) => return Err(service_error(err)),
            }
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
            let row = match services.revoke_any_api_key(key_id).await {
                Ok(row) => row,
                Err(agentmessage::service::Error::NotFound) => {
                    return Err(anyhow!("no key {key_id}"))
                }
                Err(err) => return Err(service_error(err)),
            };
            let revoked_at = row.revoked_at.map(|t| t.to_wire());
            json!({"id": row.id, "revoked_at": revoked_at})
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
