//! A counter every key revocation raises in its own transaction: API processes cache the keys
//! they have authenticated and drop that cache when they see the counter move, so a key revoked
//! anywhere (another process, the admin command line) is refused everywhere within the check
//! interval.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum KeyRevision {
    Table,
    Id,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeyRevision::Table)
                    .col(integer(KeyRevision::Id).primary_key())
                    .col(big_integer(KeyRevision::Revision))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(KeyRevision::Table)
                    .columns([KeyRevision::Id, KeyRevision::Revision])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeyRevision::Table).to_owned())
            .await
    }
}
