//! AgentMessage's database rows as sea-orm entities, one file per table.
//!
//! These types never reach the wire: the API layer has its own view types, and only
//! `agentmessage::store` reads or writes these rows.

pub mod api_key;
pub mod carrier_receipt;
pub mod consent;
pub mod idempotency_record;
pub mod inbound_part;
pub mod lookup;
pub mod message;
pub mod message_event;
pub mod message_media;
pub mod message_part;
pub mod organization;
pub mod phone_number;
pub mod values;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;
pub mod webhook_rotated_secret;
