//! A message is submitted to the carrier as one or more parts (SMPP: one `submit_sm` per
//! segment, joined by a concatenation header). Each part is a row: its submission state, the
//! carrier's id for it and its final receipt. Carrier ids are indexed without uniqueness, since
//! SMSCs reuse ids over time, in the form receipts look them up by (`carrier_key`: lower case,
//! no leading zeros; SMSCs differ in both). `messages.retry_at` holds a message back after the carrier
//! deferred one of its parts (throttling). Messages sent before parts existed get one part each.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageParts {
    Table,
    Id,
    MessageId,
    PartNumber,
    TotalParts,
    Reference,
    State,
    Carrier,
    CarrierMessageId,
    CarrierKey,
    SubmittedAt,
    ReceiptStat,
    RetryAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    RetryAt,
}

/// One accepted part for every outbound message that already has a carrier id; the final
/// receipt is the one its status says.
const BACKFILL: &str = "INSERT INTO message_parts \
    (message_id, part_number, total_parts, reference, state, carrier, carrier_message_id, \
     carrier_key, submitted_at, receipt_stat, updated_at) \
    SELECT id, 1, 1, 0, 'accepted', carrier, carrier_message_id, \
      LOWER(LTRIM(TRIM(carrier_message_id), '0')), COALESCE(sent_at, updated_at), \
      CASE status WHEN 'delivered' THEN 'DELIVRD' WHEN 'undelivered' THEN 'UNDELIV' ELSE NULL END, \
      updated_at \
    FROM messages WHERE direction = 'outbound' AND carrier_message_id IS NOT NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessageParts::Table)
                    .col(big_pk_auto(MessageParts::Id))
                    .col(uuid(MessageParts::MessageId))
                    .col(integer(MessageParts::PartNumber))
                    .col(integer(MessageParts::TotalParts))
                    .col(integer(MessageParts::Reference))
                    .col(string(MessageParts::State))
                    .col(string_null(MessageParts::Carrier))
                    .col(string_null(MessageParts::CarrierMessageId))
                    .col(string_null(MessageParts::CarrierKey))
                    .col(timestamp_with_time_zone_null(MessageParts::SubmittedAt))
                    .col(string_null(MessageParts::ReceiptStat))
                    .col(timestamp_with_time_zone_null(MessageParts::RetryAt))
                    .col(timestamp_with_time_zone(MessageParts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_message_parts_message_part")
                    .table(MessageParts::Table)
                    .col(MessageParts::MessageId)
                    .col(MessageParts::PartNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_message_parts_carrier_id")
                    .table(MessageParts::Table)
                    .col(MessageParts::Carrier)
                    .col(MessageParts::CarrierKey)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(timestamp_with_time_zone_null(Messages::RetryAt))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::RetryAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(MessageParts::Table).to_owned())
            .await
    }
}
