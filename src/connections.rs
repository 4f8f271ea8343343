//! Named carrier connections and routes, as the configuration file writes them:
//!
//! ```toml
//! [connections.eu-smsc]
//! kind = "smpp"                # smpp, mm7 or simulated
//! address = "smsc-eu.example.net:2775"
//! system_id = "agentmessage"   # password: AGENTMESSAGE_CONNECTION_EU_SMSC_PASSWORD, or `password`
//! binds = 2
//! window = 10
//! throughput = 100             # messages a second through this connection, across every worker
//!
//! [[routes]]
//! channel = "sms"
//! prefix = "+44"               # the longest prefix that starts the recipient wins
//! connections = ["eu-smsc", "backup"]
//! ```
//!
//! A connection's settings not written take the value of the matching single-carrier setting
//! (`smpp_*`, `mm7_*`, `receipt_delay`) — its flag, environment variable or default. Without a
//! `[connections]` table, the single-carrier settings (`--carrier`, `--mms-carrier`) make a
//! one-connection configuration under the names messages were always stored with (`simulated`,
//! `smpp`, `mm7`).

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{anyhow, bail, Context};
use figment::{providers::Format, Figment};
use serde::Deserialize;

use crate::{
    config::{CarrierKind, MmsCarrierKind, ProcessArgs},
    delivery::{
        registry::{self, CarrierSetup},
        routing::{Connection, Route, Routing},
        Capabilities,
    },
    domain::message::Channel,
    service::Services,
};

/// The connection name test mode's simulated carrier is stored under (never a file's).
pub const TEST: &str = "test";

/// What kind of carrier a connection reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Smpp,
    Mm7,
    Simulated,
}

impl Kind {
    fn capabilities(self) -> Capabilities {
        match self {
            Kind::Smpp => CarrierKind::Smpp.capabilities(),
            Kind::Mm7 => MmsCarrierKind::Mm7.capabilities(),
            Kind::Simulated => CarrierKind::Simulated.capabilities(),
        }
    }

    fn carries(self, channel: Channel) -> bool {
        match (self, channel) {
            (Kind::Mm7, Channel::Sms) => false,
            (_, Channel::Mms) => self.capabilities().mms,
            _ => true,
        }
    }

    /// The settings a connection of this kind may write (besides `kind` and `throughput`).
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Smpp => &[
                "address",
                "system_id",
                "password",
                "system_type",
                "tls",
                "tls_ca",
                "binds",
                "window",
                "session_throughput",
                "enquire_link",
                "response_timeout",
                "reconnect_min",
                "reconnect_max",
                "throttle_pause",
                "close_timeout",
                "source_ton",
                "source_npi",
                "dest_ton",
                "dest_npi",
            ],
            Kind::Mm7 => &[
                "url",
                "username",
                "password",
                "vasp_id",
                "vas_id",
                "service_code",
                "version",
                "tls_ca",
                "timeout",
                "concurrency",
            ],
            Kind::Simulated => &["receipt_delay"],
        }
    }
}

/// One `[connections.NAME]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEntry {
    pub kind: Kind,
    /// Messages a second through this connection, across every worker (0 or unset: no limit).
    #[serde(default)]
    pub throughput: u32,
    pub address: Option<String>,
    pub system_id: Option<String>,
    pub password: Option<String>,
    pub system_type: Option<String>,
    pub tls: Option<bool>,
    pub tls_ca: Option<std::path::PathBuf>,
    pub binds: Option<u32>,
    pub window: Option<u32>,
    pub session_throughput: Option<u32>,
    pub enquire_link: Option<String>,
    pub response_timeout: Option<String>,
    pub reconnect_min: Option<String>,
    pub reconnect_max: Option<String>,
    pub throttle_pause: Option<String>,
    pub close_timeout: Option<String>,
    pub source_ton: Option<u8>,
    pub source_npi: Option<u8>,
    pub dest_ton: Option<u8>,
    pub dest_npi: Option<u8>,
    pub url: Option<String>,
    pub username: Option<String>,
    pub vasp_id: Option<String>,
    pub vas_id: Option<String>,
    pub service_code: Option<String>,
    pub version: Option<String>,
    pub timeout: Option<String>,
    pub concurrency: Option<u32>,
    pub receipt_delay: Option<String>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// `sms` or `mms`.
    pub channel: String,
    /// The recipient's first digits, with or without `+`; unset or empty for every recipient.
    #[serde(default)]
    pub prefix: String,
    /// Connection names, in the order they are tried.
    pub connections: Vec<String>,
}

