//! Delivery bookkeeping on messages: the worker's lease, the recorded submission attempt, and a
//! readable error.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    LeaseOwner,
    LeaseExpiresAt,
    AttemptedAt,
    SentAt,
    ErrorMessage,
    Status,
    Priority,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [
            string_null(Messages::LeaseOwner),
            timestamp_with_time_zone_null(Messages::LeaseExpiresAt),
            timestamp_with_time_zone_null(Messages::AttemptedAt),
            timestamp_with_time_zone_null(Messages::SentAt),
            text_null(Messages::ErrorMessage),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_queue")
                    .table(Messages::Table)
                    .col(Messages::Status)
                    .col(Messages::Priority)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_queue")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Messages::LeaseOwner,
            Messages::LeaseExpiresAt,
            Messages::AttemptedAt,
            Messages::SentAt,
            Messages::ErrorMessage,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
