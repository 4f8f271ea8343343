//! Receipts that matched no message are kept for a while and then deleted by the worker's sweep:
//! a partial index on when they arrived lets the sweep find those past their retention without
//! reading the others.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Both backends share partial index syntax.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_carrier_receipts_unmatched \
                 ON carrier_receipts (received_at, id) WHERE message_id IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_carrier_receipts_unmatched")
            .await?;
        Ok(())
    }
}