/// The file's `[connections]` and `[[routes]]` (empty when it has none).
#[derive(Debug, Clone, Default)]
pub struct FileRouting {
    pub connections: BTreeMap<String, ConnectionEntry>,
    pub routes: Vec<RouteEntry>,
    /// Each connection's table as written (for `config show`).
    written: BTreeMap<String, figment::value::Dict>,
}

impl FileRouting {
    /// `config show`'s lines for the connections and routes: `name = value  # source`, with
    /// passwords masked (a password from its environment variable shown as `env`).
    pub fn shown(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, table) in &self.written {
            let from_env = std::env::var_os(password_env(name)).is_some_and(|v| !v.is_empty());
            for (key, value) in table {
                if key == "password" {
                    let from = if from_env { "env" } else { "file" };
                    lines.push(format!("connections.{name}.password = \"***\"  # {from}"));
                    continue;
                }
                lines.push(format!(
                    "connections.{name}.{key} = {}  # file",
                    shown_value(value)
                ));
            }
            if from_env && !table.contains_key("password") {
                lines.push(format!("connections.{name}.password = \"***\"  # env"));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            let prefix = if route.prefix.is_empty() {
                "every recipient"
            } else {
                route.prefix.as_str()
            };
            lines.push(format!(
                "routes.{} = \"{} {prefix} -> {}\"  # file",
                i + 1,
                route.channel,
                route.connections.join(", ")
            ));
        }
        lines
    }
}

/// A value as `config show` prints it: text quoted, numbers and booleans bare.
fn shown_value(value: &figment::value::Value) -> String {
    use figment::value::Value;
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default(),
        Value::Char(_, c) => format!("{c:?}"),
        other => format!("{other:?}"),
    }
}

/// The keys of the file that are not single settings.
pub const TABLES: &[&str] = &["connections", "routes"];

/// Reads `[connections]` and `[[routes]]` of the TOML file at `path`.
pub fn read(path: &Path) -> anyhow::Result<FileRouting> {
    let whole: figment::value::Dict = Figment::from(figment::providers::Toml::file(path))
        .extract()
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let connections: BTreeMap<String, figment::value::Dict> = match whole.get("connections") {
        None => BTreeMap::new(),
        Some(v) => v
            .deserialize()
            .with_context(|| format!("{}: [connections]", path.display()))?,
    };
    let mut entries = BTreeMap::new();
    let written = connections.clone();
    for (name, table) in connections {
        let kind = table.get("kind").and_then(|v| v.as_str()).ok_or_else(|| {
            anyhow!(
                "{}: connection {name:?} needs a kind (smpp, mm7 or simulated)",
                path.display()
            )
        })?;
        let entry: ConnectionEntry = figment::value::Value::from(table.clone())
            .deserialize()
            .with_context(|| format!("{}: connection {name:?}", path.display()))?;
        for key in table.keys() {
            if key != "kind" && key != "throughput" && !entry.kind.keys().contains(&key.as_str()) {
                bail!(
                    "{}: connection {name:?}: {key} is not a setting of a {kind} connection (it takes {})",
                    path.display(),
                    entry.kind.keys().join(", ")
                );
            }
        }
        entries.insert(name, entry);
    }
    let routes: Vec<RouteEntry> = match whole.get("routes") {
        None => Vec::new(),
        Some(v) => v
            .deserialize()
            .with_context(|| format!("{}: [[routes]]", path.display()))?,
    };
    Ok(FileRouting {
        connections: entries,
        routes,
        written,
    })
}

/// One connection to start.
#[derive(Debug)]
pub struct ConnectionPlan {
    pub name: String,
    pub kind: Kind,
    pub setup: CarrierSetup,
    pub throughput: u32,
}

/// One route, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    pub channel: Channel,
    pub prefix: String,
    pub connections: Vec<String>,
}

/// Every connection and route of a deployment, checked, and what the API needs to know of them.
#[derive(Debug)]
pub struct Plan {
    pub connections: Vec<ConnectionPlan>,
    pub routes: Vec<RoutePlan>,
    /// The connection test mode uses when it is one of the live ones (the embedded default's
    /// simulated carrier); otherwise a simulated carrier of its own, named [`TEST`].
    pub test_shares: Option<String>,
    pub failover_after: Duration,
}

