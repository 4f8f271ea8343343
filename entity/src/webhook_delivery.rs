//! One event's delivery to one endpoint, with its attempts.

use sea_orm::entity::prelude::*;

use crate::values::{DeliveryState, KeyMode};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub org_id: Uuid,
    pub mode: KeyMode,
    /// The event's subject and position, copied: the order check reads this table only.
    pub subject: String,
    pub position: i64,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i32,
    /// The attempt count at which the retry schedule (re)starts: a manual retry sets it.
    pub schedule_base: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    /// While an attempt runs: when another dispatcher may take the delivery over.
    pub lease_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
