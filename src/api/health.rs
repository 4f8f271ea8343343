//! `/healthz`: liveness, answered without touching the database.

use poem::web::Data;
use poem_openapi::types::Example;

use crate::service::Services;
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
    /// The live carrier's sessions, when this process runs the delivery worker (absent for an
    /// API process without one: the carrier's sessions live in the worker processes). With
    /// several named carrier connections, the first of the route that takes SMS to every
    /// recipient (the operators' `/readyz` lists each). While no session is bound, sends are
    /// still accepted and wait in the queue.
    #[oai(skip_serializing_if_is_none)]
    pub carrier: Option<CarrierView>,
}

/// The live carrier's state.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct CarrierView {
    /// `simulated`, `smpp` for an SMSC, or `mm7` for an MMS centre.
    pub kind: String,
    /// Sessions this process keeps (`--smpp-binds`).
    pub sessions: i64,
    /// Sessions bound now and able to submit.
    pub bound: i64,
}

impl Example for CarrierView {
    fn example() -> Self {
        CarrierView {
            kind: "smpp".into(),
            sessions: 2,
            bound: 2,
        }
    }
}

impl Example for HealthView {
    fn example() -> Self {
        HealthView {
            status: "ok".into(),
            carrier: Some(CarrierView::example()),
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
    /// Answers 200 while the process serves requests, with the live carrier's sessions when the
    /// delivery worker runs in this process. It does not touch the database, so it says nothing
    /// about readiness. Needs no API key.
    #[oai(path = "/healthz", method = "get", operation_id = "health_view")]
    async fn health_view(
        &self,
        services: Data<&Services>,
    ) -> Reply<200, Envelope<HealthView>, HealthErrors> {
        let carrier = services
            .carrier_health()
            .map(|h| h.primary)
            .map(|h| CarrierView {
                kind: h.kind.into(),
                sessions: i64::from(h.sessions),
                bound: i64::from(h.bound),
            });
        Reply::ok(Envelope(HealthView {
            status: "ok".into(),
            carrier,
        }))
    }
}
