//! A webhook event, written in the same transaction as the change that caused it, with its
//! payload rendered then.

use sea_orm::entity::prelude::*;

use crate::values::{KeyMode, WebhookEventType};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    /// The `webhook-id` of every delivery of this event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub mode: KeyMode,
    pub event_type: WebhookEventType,
    /// What the event is about: a message id, or a phone number for consent events.
    pub subject: String,
    /// The event's place among its subject's events.
    pub position: i64,
    /// The whole JSON body sent to endpoints.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
