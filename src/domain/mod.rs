//! Plain domain types with no I/O. Values are parsed once at the boundary and trusted inside.

pub mod consent;
pub mod idempotency;
pub mod keywords;
pub mod lifecycle;
pub mod listing;
pub mod lookup;
pub mod media;
pub mod message;
pub mod organization;
pub mod phone;
pub mod rules;
pub mod scope;
pub mod submission;
pub mod test_numbers;
pub mod text;
pub mod time;
pub mod transition;
pub mod webhooks;

pub use phone::PhoneNumber;
pub use scope::{Scope, ScopeSet};
pub use time::Timestamp;
