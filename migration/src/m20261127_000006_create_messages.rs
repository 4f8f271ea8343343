//! Messages, outbound and inbound, with indexes for listing and for matching carrier receipts.

use sea_orm_migration::{prelude::*, schema::*};

use crate::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    OrgId,
    Direction,
    FromNumber,
    ToNumber,
    Body,
    Channel,
    Priority,
    Status,
    Tag,
    MediaUrls,
    Segments,
    Encoding,
    ErrorCode,
    Carrier,
    CarrierMessageId,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(pk_uuid(Messages::Id))
                    .col(uuid(Messages::OrgId))
                    .col(string(Messages::Direction))
                    .col(string(Messages::FromNumber))
                    .col(string(Messages::ToNumber))
                    .col(text(Messages::Body))
                    .col(string(Messages::Channel))
                    .col(string(Messages::Priority))
                    .col(string(Messages::Status))
                    .col(string_null(Messages::Tag))
                    .col(text_null(Messages::MediaUrls))
                    .col(integer(Messages::Segments))
                    .col(string(Messages::Encoding))
                    .col(string_null(Messages::ErrorCode))
                    .col(string_null(Messages::Carrier))
                    .col(string_null(Messages::CarrierMessageId))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone(Messages::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::OrgId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_org_created_id")
                    .table(Messages::Table)
                    .col(Messages::OrgId)
                    .col((Messages::CreatedAt, IndexOrder::Desc))
                    .col((Messages::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_carrier_message_id")
                    .table(Messages::Table)
                    .col(Messages::Carrier)
                    .col(Messages::CarrierMessageId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await
    }
}
