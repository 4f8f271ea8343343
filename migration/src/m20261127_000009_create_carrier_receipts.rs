//! Every delivery receipt a carrier sent, matched to its message or not (yet): a receipt that
//! arrives before the carrier's message id is stored waits here until `sent` is recorded.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CarrierReceipts {
    Table,
    Id,
    Carrier,
    CarrierMessageId,
    Stat,
    Err,
    DoneDate,
    ReceivedAt,
    MessageId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CarrierReceipts::Table)
                    .col(big_pk_auto(CarrierReceipts::Id))
                    .col(string(CarrierReceipts::Carrier))
                    .col(string(CarrierReceipts::CarrierMessageId))
                    .col(string(CarrierReceipts::Stat))
                    .col(string_null(CarrierReceipts::Err))
                    .col(string_null(CarrierReceipts::DoneDate))
                    .col(timestamp_with_time_zone(CarrierReceipts::ReceivedAt))
                    .col(uuid_null(CarrierReceipts::MessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_carrier_receipts_carrier_id")
                    .table(CarrierReceipts::Table)
                    .col(CarrierReceipts::Carrier)
                    .col(CarrierReceipts::CarrierMessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CarrierReceipts::Table).to_owned())
            .await
    }
}
