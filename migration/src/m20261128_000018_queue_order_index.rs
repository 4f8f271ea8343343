//! The delivery queue's claim order as an index: (status, priority, created_at, id). A worker
//! claims each priority in turn in the index's order, so a claim reads the rows it takes, not
//! the whole queue (the earlier (status, priority, created_at) index could not order a claim
//! across both priorities, and a long queue was sorted on every claim).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Status,
    Priority,
    CreatedAt,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_queue_order")
                    .table(Messages::Table)
                    .col(Messages::Status)
                    .col(Messages::Priority)
                    .col(Messages::CreatedAt)
                    .col(Messages::Id)
                    .to_owned(),
            )
            .await?;
        // Its prefix does the old index's work.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_queue")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_queue_order")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await
    }
}
