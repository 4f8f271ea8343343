//! Webhook primitives, per the Standard Webhooks specification: signing secrets
//! (`whsec_` + base64 of 32 random bytes), the `v1` signature of `id.timestamp.body`, secrets
//! sealed at rest under the operator's key (XChaCha20-Poly1305, with the key's id), and the
//! destinations a webhook may not reach (loopback, private, link-local, metadata addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng},
    XChaCha20Poly1305, XNonce,
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` entry of one secret: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` keyed with the secret's bytes. `None` for a malformed secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The whole `webhook-signature` header: one entry per secret, space-separated (during a
/// rotation the old and the new secret both sign).
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> Option<String> {
    let entries: Option<Vec<String>> = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect();
    entries.map(|e| e.join(" "))
}

/// The operator's key for sealing secrets at rest, with its id (so that a rotated key can still
/// open what the old one sealed).
pub struct SealingKey {
    pub id: String,
    cipher: XChaCha20Poly1305,
}

/// Why a sealed secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unseal {
    #[error("sealed under key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the sealed value is damaged")]
    Damaged,
}

impl SealingKey {
    /// A key from the operator's setting: 32 bytes, base64. Its id is the first 8 hex digits of
    /// the SHA-256 of the key (it names the key without revealing it).
    pub fn from_base64(text: &str) -> Result<SealingKey, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("{} bytes; it must be 32", b.len()))?;
        use sha2::Digest;
        let id = hex::encode(&Sha256::digest(key)[..4]);
        Ok(SealingKey {
            id,
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// `v1.{key id}.{base64 of nonce and ciphertext}`.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 seals any length this holds");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("v1.{}.{}", self.id, STANDARD.encode(bytes))
    }

    pub fn open(&self, sealed: &str) -> Result<String, Unseal> {
        let mut fields = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(data)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(Unseal::Damaged);
        };
        if id != self.id {
            return Err(Unseal::UnknownKey(id.to_owned()));
        }
        let bytes = STANDARD.decode(data).map_err(|_| Unseal::Damaged)?;
        if bytes.len() < 24 {
            return Err(Unseal::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| Unseal::Damaged)?;
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| Unseal::Damaged)?;
        String::from_utf8(plain).map_err(|_| Unseal::Damaged)
    }
}

/// Why an address may not receive webhooks (unless the operator allows private destinations).
///
/// Refused: loopback, private (RFC 1918, shared 100.64/10, IPv6 ULA and site-local), link-local
/// and metadata, non-unicast, and the IANA special-purpose blocks that are not the public
/// internet (IETF assignments, documentation, benchmarking, reserved) — and an IPv6 address
/// that carries an IPv4 address (mapped, translated, NAT64, 6to4, Teredo) whenever the IPv4
/// address it carries would be refused, since the network may deliver to that address.
pub fn forbidden_destination(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// IPv4 blocks refused, beside those `std` names: `(first address, prefix length, why)`.
const SPECIAL_V4: [([u8; 4], u8, &str); 8] = [
    ([0, 0, 0, 0], 8, "not a unicast address"),
    ([100, 64, 0, 0], 10, "a private address"),
    ([192, 0, 0, 0], 24, "an IETF protocol assignment"),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([240, 0, 0, 0], 4, "a reserved address"),
];

fn in_v4_block(ip: Ipv4Addr, first: [u8; 4], prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(first)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local or metadata address")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        Some("not a unicast address")
    } else {
        SPECIAL_V4
            .iter()
            .find(|(first, prefix, _)| in_v4_block(ip, *first, *prefix))
            .map(|(_, _, why)| *why)
    }
}

/// The IPv4 addresses an IPv6 address carries and the network may deliver to: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), NAT64 (`64:ff9b::/96`), 6to4
/// (`2002::/16`) and Teredo (`2001::/32`: its server and its client).
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(mapped) = ip.to_ipv4_mapped() {
        vec![mapped]
    } else if s[..6] == [0, 0, 0, 0, 0xffff, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // IPv4-translated, NAT64.
        vec![v4(s[6], s[7])]
    } else if s[0] == 0x2002 {
        vec![v4(s[1], s[2])]
    } else if s[0] == 0x2001 && s[1] == 0 {
        vec![v4(s[2], s[3]), v4(!s[6], !s[7])]
    } else {
        Vec::new()
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let first = s[0];
    if let Some(why) = embedded_v4(ip).into_iter().find_map(forbidden_v4) {
        return Some(why);
    }
    if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if first & 0xffc0 == 0xfec0 {
        Some("a site-local address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast address")
    } else if s[..6] == [0, 0, 0, 0, 0, 0] {
        Some("an IPv4-compatible address")
    } else if s[..3] == [0x64, 0xff9b, 1] {
        // RFC 8215: NAT64 prefixes of a local network.
        Some("a local NAT64 address")
    } else if s[..4] == [0x100, 0, 0, 0] {
        Some("a discard-only address")
    } else if s[..2] == [0x2001, 0xdb8] {
        Some("a documentation address")
    } else if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        Some("a metadata address")
    } else {
        None
    }
}

