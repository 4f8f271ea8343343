//! Every step of every message (transitions, submission attempts, receipts), in the server's own
//! order: `sequence` is the event's place in that order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageEvents {
    Table,
    Sequence,
    MessageId,
    OrgId,
    Kind,
    Status,
    OccurredAt,
    CarrierMessageId,
    Stat,
    Err,
    DoneDate,
    ErrorCode,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessageEvents::Table)
                    .col(big_pk_auto(MessageEvents::Sequence))
                    .col(uuid(MessageEvents::MessageId))
                    .col(uuid(MessageEvents::OrgId))
                    .col(string(MessageEvents::Kind))
                    .col(string(MessageEvents::Status))
                    .col(timestamp_with_time_zone(MessageEvents::OccurredAt))
                    .col(string_null(MessageEvents::CarrierMessageId))
                    .col(string_null(MessageEvents::Stat))
                    .col(string_null(MessageEvents::Err))
                    .col(string_null(MessageEvents::DoneDate))
                    .col(string_null(MessageEvents::ErrorCode))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageEvents::Table, MessageEvents::MessageId)
                            .to(Messages::Table, Messages::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_message_events_message")
                    .table(MessageEvents::Table)
                    .col(MessageEvents::MessageId)
                    .col(MessageEvents::Sequence)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageEvents::Table).to_owned())
            .await
    }
}
