//! Scheduling and per-message validity: `send_at` (a message accepted for later waits
//! `scheduled` until then) and `valid_until` (when a message's own validity, or one counted from
//! its `send_at`, runs out; null: the deployment's validity counted from creation), with the index
//! the release of due messages reads.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Status,
    SendAt,
    ValidUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Messages::SendAt, Messages::ValidUntil] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(ColumnDef::new(column).timestamp_with_time_zone().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_status_send_at")
                    .table(Messages::Table)
                    .col(Messages::Status)
                    .col(Messages::SendAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_status_send_at")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Messages::SendAt, Messages::ValidUntil] {
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