pub use entity::values::{DeliveryState, WebhookEventType};

/// The event types an endpoint can subscribe to: every type but `webhook.test`, which is sent
/// to one endpoint when asked for.
pub const SUBSCRIBABLE: [WebhookEventType; 7] = [
    WebhookEventType::MessageSent,
    WebhookEventType::MessageDelivered,
    WebhookEventType::MessageUndelivered,
    WebhookEventType::MessageFailed,
    WebhookEventType::MessageReceived,
    WebhookEventType::MessageCanceled,
    WebhookEventType::ConsentUpdated,
];

/// The operator's sealing keys: the first seals new secrets, every one opens (so that secrets
/// sealed before a key change still sign).
pub struct SealingKeys(Vec<SealingKey>);

impl SealingKeys {
    /// Keys from the operator's setting: one or more base64 keys, comma-separated, newest first.
    pub fn from_setting(text: &str) -> Result<SealingKeys, String> {
        let keys = text
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(SealingKey::from_base64)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err("no key given".into());
        }
        Ok(SealingKeys(keys))
    }

    pub fn seal(&self, plaintext: &str) -> String {
        self.0[0].seal(plaintext)
    }

    pub fn open(&self, sealed: &str) -> Result<String, Unseal> {
        let id = sealed.split('.').nth(1).unwrap_or_default();
        match self.0.iter().find(|k| k.id == id) {
            Some(key) => key.open(sealed),
            None => Err(Unseal::UnknownKey(id.to_owned())),
        }
    }
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.0.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("SealingKeys").field("ids", &ids).finish()
    }
}

/// A registered webhook endpoint (its secret is never part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEventType>,
    pub enabled: bool,
    /// Why the server disabled it (the endpoint answered 410 Gone), if it did.
    pub disabled_reason: Option<String>,
    pub mode: super::organization::KeyMode,
    pub created_at: super::Timestamp,
    pub updated_at: super::Timestamp,
}

/// How many secrets rotated away may sign beside an endpoint's current one: with the current
/// secret, at most four sign a delivery. A rotation past it is refused until the oldest one's
/// overlap ends.
pub const MOST_ROTATED_SIGNING: u64 = 3;

/// An endpoint with its signing secret, as shown once (at creation and at rotation).
#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// One event's delivery to one endpoint, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: uuid::Uuid,
    pub event_id: uuid::Uuid,
    pub event_type: WebhookEventType,
    pub endpoint_id: uuid::Uuid,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<super::Timestamp>,
    pub created_at: super::Timestamp,
    pub delivered_at: Option<super::Timestamp>,
}

/// A delivery leased for an attempt, with what the attempt needs (secrets opened).
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    /// The endpoint's organization (its share of the dispatcher's attempts).
    pub org_id: uuid::Uuid,
    pub url: String,
    /// The secrets that sign: the current one, and those rotated away that still sign.
    pub secrets: Vec<String>,
    pub event_id: uuid::Uuid,
    pub payload: String,
    pub attempts: u32,
    pub schedule_base: u32,
    /// Why no attempt can be made from this server (its secret cannot be opened), if so.
    pub fault: Option<String>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// 2xx.
    Delivered { status: u16 },
    /// Another status, a timeout or a refused connection: the schedule decides what next.
    Refused {
        status: Option<u16>,
        error: Option<String>,
        retry_after: Option<std::time::Duration>,
    },
    /// 410 Gone: the endpoint is disabled and the delivery failed.
    Gone,
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub events: Option<Vec<WebhookEventType>>,
    pub enabled: Option<bool>,
}

/// One attempt's outcome to record.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    pub org_id: uuid::Uuid,
    pub result: AttemptResult,
    /// For a refusal: when to try again, or `None` when the schedule is spent (failed).
    pub retry_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The event a status change reports, if it reports one.
pub fn event_for_status(status: super::message::MessageStatus) -> Option<WebhookEventType> {
    use super::message::MessageStatus as S;
    match status {
        S::Sent => Some(WebhookEventType::MessageSent),
        S::Delivered => Some(WebhookEventType::MessageDelivered),
        S::Undelivered => Some(WebhookEventType::MessageUndelivered),
        S::Failed => Some(WebhookEventType::MessageFailed),
        S::Received => Some(WebhookEventType::MessageReceived),
        S::Canceled => Some(WebhookEventType::MessageCanceled),
        S::Scheduled | S::Queued | S::Sending => None,
    }
}

/// Renders a resource exactly as the API shows it (the `data` of an event). The API layer
/// provides it; the store calls it when it writes an event.
pub trait RenderResource: Send + Sync {
    fn message(&self, message: &super::message::Message) -> serde_json::Value;
    /// A consent change: `state.latest` is the record just made.
    fn consent(&self, state: &super::consent::ConsentState) -> serde_json::Value;
}

