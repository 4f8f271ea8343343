//! Owned phone numbers: one owner per number across all organizations.

use sea_orm_migration::{prelude::*, schema::*};

use crate::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PhoneNumbers {
    Table,
    Id,
    OrgId,
    PhoneNumber,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PhoneNumbers::Table)
                    .col(pk_uuid(PhoneNumbers::Id))
                    .col(uuid(PhoneNumbers::OrgId))
                    .col(string_uniq(PhoneNumbers::PhoneNumber))
                    .col(timestamp_with_time_zone(PhoneNumbers::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PhoneNumbers::Table, PhoneNumbers::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_phone_numbers_org")
                    .table(PhoneNumbers::Table)
                    .col(PhoneNumbers::OrgId)
                    .col(PhoneNumbers::PhoneNumber)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PhoneNumbers::Table).to_owned())
            .await
    }
}
