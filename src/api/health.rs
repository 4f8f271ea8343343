//! `/healthz`: liveness, answered without touching the database.

use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};

use super::{
    envelope::Envelope,
    reply::{error_set, Reply},
    ApiTags,
};

/// The server's liveness.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct HealthView {
    /// Always `ok` when the server answers.
    pub status: String,
}

impl Example for HealthView {
    fn example() -> Self {
        HealthView {
            status: "ok".into(),
        }
    }
}

error_set!(
    /// Liveness never fails while the process answers.
    HealthErrors: []
);

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Check liveness
    ///
    /// Answers 200 while the process serves requests. It does not touch the database, so it
    /// says nothing about readiness. Needs no API key.
    #[oai(path = "/healthz", method = "get", operation_id = "health_view")]
    async fn health_view(&self) -> Reply<200, Envelope<HealthView>, HealthErrors> {
        Reply::ok(Envelope(HealthView {
            status: "ok".into(),
        }))
    }
}
