//! Settings from flags, the environment (`AGENTMESSAGE_*`) and defaults, parsed with clap.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

/// The database every command uses.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(
        long,
        env = "AGENTMESSAGE_DATABASE_URL",
        default_value = "sqlite://agentmessage.db"
    )]
    pub database_url: String,
}

/// How `serve` runs.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "AGENTMESSAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// How long a number lookup counts as recent for the landline check (`30d`, `12h`, …).
    #[arg(long, env = "AGENTMESSAGE_LOOKUP_MAX_AGE", default_value = "30d", value_parser = humantime::parse_duration)]
    pub lookup_max_age: Duration,

    /// Also set up a demo organization that owns +15551112222, with +15554443333 opted in, and
    /// print a fresh key with every scope and a curl command that sends a message.
    #[arg(long)]
    pub demo: bool,
}

impl ServeArgs {
    pub fn settings(&self) -> crate::service::Settings {
        crate::service::Settings {
            lookup_max_age: self.lookup_max_age,
        }
    }
}
