//! A message's events are numbered 1, 2, 3… per message (`number`), so the numbers a client sees
//! say nothing about other organizations' traffic. `messages.event_count` hands out the next
//! number under the message row's lock. Existing events are numbered in their old order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    EventCount,
}

#[derive(DeriveIden)]
enum MessageEvents {
    Table,
    Number,
    MessageId,
}

/// Numbers existing events by their old global order, and counts them on their message. Plain
/// correlated subqueries, the same on SQLite and PostgreSQL.
const BACKFILL: [&str; 2] = [
    "UPDATE message_events SET number = (SELECT COUNT(*) FROM message_events AS earlier \
     WHERE earlier.message_id = message_events.message_id \
     AND earlier.sequence <= message_events.sequence)",
    "UPDATE messages SET event_count = (SELECT COUNT(*) FROM message_events \
     WHERE message_events.message_id = messages.id)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(integer(Messages::EventCount).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MessageEvents::Table)
                    .add_column(integer(MessageEvents::Number).default(0))
                    .to_owned(),
            )
            .await?;
        for statement in BACKFILL {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_message_events_message_number")
                    .table(MessageEvents::Table)
                    .col(MessageEvents::MessageId)
                    .col(MessageEvents::Number)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_message_events_message_number")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MessageEvents::Table)
                    .drop_column(MessageEvents::Number)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::EventCount)
                    .to_owned(),
            )
            .await
    }
}
