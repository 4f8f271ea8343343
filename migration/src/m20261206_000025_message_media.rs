//! The media of inbound MMS, stored as the MMS centre delivered them and served at
//! `GET /v1/messages/{id}/media/{index}`: one row per item, in the message's order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageMedia {
    Table,
    MessageId,
    Position,
    ContentType,
    ContentId,
    Bytes,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessageMedia::Table)
                    .col(uuid(MessageMedia::MessageId))
                    .col(integer(MessageMedia::Position))
                    .col(text(MessageMedia::ContentType))
                    .col(text_null(MessageMedia::ContentId))
                    .col(blob(MessageMedia::Bytes))
                    .primary_key(
                        Index::create()
                            .col(MessageMedia::MessageId)
                            .col(MessageMedia::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageMedia::Table, MessageMedia::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageMedia::Table).to_owned())
            .await
    }
}
