//! Number lookups: each organization's line-type results per number, over time.

use sea_orm_migration::{prelude::*, schema::*};

use crate::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Lookups {
    Table,
    Id,
    OrgId,
    PhoneNumber,
    LineType,
    LookedUpAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Lookups::Table)
                    .col(pk_uuid(Lookups::Id))
                    .col(uuid(Lookups::OrgId))
                    .col(string(Lookups::PhoneNumber))
                    .col(string(Lookups::LineType))
                    .col(timestamp_with_time_zone(Lookups::LookedUpAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Lookups::Table, Lookups::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lookups_org_number_time")
                    .table(Lookups::Table)
                    .col(Lookups::OrgId)
                    .col(Lookups::PhoneNumber)
                    .col(Lookups::LookedUpAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Lookups::Table).to_owned())
            .await
    }
}