impl Plan {
    /// The name receipts over `/v1/carrier/receipts` and messages over `/v1/carrier/inbound`
    /// are stored under: the first connection of the route for every SMS recipient.
    pub fn carrier_name(&self) -> String {
        self.routes
            .iter()
            .find(|r| r.channel == Channel::Sms && r.prefix.is_empty())
            .or(self.routes.first())
            .and_then(|r| r.connections.first())
            .cloned()
            .unwrap_or_else(|| TEST.into())
    }

    /// Whether a route carries MMS (else a send with media is refused with 422).
    pub fn mms_supported(&self) -> bool {
        self.routes.iter().any(|r| r.channel == Channel::Mms)
    }

    /// The MM7 connection `/v1/carrier/mm7` records under (the first one), if any.
    pub fn mm7_name(&self) -> Option<String> {
        self.connections
            .iter()
            .find(|c| c.kind == Kind::Mm7)
            .map(|c| c.name.clone())
    }

    /// Starts every connection (and test mode's) and routes between them.
    pub fn start(self, services: &Services, receipt_delay: Duration) -> anyhow::Result<Routing> {
        let mut started: BTreeMap<String, std::sync::Arc<Connection>> = BTreeMap::new();
        for plan in self.connections {
            let carrier = registry::start(services.clone(), &plan.name, plan.setup)
                .with_context(|| format!("the connection {:?}", plan.name))?;
            started.insert(plan.name, Connection::new(carrier, plan.throughput));
        }
        let test = match &self.test_shares {
            Some(name) => started
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("test mode's connection {name:?} was not started"))?,
            None => Connection::new(
                registry::start(
                    services.clone(),
                    TEST,
                    CarrierSetup::Simulated { receipt_delay },
                )?,
                0,
            ),
        };
        let routes = self
            .routes
            .into_iter()
            .map(|r| {
                let connections = r
                    .connections
                    .iter()
                    .map(|n| {
                        started
                            .get(n)
                            .cloned()
                            .expect("routes name started connections")
                    })
                    .collect();
                Route::new(r.channel, r.prefix, connections)
            })
            .collect();
        Ok(Routing::new(routes, test, self.failover_after))
    }
}

fn duration(
    name: &str,
    field: &str,
    text: &Option<String>,
    default: Duration,
) -> anyhow::Result<Duration> {
    match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| anyhow!("connection {name:?}: {field} {t:?} is not a duration: {e}")),
    }
}

/// A connection's password: `AGENTMESSAGE_CONNECTION_<NAME>_PASSWORD` (upper case, `-` as
/// `_`) over the file's `password`, over the single-carrier password.
pub fn password_env(name: &str) -> String {
    format!(
        "AGENTMESSAGE_CONNECTION_{}_PASSWORD",
        name.to_uppercase().replace('-', "_")
    )
}

/// The one-connection configuration of the single-carrier flags, or the file's connections
/// and routes, checked: names, kinds, what each route's connections carry, prefixes, a route
/// for every SMS recipient, every connection in a route.
pub fn plan(process: &ProcessArgs, file: &FileRouting) -> anyhow::Result<Plan> {
    let failover_after = process.carrier.failover_after;
    if file.connections.is_empty() {
        if !file.routes.is_empty() {
            bail!("[[routes]] name connections, and the configuration file has no [connections]");
        }
        return from_flags(process, failover_after);
    }
    let mut connections = Vec::new();
    for (name, entry) in &file.connections {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            bail!("connection {name:?}: a name is 1 to 40 of a-z, 0-9, - and _");
        }
        if name == TEST {
            bail!("connection \"test\": the name is test mode's own simulated carrier");
        }
        connections.push(ConnectionPlan {
            name: name.clone(),
            kind: entry.kind,
            setup: setup_of(process, name, entry)?,
            throughput: entry.throughput,
        });
    }
    let mut routes: Vec<RoutePlan> = Vec::new();
    for (i, route) in file.routes.iter().enumerate() {
        let at = i + 1;
        let channel = Channel::parse(&route.channel)
            .ok_or_else(|| anyhow!("route {at}: channel {:?} is not sms or mms", route.channel))?;
        let digits = route.prefix.trim_start_matches('+');
        if !digits.chars().all(|c| c.is_ascii_digit()) || route.prefix.matches('+').count() > 1 {
            bail!(
                "route {at}: prefix {:?} is not the start of a phone number (+ and digits)",
                route.prefix
            );
        }
        let prefix = if digits.is_empty() {
            String::new()
        } else {
            format!("+{digits}")
        };
        if route.connections.is_empty() {
            bail!("route {at}: it names no connection");
        }
        for name in &route.connections {
            let Some(entry) = file.connections.get(name) else {
                bail!("route {at}: there is no connection {name:?}");
            };
            if !entry.kind.carries(channel) {
                bail!(
                    "route {at}: connection {name:?} ({:?}) cannot carry {}",
                    entry.kind,
                    channel.as_str()
                );
            }
        }
        if routes
            .iter()
            .any(|r| r.channel == channel && r.prefix == prefix)
        {
            bail!(
                "route {at}: another route already takes {} to {:?}",
                channel.as_str(),
                if prefix.is_empty() {
                    "every recipient"
                } else {
                    &prefix
                }
            );
        }
        routes.push(RoutePlan {
            channel,
            prefix,
            connections: route.connections.clone(),
        });
    }
    for channel in Channel::ALL {
        let routed = routes.iter().any(|r| r.channel == *channel);
        let everyone = routes
            .iter()
            .any(|r| r.channel == *channel && r.prefix.is_empty());
        if !everyone && (routed || *channel == Channel::Sms) {
            bail!(
                "no route takes {} to every recipient: add a [[routes]] entry with channel = {:?} and no prefix, so that no message waits for a route",
                channel.as_str(),
                channel.as_str()
            );
        }
    }
    for name in file.connections.keys() {
        if !routes.iter().any(|r| r.connections.contains(name)) {
            bail!("connection {name:?} is in no route");
        }
    }
    Ok(Plan {
        connections,
        routes,
        test_shares: None,
        failover_after,
    })
}

