//! The outcome of each creating request sent with an `Idempotency-Key`, per organization, key
//! mode, operation and key (unique together: concurrent requests with one key are decided by
//! this constraint). A record without a status is a request still running; `token` names the
//! request that holds it, so that a retry taking over a stale record is told apart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Id,
    OrgId,
    Mode,
    Operation,
    IdempotencyKey,
    Fingerprint,
    Token,
    RequestId,
    StatusCode,
    ResponseBody,
    StartedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecords::Table)
                    .col(big_pk_auto(IdempotencyRecords::Id))
                    .col(uuid(IdempotencyRecords::OrgId))
                    .col(string(IdempotencyRecords::Mode))
                    .col(string(IdempotencyRecords::Operation))
                    .col(string(IdempotencyRecords::IdempotencyKey))
                    .col(string(IdempotencyRecords::Fingerprint))
                    .col(string(IdempotencyRecords::Token))
                    .col(string(IdempotencyRecords::RequestId))
                    .col(integer_null(IdempotencyRecords::StatusCode))
                    .col(text_null(IdempotencyRecords::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyRecords::StartedAt))
                    .col(timestamp_with_time_zone(IdempotencyRecords::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_records_key")
                    .table(IdempotencyRecords::Table)
                    .col(IdempotencyRecords::OrgId)
                    .col(IdempotencyRecords::Mode)
                    .col(IdempotencyRecords::Operation)
                    .col(IdempotencyRecords::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_records_expires_at")
                    .table(IdempotencyRecords::Table)
                    .col(IdempotencyRecords::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyRecords::Table).to_owned())
            .await
    }
}
