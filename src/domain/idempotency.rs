//! `Idempotency-Key` (the IETF httpapi draft's semantics): the first request with a key runs,
//! and its outcome — a success, or an answer the operation's own rules gave (422, 453) — is
//! recorded with the resource it made; a retry with the same key and body gets that answer again;
//! the same key with another body is refused; a request still running makes a retry wait.

use sha2::{Digest, Sha256};

/// How long a running request may hold its key before a retry takes the key over (its process
/// died without recording an outcome).
pub const TAKEOVER_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// What the request is, for comparing a retry with the first: SHA-256 (hex) of the body as
/// received, in RFC 8785 canonical JSON (key order and white space do not count; defaults are
/// not applied).
pub fn fingerprint(body: &serde_json::Value) -> String {
    let canonical = serde_jcs::to_string(body).unwrap_or_else(|_| body.to_string());
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The start of a recorded body stored sealed under the operator's key (an answer that holds a
/// secret: a new webhook endpoint's signing secret); the rest is the sealed text.
pub const SEALED_PREFIX: &str = "sealed:";

/// A key held by the request that runs the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub record: i64,
    /// Tells this request apart from one that took the key over later.
    pub token: String,
}

/// A recorded answer, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub status: u16,
    pub body: String,
    /// The `X-Request-Id` of the request that gave it.
    pub request_id: String,
}

/// What a key says about a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Run the operation; record its outcome under the hold.
    Run(Hold),
    /// Answer with what was recorded.
    Replay(Recorded),
    /// The same key and body are still running (for this many more seconds at most).
    Running { retry_after_secs: u64 },
    /// The key was used with another body.
    Reused,
}

/// The outcome to record in the transaction that stores the resource: its status and how the
/// resource renders as the answer's body.
pub struct Completion<T> {
    pub hold: Hold,
    pub status: u16,
    pub render: std::sync::Arc<dyn Fn(&T) -> String + Send + Sync>,
}

impl<T> Clone for Completion<T> {
    fn clone(&self) -> Self {
        Completion {
            hold: self.hold.clone(),
            status: self.status,
            render: self.render.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_white_space_do_not_change_the_fingerprint() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"to": "+1", "from":"+2", "n": 1.0, "t": "é"}"#).unwrap();
        let b = json!({"t": "é", "n": 1, "from": "+2", "to": "+1"});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&json!({"to": "+1", "from": "+2"}))
        );
        assert_eq!(fingerprint(&a).len(), 64);
    }
}