/// The single-carrier flags as one connection (two with `--mms-carrier`).
fn from_flags(process: &ProcessArgs, failover_after: Duration) -> anyhow::Result<Plan> {
    let (carrier, mms) = (&process.carrier, &process.mms);
    let receipt_delay = process.worker.receipt_delay;
    let live = carrier.carrier.name().to_owned();
    let mut connections = vec![ConnectionPlan {
        name: live.clone(),
        kind: match carrier.carrier {
            CarrierKind::Simulated => Kind::Simulated,
            CarrierKind::Smpp => Kind::Smpp,
        },
        setup: carrier.setup(receipt_delay),
        throughput: 0,
    }];
    let mut routes = vec![RoutePlan {
        channel: Channel::Sms,
        prefix: String::new(),
        connections: vec![live.clone()],
    }];
    let mms_connection = match (mms.mms_carrier, carrier.carrier) {
        (Some(MmsCarrierKind::Mm7), _) => {
            let settings = mms.mm7().context("the MM7 carrier's settings")?;
            connections.push(ConnectionPlan {
                name: MmsCarrierKind::Mm7.name().into(),
                kind: Kind::Mm7,
                setup: CarrierSetup::Mm7(Box::new(settings)),
                throughput: 0,
            });
            Some(MmsCarrierKind::Mm7.name().to_owned())
        }
        (Some(MmsCarrierKind::Simulated), CarrierKind::Smpp) => {
            connections.push(ConnectionPlan {
                name: MmsCarrierKind::Simulated.name().into(),
                kind: Kind::Simulated,
                setup: CarrierSetup::Simulated { receipt_delay },
                throughput: 0,
            });
            Some(MmsCarrierKind::Simulated.name().to_owned())
        }
        (_, CarrierKind::Simulated) => Some(live.clone()),
        (None, CarrierKind::Smpp) => None,
    };
    if let Some(name) = mms_connection {
        routes.push(RoutePlan {
            channel: Channel::Mms,
            prefix: String::new(),
            connections: vec![name],
        });
    }
    Ok(Plan {
        connections,
        routes,
        test_shares: (carrier.carrier == CarrierKind::Simulated).then_some(live),
        failover_after,
    })
}

