//! Parts of inbound concatenated messages from an SMSC, kept until their message is whole (or
//! given up on): a part answered `ESME_ROK` is stored first, so a restart loses none.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InboundParts {
    Table,
    Id,
    Carrier,
    Sender,
    Recipient,
    Reference,
    Total,
    Sequence,
    Text,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboundParts::Table)
                    .col(uuid(InboundParts::Id).primary_key())
                    .col(text(InboundParts::Carrier))
                    .col(text(InboundParts::Sender))
                    .col(text(InboundParts::Recipient))
                    .col(integer(InboundParts::Reference))
                    .col(integer(InboundParts::Total))
                    .col(integer(InboundParts::Sequence))
                    .col(text(InboundParts::Text))
                    .col(timestamp_with_time_zone(InboundParts::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbound_parts_set")
                    .table(InboundParts::Table)
                    .col(InboundParts::Carrier)
                    .col(InboundParts::Sender)
                    .col(InboundParts::Recipient)
                    .col(InboundParts::Reference)
                    .col(InboundParts::Total)
                    .col(InboundParts::Sequence)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbound_parts_received")
                    .table(InboundParts::Table)
                    .col(InboundParts::Carrier)
                    .col(InboundParts::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InboundParts::Table).to_owned())
            .await
    }
}
