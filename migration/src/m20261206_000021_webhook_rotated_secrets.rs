//! Secrets rotated away: each keeps signing beside the current one until its own overlap ends,
//! whatever later rotations happen. They move from the endpoint's single `previous_secret` to a
//! table of their own (one row per rotated secret, cascading with its endpoint).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    PreviousSecret,
    PreviousSecretUntil,
}

#[derive(DeriveIden)]
enum WebhookRotatedSecrets {
    Table,
    Id,
    EndpointId,
    Secret,
    SignsUntil,
    RotatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookRotatedSecrets::Table)
                    .col(uuid(WebhookRotatedSecrets::Id).primary_key())
                    .col(uuid(WebhookRotatedSecrets::EndpointId))
                    .col(text(WebhookRotatedSecrets::Secret))
                    .col(timestamp_with_time_zone(WebhookRotatedSecrets::SignsUntil))
                    .col(timestamp_with_time_zone(WebhookRotatedSecrets::RotatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                WebhookRotatedSecrets::Table,
                                WebhookRotatedSecrets::EndpointId,
                            )
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_rotated_secrets_endpoint")
                    .table(WebhookRotatedSecrets::Table)
                    .col(WebhookRotatedSecrets::EndpointId)
                    .col(WebhookRotatedSecrets::SignsUntil)
                    .to_owned(),
            )
            .await?;
        // The secret each endpoint rotated away last, while it still signs. The row id is the
        // endpoint's: one such secret per endpoint, and both backends read a UUID column back
        // as they wrote it.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO webhook_rotated_secrets (id, endpoint_id, secret, signs_until, rotated_at) \
                 SELECT id, id, previous_secret, previous_secret_until, updated_at \
                 FROM webhook_endpoints \
                 WHERE previous_secret IS NOT NULL AND previous_secret_until IS NOT NULL",
            )
            .await?;
        for column in [
            WebhookEndpoints::PreviousSecret,
            WebhookEndpoints::PreviousSecretUntil,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookEndpoints::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEndpoints::Table)
                    .add_column(text_null(WebhookEndpoints::PreviousSecret))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEndpoints::Table)
                    .add_column(timestamp_with_time_zone_null(
                        WebhookEndpoints::PreviousSecretUntil,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookRotatedSecrets::Table).to_owned())
            .await
    }
}
