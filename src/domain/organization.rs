//! Organizations, the numbers they own and their API keys.

use uuid::Uuid;

pub use entity::values::KeyMode;

use super::{PhoneNumber, ScopeSet, Timestamp};

/// An organization and its send rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub rate_per_second: u32,
    pub burst: u32,
}

/// A number an organization owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedNumber {
    pub id: Uuid,
    pub org_id: Uuid,
    pub phone_number: PhoneNumber,
    pub created_at: Timestamp,
}

/// An API key as it is stored: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: Option<String>,
    /// The first characters of the key, safe to show (`am_live_AbCd`).
    pub display_prefix: String,
    pub scopes: ScopeSet,
    pub mode: KeyMode,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}
