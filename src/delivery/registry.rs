//! The carriers a deployment can run, in one place: each kind's capabilities (known before one
//! starts) and how its live carrier is built. Adding a carrier: its file in `delivery`, a
//! variant here, and its line in each match.

use std::sync::Arc;

use super::{
    carrier::Capabilities, mm7, simulated, smpp, Carrier, Mm7Carrier, SimulatedCarrier, SmppCarrier,
};
use crate::service::Services;

/// Which carrier the live traffic goes to.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierKind {
    /// Outcomes by test number; no phone is reached.
    Simulated,
    /// An SMSC over SMPP 3.4.
    Smpp,
}

/// Which carrier live MMS go to, when not the SMS carrier.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmsCarrierKind {
    /// Outcomes by test number, the media fetched and checked; no phone is reached.
    Simulated,
    /// An MMS centre over MM7 (SOAP over HTTP).
    Mm7,
}

impl MmsCarrierKind {
    /// The name its receipts and carrier ids are stored under.
    pub fn name(self) -> &'static str {
        match self {
            MmsCarrierKind::Simulated => "simulated",
            MmsCarrierKind::Mm7 => "mm7",
        }
    }

    /// What it carries.
    pub fn capabilities(self) -> Capabilities {
        match self {
            MmsCarrierKind::Simulated => simulated::CAPABILITIES,
            MmsCarrierKind::Mm7 => mm7::CAPABILITIES,
        }
    }
}

/// How each kind of carrier is set up.
#[derive(Debug)]
pub enum CarrierSetup {
    Simulated { receipt_delay: std::time::Duration },
    Smpp(Box<smpp::SmppSettings>),
    Mm7(Box<mm7::Mm7Settings>),
}

impl CarrierKind {
    /// The name its receipts and carrier ids are stored under.
    pub fn name(self) -> &'static str {
        match self {
            CarrierKind::Simulated => "simulated",
            CarrierKind::Smpp => "smpp",
        }
    }

    /// What it carries.
    pub fn capabilities(self) -> Capabilities {
        match self {
            CarrierKind::Simulated => simulated::CAPABILITIES,
            CarrierKind::Smpp => smpp::CAPABILITIES,
        }
    }
}

/// Starts the live carrier `setup` describes, under `name`; fails when its settings cannot
/// be used.
pub fn start(
    services: Services,
    name: &str,
    setup: CarrierSetup,
) -> anyhow::Result<Arc<dyn Carrier>> {
    Ok(match setup {
        CarrierSetup::Simulated { receipt_delay } => {
            Arc::new(SimulatedCarrier::new(services, receipt_delay).named(name))
        }
        CarrierSetup::Smpp(settings) => {
            tracing::info!(?settings, "SMPP carrier starting");
            SmppCarrier::start(services, name, *settings)
        }
        CarrierSetup::Mm7(settings) => {
            tracing::info!(?settings, "MM7 carrier starting");
            Arc::new(Mm7Carrier::new(services, name, *settings)?)
        }
    })
}

/// What a kind of carrier carries (see [`CarrierKind::capabilities`]).
pub fn capabilities(kind: CarrierKind) -> Capabilities {
    kind.capabilities()
}
