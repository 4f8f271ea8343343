//! API keys: looked up by digest, listed and revoked per organization.

use entity::{api_key, organization};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Store;
use crate::domain::Timestamp;

/// What a new key row holds.
pub struct NewApiKey<'a> {
    pub org_id: Uuid,
    pub name: Option<&'a str>,
    pub digest: &'a str,
    pub display_prefix: &'a str,
    pub scopes: &'a str,
    pub mode: &'a str,
}

impl Store {
    pub async fn insert_api_key(&self, key: NewApiKey<'_>) -> Result<api_key::Model, DbErr> {
        let row = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(key.org_id),
            name: Set(key.name.map(str::to_owned)),
            digest: Set(key.digest.to_owned()),
            display_prefix: Set(key.display_prefix.to_owned()),
            scopes: Set(key.scopes.to_owned()),
            mode: Set(key.mode.to_owned()),
            created_at: Set(Timestamp::now().as_datetime()),
            revoked_at: Set(None),
            last_used_at: Set(None),
        };
        api_key::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    /// The key with this digest and its organization, revoked or not.
    pub async fn api_key_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<(api_key::Model, organization::Model)>, DbErr> {
        let found = api_key::Entity::find()
            .filter(api_key::Column::Digest.eq(digest))
            .find_also_related(organization::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(key, org)| org.map(|org| (key, org))))
    }

    pub async fn api_keys(&self, org_id: Uuid) -> Result<Vec<api_key::Model>, DbErr> {
        api_key::Entity::find()
            .filter(api_key::Column::OrgId.eq(org_id))
            .order_by_desc(api_key::Column::CreatedAt)
            .order_by_desc(api_key::Column::Id)
            .all(&self.db)
            .await
    }

    pub async fn api_key(&self, org_id: Uuid, id: Uuid) -> Result<Option<api_key::Model>, DbErr> {
        api_key::Entity::find_by_id(id)
            .filter(api_key::Column::OrgId.eq(org_id))
            .one(&self.db)
            .await
    }

    /// Marks a key revoked (once: a second revocation keeps the first time). `None` when the
    /// organization has no such key.
    pub async fn revoke_api_key(
        &self,
        org_id: Option<Uuid>,
        id: Uuid,
    ) -> Result<Option<api_key::Model>, DbErr> {
        let mut query = api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(Timestamp::now().as_datetime()),
            )
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null());
        if let Some(org_id) = org_id {
            query = query.filter(api_key::Column::OrgId.eq(org_id));
        }
        query.exec(&self.db).await?;
        let mut find = api_key::Entity::find_by_id(id);
        if let Some(org_id) = org_id {
            find = find.filter(api_key::Column::OrgId.eq(org_id));
        }
        find.one(&self.db).await
    }

    pub async fn touch_api_key(&self, id: Uuid, at: Timestamp) -> Result<(), DbErr> {
        api_key::Entity::update_many()
            .col_expr(
                api_key::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(at.as_datetime()),
            )
            .filter(api_key::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
