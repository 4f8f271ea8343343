//! Carrier message ids are not unique: carriers number inbound and outbound messages
//! independently and reuse ids over time. Outbound ids get a plain index (receipts look them
//! up); an inbound message is the same delivery again only for the same receiving number,
//! carrier and id, which a partial unique index enforces.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Carrier,
    CarrierMessageId,
}

/// One statement on both backends: SQLite and PostgreSQL share partial index syntax.
const INBOUND_DEDUP: &str = "CREATE UNIQUE INDEX idx_messages_inbound_dedup \
     ON messages (to_number, carrier, carrier_message_id) WHERE direction = 'inbound'";

/// The carrier-id index: unique before this migration, plain after it (under a new name).
fn carrier_index(unique: bool) -> IndexCreateStatement {
    let mut index = Index::create()
        .name(if unique {
            "idx_messages_carrier_message_id"
        } else {
            "idx_messages_carrier_id"
        })
        .table(Messages::Table)
        .col(Messages::Carrier)
        .col(Messages::CarrierMessageId)
        .to_owned();
    if unique {
        index.unique();
    }
    index
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_carrier_message_id")
                    .to_owned(),
            )
            .await?;
        manager.create_index(carrier_index(false)).await?;
        manager
            .get_connection()
            .execute_unprepared(INBOUND_DEDUP)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_messages_inbound_dedup").to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_messages_carrier_id").to_owned())
            .await?;
        manager.create_index(carrier_index(true)).await
    }
}
