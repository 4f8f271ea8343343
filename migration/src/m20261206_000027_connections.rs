//! Named carrier connections: each message event records the connection it came through (the
//! carrier's answer to a submission, a receipt), and a connection's `throughput` is shared by
//! every worker through its token bucket here (PostgreSQL; on SQLite, one process keeps it in
//! memory and this table stays empty).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageEvents {
    Table,
    Connection,
}

#[derive(DeriveIden)]
enum ConnectionBuckets {
    Table,
    Name,
    Tokens,
    RefilledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MessageEvents::Table)
                    .add_column(ColumnDef::new(MessageEvents::Connection).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConnectionBuckets::Table)
                    .col(string(ConnectionBuckets::Name).primary_key())
                    .col(double(ConnectionBuckets::Tokens))
                    .col(timestamp_with_time_zone(ConnectionBuckets::RefilledAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConnectionBuckets::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MessageEvents::Table)
                    .drop_column(MessageEvents::Connection)
                    .to_owned(),
            )
            .await
    }
}
