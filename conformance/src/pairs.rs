//! Pairs by name: every (operation, status) pair has a stable id — `messages_create/453`,
//! `server/414`, `x-webhooks/message.delivered` — and belongs to one profile.

use crate::matrix::SERVER_WIDE;

/// The operation of the webhook event rows (`x-webhooks/<event type>`).
pub const WEBHOOKS: &str = "x-webhooks";

/// A part of the contract a run can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    /// The seed's operation: `POST /v1/messages`.
    Core,
    /// Every documented pair.
    Full,
    /// Webhook endpoints, their deliveries and the events themselves.
    Webhooks,
    /// The carrier's callbacks (they need the carrier's secret).
    Carrier,
    /// The test-mode operations (they need a test key).
    TestMode,
}

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::Core,
        Profile::Full,
        Profile::Webhooks,
        Profile::Carrier,
        Profile::TestMode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Core => "core",
            Profile::Full => "full",
            Profile::Webhooks => "webhooks",
            Profile::Carrier => "carrier",
            Profile::TestMode => "test-mode",
        }
    }

    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The profile a pair of `op` belongs to (`Full` holds every pair besides).
    pub fn of(op: &str) -> Profile {
        if op == "messages_create" {
            Profile::Core
        } else if op.starts_with("webhook_") || op.starts_with(WEBHOOKS) {
            Profile::Webhooks
        } else if op.starts_with("carrier_") {
            Profile::Carrier
        } else if op.starts_with("test_helpers_") {
            Profile::TestMode
        } else {
            Profile::Full
        }
    }

    /// Whether a run of this profile holds `op`'s pairs.
    pub fn includes(self, op: &str) -> bool {
        self == Profile::Full || Profile::of(op) == self
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The row of one webhook event type.
pub fn webhook_row(event: &str) -> String {
    format!("{WEBHOOKS}/{event}")
}

/// A pair's stable id.
pub fn id(op: &str, status: u16) -> String {
    if op == SERVER_WIDE {
        format!("server/{status}")
    } else if op.starts_with(WEBHOOKS) {
        op.to_owned()
    } else {
        format!("{op}/{status}")
    }
}

/// The (operation, status) key of an id (`None` when it is not one).
pub fn parse_id(id: &str) -> Option<(String, u16)> {
    if id.starts_with(&format!("{WEBHOOKS}/")) {
        return Some((id.to_owned(), 200));
    }
    let (op, status) = id.rsplit_once('/')?;
    let status = status.parse().ok()?;
    let op = if op == "server" { SERVER_WIDE } else { op };
    Some((op.to_owned(), status))
}

/// What proving a pair takes, as `agentmessage-conformance list` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provable {
    /// Any run with the suite's defaults proves it.
    FromOutside,
    /// A run proves it when given what is named (an option, a kind of key, a configuration).
    Needs(String),
    /// No request from outside can produce it; why, and how the project proves it instead.
    Never(String),
}

impl Provable {
    pub fn describe(&self) -> String {
        match self {
            Provable::FromOutside => "from outside".into(),
            Provable::Needs(what) => format!("needs {what}"),
            Provable::Never(why) => format!("never from outside: {why}"),
        }
    }
}

/// What proving (`op`, `status`) takes.
pub fn provable(spec: &crate::Spec, op: &str, status: u16) -> Provable {
    let needs = |what: &str| Provable::Needs(what.to_owned());
    if status >= 500 && status != 501 {
        return Provable::Never(
            "only a server fault (a database gone, a query that breaks) produces it; the project \
             proves it by fault injection"
                .into(),
        );
    }
    if op == SERVER_WIDE {
        return match status {
            408 => needs("the deployment's body-read timeout (--body-timeout)"),
            _ => Provable::FromOutside,
        };
    }
    if let Some(event) = op.strip_prefix(&format!("{WEBHOOKS}/")) {
        return match event {
            "message.undelivered" | "message.failed" => needs(
                "a receiver the deployment reaches (--webhook-listen), and a carrier that ends \
                 the test-number table's recipients 555-0145 and 555-0155 so (the simulated one \
                 does; a real network decides for itself)",
            ),
            _ => needs("a receiver the deployment reaches (--webhook-listen)"),
        };
    }
    let operation = spec.operation(op);
    let test_mode_only = operation.is_some_and(|o| o.test_mode_only);
    let carrier = operation
        .and_then(|o| o.security_scheme.as_deref())
        .is_some_and(|s| s == crate::ctx::CARRIER_SCHEME);
    let mm7 = operation
        .and_then(|o| o.security_scheme.as_deref())
        .is_some_and(|s| s == crate::ctx::MM7_SCHEME);
    match (op, status) {
        (_, 401) | (_, 403) | (_, 413) => Provable::FromOutside,
        _ if mm7 => needs("the MMS centre's credentials (--mm7-credentials)"),
        ("messages_media_view", 200) => needs(
            "the MMS centre's credentials (--mm7-credentials) and a live key: an inbound MMS \
             (live traffic) whose media the suite reads back",
        ),
        (_, 404) if test_mode_only => needs("a live key (a test-mode operation answers it 404)"),
        _ if test_mode_only => needs("a test key (am_test_…)"),
        _ if carrier => needs("the carrier's secret (--carrier-secret)"),
        (_, 501) => needs(
            "a deployment without webhook signing (no AGENTMESSAGE_SECRET_KEY); with it, every \
             other webhook endpoint pair",
        ),
        ("consents_update", 409) => needs(
            "the carrier's secret (--carrier-secret) with a live key, or a test key: only the \
             recipient's own STOP locks a consent",
        ),
        (_, 429) => Provable::Needs(
            "a rate limit the suite reaches within --rate-limit-budget requests".into(),
        ),
        _ => Provable::FromOutside,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_pairs_and_read_back() {
        for (op, status, id) in [
            ("messages_create", 453, "messages_create/453"),
            (SERVER_WIDE, 414, "server/414"),
            (
                "x-webhooks/message.delivered",
                200,
                "x-webhooks/message.delivered",
            ),
        ] {
            assert_eq!(super::id(op, status), id);
            assert_eq!(parse_id(id), Some((op.to_owned(), status)));
        }
        assert_eq!(parse_id("messages_create"), None);
        assert_eq!(parse_id("messages_create/abc"), None);
    }

    #[test]
    fn every_pair_is_in_its_profile_and_in_full() {
        assert_eq!(Profile::of("messages_create"), Profile::Core);
        assert_eq!(Profile::of("webhook_deliveries_retry"), Profile::Webhooks);
        assert_eq!(Profile::of("x-webhooks/consent.updated"), Profile::Webhooks);
        assert_eq!(Profile::of("carrier_inbound_create"), Profile::Carrier);
        assert_eq!(
            Profile::of("test_helpers_inbound_create"),
            Profile::TestMode
        );
        assert_eq!(Profile::of("consents_view"), Profile::Full);
        assert!(Profile::Full.includes("carrier_inbound_create"));
        assert!(!Profile::Core.includes("consents_view"));
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.name()), Some(p));
        }
    }
}
