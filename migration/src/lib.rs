//! AgentMessage's database migrations, one file per change (`mYYYYMMDD_NNNNNN_<verb>_<table>`).
//!
//! They run when the server starts and with `agentmessage migrate`; the caller guards them so that
//! several processes starting at once apply each migration exactly once.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_organizations;
mod m20261127_000002_create_api_keys;
mod m20261127_000003_create_phone_numbers;
mod m20261127_000004_create_consents;
mod m20261127_000005_create_lookups;
mod m20261127_000006_create_messages;
mod m20261127_000007_alter_messages_add_delivery;
mod m20261127_000008_create_message_events;
mod m20261127_000009_create_carrier_receipts;
mod m20261127_000010_alter_tenant_tables_add_mode;
mod m20261127_000011_alter_messages_scope_carrier_ids;
mod m20261127_000012_alter_message_events_add_number;
mod m20261128_000013_create_message_parts;
mod m20261128_000014_create_idempotency_records;
mod m20261128_000015_create_webhooks;
mod m20261128_000016_create_key_revision;
mod m20261128_000017_create_rate_buckets;
mod m20261128_000018_queue_order_index;
mod m20261206_000019_alter_messages_inbound_redelivery;
mod m20261206_000020_unmatched_receipts_index;
mod m20261206_000021_webhook_rotated_secrets;
mod m20261206_000022_inbound_parts;
mod m20261206_000023_messages_delivered_at;
mod m20261206_000024_message_events_note;
mod m20261206_000025_message_media;
mod m20261206_000026_messages_schedule;
mod m20261206_000027_connections;

/// Every migration in the order it applies.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_organizations::Migration),
            Box::new(m20261127_000002_create_api_keys::Migration),
            Box::new(m20261127_000003_create_phone_numbers::Migration),
            Box::new(m20261127_000004_create_consents::Migration),
            Box::new(m20261127_000005_create_lookups::Migration),
            Box::new(m20261127_000006_create_messages::Migration),
            Box::new(m20261127_000007_alter_messages_add_delivery::Migration),
            Box::new(m20261127_000008_create_message_events::Migration),
            Box::new(m20261127_000009_create_carrier_receipts::Migration),
            Box::new(m20261127_000010_alter_tenant_tables_add_mode::Migration),
            Box::new(m20261127_000011_alter_messages_scope_carrier_ids::Migration),
            Box::new(m20261127_000012_alter_message_events_add_number::Migration),
            Box::new(m20261128_000013_create_message_parts::Migration),
            Box::new(m20261128_000014_create_idempotency_records::Migration),
            Box::new(m20261128_000015_create_webhooks::Migration),
            Box::new(m20261128_000016_create_key_revision::Migration),
            Box::new(m20261128_000017_create_rate_buckets::Migration),
            Box::new(m20261128_000018_queue_order_index::Migration),
            Box::new(m20261206_000019_alter_messages_inbound_redelivery::Migration),
            Box::new(m20261206_000020_unmatched_receipts_index::Migration),
            Box::new(m20261206_000021_webhook_rotated_secrets::Migration),
            Box::new(m20261206_000022_inbound_parts::Migration),
            Box::new(m20261206_000023_messages_delivered_at::Migration),
            Box::new(m20261206_000024_message_events_note::Migration),
            Box::new(m20261206_000025_message_media::Migration),
            Box::new(m20261206_000026_messages_schedule::Migration),
            Box::new(m20261206_000027_connections::Migration),
        ]
    }
}

/// Column and table names shared by several migrations.
#[derive(DeriveIden)]
pub(crate) enum Organizations {
    Table,
    Id,
}
