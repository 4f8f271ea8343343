//! The recorded outcome of a creating request sent with an `Idempotency-Key`.

use sea_orm::entity::prelude::*;

use crate::values::KeyMode;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: Uuid,
    pub mode: KeyMode,
    /// The operation id (`messages_create`, …).
    pub operation: String,
    pub idempotency_key: String,
    /// SHA-256 (hex) of the request body in RFC 8785 canonical JSON.
    pub fingerprint: String,
    /// The request holding the record while it runs.
    pub token: String,
    /// The `X-Request-Id` of the request whose answer is recorded.
    pub request_id: String,
    /// The answer's status; none while the request runs.
    pub status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    pub started_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
