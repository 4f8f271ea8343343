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
pub fn forbidden_destination(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local or metadata address")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 {
        Some("not a unicast address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast address")
    } else if ip.segments()[..6] == [0, 0, 0, 0, 0, 0] {
        Some("an IPv4-compatible address")
    } else if ip.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        Some("a metadata address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(forbidden_destination(ip).is_some(), "{refused}");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1:248:1893:25c8:1946",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert_eq!(forbidden_destination(ip), None, "{allowed}");
        }
    }
}
