//! A note on a message event: what the server did to the message when the event says so (an MMS
//! image scaled down and re-encoded to fit the size cap). Null on every other event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageEvents {
    Table,
    Note,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MessageEvents::Table)
                    .add_column(ColumnDef::new(MessageEvents::Note).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MessageEvents::Table)
                    .drop_column(MessageEvents::Note)
                    .to_owned(),
            )
            .await
    }
}
