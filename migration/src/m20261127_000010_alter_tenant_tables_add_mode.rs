//! The key mode (`live` or `test`) on every table a key's mode separates: messages, consents and
//! lookups. Existing rows were all made by live keys. Their tenant indexes gain the mode after the
//! organization, so that every tenant query still seeks one index range.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Mode,
    OrgId,
    CreatedAt,
    Id,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    Mode,
    OrgId,
    PhoneNumber,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Lookups {
    Table,
    Mode,
    OrgId,
    PhoneNumber,
    LookedUpAt,
}

/// The tenant indexes, with the mode (what this migration makes) or without (what it replaces).
fn indexes(with_mode: bool) -> Vec<IndexCreateStatement> {
    let name = |base: &str| {
        if with_mode {
            base.replacen("_org_", "_org_mode_", 1)
        } else {
            base.to_owned()
        }
    };
    let mut messages = Index::create()
        .name(name("idx_messages_org_created_id"))
        .table(Messages::Table)
        .col(Messages::OrgId)
        .to_owned();
    let mut consents = Index::create()
        .name(name("idx_consents_org_number_time"))
        .table(Consents::Table)
        .col(Consents::OrgId)
        .to_owned();
    let mut lookups = Index::create()
        .name(name("idx_lookups_org_number_time"))
        .table(Lookups::Table)
        .col(Lookups::OrgId)
        .to_owned();
    if with_mode {
        messages.col(Messages::Mode);
        consents.col(Consents::Mode);
        lookups.col(Lookups::Mode);
    }
    messages
        .col((Messages::CreatedAt, IndexOrder::Desc))
        .col((Messages::Id, IndexOrder::Desc));
    consents
        .col(Consents::PhoneNumber)
        .col(Consents::RecordedAt);
    lookups.col(Lookups::PhoneNumber).col(Lookups::LookedUpAt);
    vec![messages, consents, lookups]
}

/// Drops the index `create` made.
fn drop_of(create: &IndexCreateStatement) -> IndexDropStatement {
    let name = create.get_index_spec().get_name().unwrap_or_default();
    Index::drop().name(name).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, mut column) in [
            (
                Messages::Table.into_iden(),
                string(Messages::Mode).default("live").to_owned(),
            ),
            (
                Consents::Table.into_iden(),
                string(Consents::Mode).default("live").to_owned(),
            ),
            (
                Lookups::Table.into_iden(),
                string(Lookups::Mode).default("live").to_owned(),
            ),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for (old, new) in indexes(false).into_iter().zip(indexes(true)) {
            manager.create_index(new).await?;
            manager.drop_index(drop_of(&old)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, new) in indexes(false).into_iter().zip(indexes(true)) {
            manager.create_index(old).await?;
            manager.drop_index(drop_of(&new)).await?;
        }
        for (table, column) in [
            (Messages::Table.into_iden(), Messages::Mode.into_iden()),
            (Consents::Table.into_iden(), Consents::Mode.into_iden()),
            (Lookups::Table.into_iden(), Lookups::Mode.into_iden()),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
