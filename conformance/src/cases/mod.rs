//! The cases, one file per resource: each sends requests through the public API and states which
//! (operation, status) pair it proves. Adding an operation's cases means adding a file here and
//! its area to [`AREAS`].

pub mod api_keys;
pub mod carrier;
pub mod consents;
pub mod generic;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod lookups;
pub mod messages;
pub mod mm7;
pub mod rate_limit;
pub mod server_wide;
pub mod setup;
pub mod test_helpers;
pub mod webhooks;

use crate::{ctx::Ctx, matrix::SERVER_WIDE, pairs::WEBHOOKS, properties};

/// One area of the suite: the cases that prove a group of pairs.
pub struct Area {
    /// What the progress line says while it runs.
    pub name: &'static str,
    /// The operations whose pairs it decides (a prefix matches; `*` is every operation): a run
    /// limited to a profile skips an area none of whose pairs it holds.
    pub decides: &'static [&'static str],
    pub prove: fn(&mut Ctx),
}

impl Area {
    /// Whether the area decides a pair of `op`.
    pub fn decides(&self, op: &str) -> bool {
        self.decides.iter().any(|d| *d == "*" || op.starts_with(d))
    }
}

/// Every area, in the order a run proves them.
pub const AREAS: &[Area] = &[
    Area {
        name: "the webhook listener",
        decides: &["webhook_endpoints_create", WEBHOOKS],
        prove: webhooks::begin,
    },
    Area {
        name: "every operation's generic answers (401, 403, 413, 415, …)",
        decides: &["*"],
        prove: generic::cases,
    },
    Area {
        name: "server-wide answers (404, 405, 408, 414, 431)",
        decides: &[SERVER_WIDE],
        prove: server_wide::cases,
    },
    Area {
        name: "health",
        decides: &["health_view"],
        prove: health::cases,
    },
    Area {
        name: "consents",
        decides: &["consents_"],
        prove: consents::cases,
    },
    Area {
        name: "lookups",
        decides: &["lookups_"],
        prove: lookups::cases,
    },
    Area {
        name: "messages",
        decides: &["messages_"],
        prove: messages::cases,
    },
    Area {
        name: "Idempotency-Key",
        decides: &["messages_create", "lookups_create"],
        prove: idempotency::cases,
    },
    Area {
        name: "the carrier's callbacks",
        decides: &["carrier_", "consents_update"],
        prove: carrier::cases,
    },
    Area {
        name: "MMS over MM7",
        decides: &["carrier_mm7_create", "messages_media_view"],
        prove: mm7::cases,
    },
    Area {
        name: "the test helpers",
        decides: &["test_helpers_", "consents_update"],
        prove: test_helpers::cases,
    },
    Area {
        name: "API keys",
        decides: &["api_keys_list"],
        prove: api_keys::cases,
    },
    Area {
        name: "properties of the request bodies",
        decides: &["messages_create", "consents_update"],
        prove: properties::run,
    },
    Area {
        name: "properties of the parameters",
        decides: &["*"],
        prove: properties::parameters,
    },
    Area {
        name: "webhook endpoints and deliveries",
        decides: &["webhook_"],
        prove: webhooks::cases,
    },
    Area {
        name: "the API key limit",
        decides: &["api_keys_create"],
        prove: api_keys::key_limit,
    },
    Area {
        name: "the rate limit (429)",
        decides: &["messages_create", "lookups_create"],
        prove: rate_limit::cases,
    },
    Area {
        name: "the events the listener received",
        decides: &[WEBHOOKS],
        prove: webhooks::verify_listener,
    },
];