/// The body sent to endpoints: `{"id", "type", "created_at", "data"}`, and for message events
/// the message's event `sequence`.
pub fn payload(
    id: uuid::Uuid,
    kind: WebhookEventType,
    created_at: super::Timestamp,
    data: serde_json::Value,
    sequence: Option<i64>,
) -> String {
    let mut body = serde_json::Map::new();
    body.insert("id".into(), id.to_string().into());
    body.insert("type".into(), kind.as_str().into());
    body.insert("created_at".into(), created_at.to_wire().into());
    body.insert("data".into(), data);
    if let Some(sequence) = sequence {
        body.insert("sequence".into(), sequence.into());
    }
    serde_json::Value::Object(body).to_string()
}

/// The Standard Webhooks retry schedule: the waits after the first, second, … failed attempt.
pub const DEFAULT_SCHEDULE: [std::time::Duration; 9] = {
    use std::time::Duration as D;
    [
        D::from_secs(5),
        D::from_secs(5 * 60),
        D::from_secs(30 * 60),
        D::from_secs(2 * 3600),
        D::from_secs(5 * 3600),
        D::from_secs(10 * 3600),
        D::from_secs(14 * 3600),
        D::from_secs(20 * 3600),
        D::from_secs(24 * 3600),
    ]
};

/// The longest `Retry-After` an endpoint may ask for; longer asks wait this long.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// When to try again after `failures` failed attempts in a row (counted from the schedule's
/// start), or `None` when the schedule is spent. The endpoint's `Retry-After`, when it gave one,
/// replaces the schedule's wait, but never below `floor` (a receiver answering `Retry-After: 0`
/// cannot spend the schedule in seconds) nor above [`MAX_RETRY_AFTER`].
pub fn next_wait(
    schedule: &[std::time::Duration],
    failures: u32,
    retry_after: Option<std::time::Duration>,
    floor: std::time::Duration,
) -> Option<std::time::Duration> {
    let index = usize::try_from(failures.checked_sub(1)?).ok()?;
    let planned = *schedule.get(index)?;
    let floor = floor.min(MAX_RETRY_AFTER);
    Some(retry_after.map_or(planned, |asked| asked.clamp(floor, MAX_RETRY_AFTER)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_after_its_last_wait() {
        const FLOOR: std::time::Duration = std::time::Duration::from_secs(5);
        let s = &DEFAULT_SCHEDULE;
        // A `Retry-After` below the floor waits the floor.
        for asked in [0, 1, 4] {
            assert_eq!(
                next_wait(s, 3, Some(std::time::Duration::from_secs(asked)), FLOOR),
                Some(FLOOR)
            );
        }
        assert_eq!(
            next_wait(s, 1, None, FLOOR),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(
            next_wait(s, 9, None, FLOOR),
            Some(std::time::Duration::from_secs(24 * 3600))
        );
        assert_eq!(next_wait(s, 10, None, FLOOR), None);
        assert_eq!(next_wait(s, 0, None, FLOOR), None);
        let asked = std::time::Duration::from_secs(90);
        assert_eq!(next_wait(s, 2, Some(asked), FLOOR), Some(asked));
        assert_eq!(
            next_wait(
                s,
                2,
                Some(std::time::Duration::from_secs(9e6 as u64)),
                FLOOR
            ),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn the_specifications_example_signature() {
        // The Standard Webhooks specification's test vector.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("whsec_not base64!", "id", 1, "x"), None);
    }

    #[test]
    fn secrets_have_the_documented_form() {
        let secret = new_secret();
        let key = STANDARD
            .decode(secret.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(new_secret(), secret);
    }

    #[test]
    fn sealed_secrets_open_only_under_their_key() {
        let key = SealingKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let other = SealingKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        let sealed = key.seal("whsec_abc");
        assert!(!sealed.contains("abc"));
        assert_ne!(key.seal("whsec_abc"), sealed, "a fresh nonce each time");
        assert_eq!(key.open(&sealed).unwrap(), "whsec_abc");
        assert_eq!(other.open(&sealed), Err(Unseal::UnknownKey(key.id.clone())));
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(key.open(&damaged), Err(Unseal::Damaged));
        assert!(SealingKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn private_and_metadata_destinations_are_refused() {
        for refused in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "fd00:ec2::254",
            // IANA special-purpose blocks that are not the public internet.
            "192.0.0.8",
            "192.0.2.10",
            "198.18.0.1",
            "198.19.255.254",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "255.255.255.255",
            "0.1.2.3",
            // IPv6 forms that carry a refused IPv4 address.
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:0:127.0.0.1",
            "::ffff:0:192.168.0.1",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:0:0a00:0001::1",
            // Other IPv6 blocks.
            "fec0::1",
            "64:ff9b:1::1",
            "100::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(forbidden_destination(ip).is_some(), "{refused}");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "198.20.0.1",
            "192.0.3.1",
            "2606:2800:220:1:248:1893:25c8:1946",
            // Embedding a public address is as public as that address.
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert_eq!(forbidden_destination(ip), None, "{allowed}");
        }
    }
}
