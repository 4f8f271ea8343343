//! An inbound message is a redelivery only when everything about it is the same: organization
//! and mode, receiving number, sender, carrier, carrier id and text. A carrier id alone does not
//! say so (carriers reuse ids, and a STOP reusing the id of an earlier "hello" must be acted on),
//! so the unique index on (receiving number, carrier, carrier id) becomes a plain one that finds
//! the candidates; the store compares the rest in the transaction that writes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Both backends share partial index syntax.
const CANDIDATES: &str = "CREATE INDEX idx_messages_inbound_carrier_id \
     ON messages (to_number, carrier, carrier_message_id) WHERE direction = 'inbound'";
const UNIQUE: &str = "CREATE UNIQUE INDEX idx_messages_inbound_dedup \
     ON messages (to_number, carrier, carrier_message_id) WHERE direction = 'inbound'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(CANDIDATES).await?;
        db.execute_unprepared("DROP INDEX idx_messages_inbound_dedup")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(UNIQUE).await?;
        db.execute_unprepared("DROP INDEX idx_messages_inbound_carrier_id")
            .await?;
        Ok(())
    }
}
