//! Consent history: every opt-in and opt-out per organization and recipient.

use sea_orm_migration::{prelude::*, schema::*};

use crate::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    OrgId,
    PhoneNumber,
    Status,
    Source,
    Evidence,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(pk_uuid(Consents::Id))
                    .col(uuid(Consents::OrgId))
                    .col(string(Consents::PhoneNumber))
                    .col(string(Consents::Status))
                    .col(string(Consents::Source))
                    .col(text_null(Consents::Evidence))
                    .col(timestamp_with_time_zone(Consents::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_consents_org_number_time")
                    .table(Consents::Table)
                    .col(Consents::OrgId)
                    .col(Consents::PhoneNumber)
                    .col(Consents::RecordedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Consents::Table).to_owned())
            .await
    }
}
