//! Messages.

use entity::message;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Store;
use crate::domain::listing::{ListPosition, MessageFilter};

impl Store {
    /// Stores a new message: the send path's single write.
    pub async fn insert_message(&self, row: message::ActiveModel) -> Result<message::Model, DbErr> {
        message::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
    }

    pub async fn message(&self, org_id: Uuid, id: Uuid) -> Result<Option<message::Model>, DbErr> {
        message::Entity::find_by_id(id)
            .filter(message::Column::OrgId.eq(org_id))
            .one(&self.db)
            .await
    }
}

impl Store {
    /// Up to `limit` messages matching `filter`, newest first (`created_at`, then `id`,
    /// descending), after `after` when given. Keyset pagination: a page costs the same however
    /// deep it is, and rows added meanwhile never shift it.
    pub async fn list_messages(
        &self,
        org_id: Uuid,
        filter: &MessageFilter,
        after: Option<ListPosition>,
        limit: u64,
    ) -> Result<Vec<message::Model>, DbErr> {
        use sea_orm::{
            sea_query::{Expr, ExprTrait},
            QueryOrder, QuerySelect,
        };
        let mut query = message::Entity::find().filter(message::Column::OrgId.eq(org_id));
        if let Some(v) = filter.status {
            query = query.filter(message::Column::Status.eq(v.as_str()));
        }
        if let Some(v) = filter.direction {
            query = query.filter(message::Column::Direction.eq(v.as_str()));
        }
        if let Some(v) = &filter.to {
            query = query.filter(message::Column::ToNumber.eq(v.as_str()));
        }
        if let Some(v) = &filter.from {
            query = query.filter(message::Column::FromNumber.eq(v.as_str()));
        }
        if let Some(v) = &filter.tag {
            query = query.filter(message::Column::Tag.eq(v.as_str()));
        }
        if let Some(v) = filter.created_after {
            query = query.filter(message::Column::CreatedAt.gt(v));
        }
        if let Some(v) = filter.created_before {
            query = query.filter(message::Column::CreatedAt.lt(v));
        }
        if let Some(p) = after {
            // A row-value comparison, so that both databases seek the listing index to the
            // position instead of scanning to it.
            query = query.filter(
                Expr::tuple([
                    Expr::col(message::Column::CreatedAt),
                    Expr::col(message::Column::Id),
                ])
                .lt(Expr::tuple([Expr::value(p.created_at), Expr::value(p.id)])),
            );
        }
        query
            .order_by_desc(message::Column::CreatedAt)
            .order_by_desc(message::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
    }
}
