//! The shared token buckets of organizations' rate limits (PostgreSQL, several API processes):
//! each process leases a few tokens at a time from its organization's bucket, so that the limit
//! holds across processes without a database round trip per request. SQLite deployments (one
//! process) keep their limiter in memory and leave this table empty.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RateBuckets {
    Table,
    OrgId,
    Mode,
    Tokens,
    RefilledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateBuckets::Table)
                    .col(uuid(RateBuckets::OrgId))
                    .col(string(RateBuckets::Mode))
                    .col(double(RateBuckets::Tokens))
                    .col(timestamp_with_time_zone(RateBuckets::RefilledAt))
                    .primary_key(
                        Index::create()
                            .col(RateBuckets::OrgId)
                            .col(RateBuckets::Mode),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateBuckets::Table).to_owned())
            .await
    }
}