/// A file connection's carrier settings: what it writes over the single-carrier settings.
fn setup_of(
    process: &ProcessArgs,
    name: &str,
    e: &ConnectionEntry,
) -> anyhow::Result<CarrierSetup> {
    let password = std::env::var(password_env(name))
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| e.password.clone());
    Ok(match e.kind {
        Kind::Simulated => CarrierSetup::Simulated {
            receipt_delay: duration(
                name,
                "receipt_delay",
                &e.receipt_delay,
                process.worker.receipt_delay,
            )?,
        },
        Kind::Smpp => {
            let mut s = process.carrier.smpp_base();
            s.address = e.address.clone().ok_or_else(|| {
                anyhow!("connection {name:?}: an smpp connection needs an address (HOST:PORT)")
            })?;
            let set = |v: &Option<String>, into: &mut String| {
                if let Some(v) = v {
                    *into = v.clone();
                }
            };
            set(&e.system_id, &mut s.system_id);
            set(&e.system_type, &mut s.system_type);
            if let Some(p) = password {
                s.password = p;
            }
            s.tls = e.tls.unwrap_or(s.tls);
            s.tls_ca = e.tls_ca.clone().or(s.tls_ca);
            s.binds = e.binds.unwrap_or(s.binds);
            s.window = e.window.unwrap_or(s.window);
            s.throughput = e.session_throughput.unwrap_or(s.throughput);
            if !(1..=64).contains(&s.binds) || !(1..=1000).contains(&s.window) {
                bail!("connection {name:?}: binds is 1 to 64 and window 1 to 1000");
            }
            s.enquire_link = duration(name, "enquire_link", &e.enquire_link, s.enquire_link)?;
            s.response_timeout = duration(
                name,
                "response_timeout",
                &e.response_timeout,
                s.response_timeout,
            )?;
            s.reconnect_min = duration(name, "reconnect_min", &e.reconnect_min, s.reconnect_min)?;
            s.reconnect_max = duration(name, "reconnect_max", &e.reconnect_max, s.reconnect_max)?;
            s.throttle_pause =
                duration(name, "throttle_pause", &e.throttle_pause, s.throttle_pause)?;
            s.close_timeout = duration(name, "close_timeout", &e.close_timeout, s.close_timeout)?;
            s.source.ton = e.source_ton.unwrap_or(s.source.ton);
            s.source.npi = e.source_npi.unwrap_or(s.source.npi);
            s.destination.ton = e.dest_ton.unwrap_or(s.destination.ton);
            s.destination.npi = e.dest_npi.unwrap_or(s.destination.npi);
            CarrierSetup::Smpp(Box::new(s))
        }
        Kind::Mm7 => {
            let mut s = process.mms.mm7_base();
            s.url = e
                .url
                .clone()
                .ok_or_else(|| anyhow!("connection {name:?}: an mm7 connection needs a url"))?;
            let set = |v: &Option<String>, into: &mut String| {
                if let Some(v) = v {
                    *into = v.clone();
                }
            };
            set(&e.username, &mut s.username);
            set(&e.vasp_id, &mut s.vasp_id);
            set(&e.vas_id, &mut s.vas_id);
            set(&e.service_code, &mut s.service_code);
            set(&e.version, &mut s.version);
            if let Some(p) = password {
                s.password = p;
            }
            s.tls_ca = e.tls_ca.clone().or(s.tls_ca);
            s.timeout = duration(name, "timeout", &e.timeout, s.timeout)?;
            s.concurrency = e.concurrency.unwrap_or(s.concurrency);
            if !(1..=1000).contains(&s.concurrency) {
                bail!("connection {name:?}: concurrency is 1 to 1000");
            }
            CarrierSetup::Mm7(Box::new(s))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        process: ProcessArgs,
    }

    fn flags(args: &[&str]) -> ProcessArgs {
        let mut argv = vec!["agentmessage"];
        argv.extend_from_slice(args);
        Flags::parse_from(argv).process
    }

    /// The plan of a file holding `text`, with the default flags.
    fn plan_of(text: &str) -> anyhow::Result<Plan> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        plan(&flags(&[]), &read(&path)?)
    }

    const TWO: &str = "[connections.a]\nkind = \"smpp\"\naddress = \"a:2775\"\n\
                       [connections.b]\nkind = \"simulated\"\n";

    #[test]
    fn the_example_file_is_a_valid_plan() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/connections.example.toml");
        let plan = plan(&flags(&[]), &read(&example).unwrap()).unwrap();
        let names: Vec<&str> = plan.connections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["eu-smsc", "global-smsc", "mmsc"]);
        assert_eq!(
            plan.routes[0],
            RoutePlan {
                channel: Channel::Sms,
                prefix: "+44".into(),
                connections: vec!["eu-smsc".into(), "global-smsc".into()],
            }
        );
        assert_eq!(plan.carrier_name(), "global-smsc");
        assert!(plan.mms_supported());
        assert_eq!(plan.mm7_name().as_deref(), Some("mmsc"));
        assert_eq!(plan.connections[0].throughput, 100);
        let CarrierSetup::Smpp(eu) = &plan.connections[0].setup else {
            panic!("eu-smsc is an SMPP connection");
        };
        assert_eq!(
            (eu.binds, eu.window, eu.address.as_str()),
            (2, 10, "smsc-eu.example.net:2775")
        );
    }

    #[test]
    fn unwritten_connection_settings_take_the_single_carrier_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("{TWO}[[routes]]\nchannel = \"sms\"\nconnections = [\"a\", \"b\"]\n"),
        )
        .unwrap();
        let plan = plan(
            &flags(&[
                "--smpp-window",
                "7",
                "--smpp-binds",
                "4",
                "--failover-after",
                "2s",
            ]),
            &read(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(plan.failover_after, Duration::from_secs(2));
        let CarrierSetup::Smpp(a) = &plan.connections[0].setup else {
            panic!("a is SMPP");
        };
        // a writes neither: it takes the flags'.
        assert_eq!((a.binds, a.window), (4, 7));
    }

    #[test]
    fn mistakes_are_refused_naming_them() {
        let cases = [
            (
                format!("{TWO}[[routes]]\nchannel = \"sms\"\nprefix = \"+44\"\nconnections = [\"a\"]\n[[routes]]\nchannel = \"sms\"\nconnections = [\"c\"]\n"),
                "there is no connection \"c\"",
            ),
            (
                format!("{TWO}[[routes]]\nchannel = \"sms\"\nprefix = \"+44\"\nconnections = [\"a\", \"b\"]\n"),
                "no route takes sms to every recipient",
            ),
            (
                format!("{TWO}[[routes]]\nchannel = \"sms\"\nconnections = [\"a\"]\n"),
                "connection \"b\" is in no route",
            ),
            (
                format!("{TWO}[[routes]]\nchannel = \"sms\"\nconnections = [\"a\", \"b\"]\n[[routes]]\nchannel = \"mms\"\nconnections = [\"a\"]\n"),
                "cannot carry mms",
            ),
            (
                format!("{TWO}[[routes]]\nchannel = \"sms\"\nprefix = \"+4x\"\nconnections = [\"a\", \"b\"]\n"),
                "is not the start of a phone number",
            ),
            (
                format!("{TWO}[[routes]]\nchannel = \"sms\"\nconnections = [\"a\"]\n[[routes]]\nchannel = \"sms\"\nprefix = \"\"\nconnections = [\"b\"]\n"),
                "another route already takes sms",
            ),
            (
                "[connections.test]\nkind = \"simulated\"\n[[routes]]\nchannel = \"sms\"\nconnections = [\"test\"]\n".into(),
                "test mode's own",
            ),
            (
                "[connections.a]\nkind = \"smpp\"\n[[routes]]\nchannel = \"sms\"\nconnections = [\"a\"]\n".into(),
                "needs an address",
            ),
            (
                "[connections.a]\nkind = \"mm7\"\nurl = \"https://m\"\nwindow = 2\n".into(),
                "window is not a setting of a mm7 connection",
            ),
            (
                "[connections.a]\naddress = \"a:1\"\n".into(),
                "needs a kind",
            ),
            (
                "[[routes]]\nchannel = \"sms\"\nconnections = [\"a\"]\n".into(),
                "has no [connections]",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", plan_of(&text).unwrap_err());
            assert!(
                err.contains(expected),
                "{text}\n→ {err}\n(expected {expected:?})"
            );
        }
    }

    #[test]
    fn without_connections_the_flags_make_one() {
        let simulated = plan(&flags(&[]), &FileRouting::default()).unwrap();
        assert_eq!(simulated.connections.len(), 1);
        assert_eq!(simulated.carrier_name(), "simulated");
        assert_eq!(simulated.test_shares.as_deref(), Some("simulated"));
        assert!(simulated.mms_supported());
        let smpp = plan(
            &flags(&["--carrier", "smpp", "--smpp-address", "s:1"]),
            &FileRouting::default(),
        )
        .unwrap();
        let routes: Vec<(Channel, Vec<String>)> = smpp
            .routes
            .iter()
            .map(|r| (r.channel, r.connections.clone()))
            .collect();
        assert_eq!(routes, [(Channel::Sms, vec!["smpp".to_owned()])]);
        assert!(!smpp.mms_supported(), "SMPP alone carries no MMS");
        assert_eq!(smpp.test_shares, None);
    }
}
