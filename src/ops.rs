//! The operations listener (`--ops-listen`): `/healthz`, `/readyz` and `/metrics` for the
//! people who run AgentMessage, on an address of its own — platform-wide figures are not a
//! tenant's business, so none of this is on the public listener or in the public spec.
//!
//! Metrics go through the `metrics` facade and are exposed by `metrics-exporter-prometheus` in
//! the Prometheus text format. Counters are kept where things happen (the API middleware, the
//! store's status changes, the worker, the webhook dispatcher); gauges that read the database
//! (queue depth, oldest queued message) and the connection pool are refreshed at each scrape.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::{
    get, handler,
    http::StatusCode,
    web::{Data, Json},
    Endpoint, EndpointExt, IntoResponse, Response, Route,
};
use serde_json::json;

use crate::service::Services;

/// The process's metrics recorder, installed on first use (one per process).
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (a test harness): ours still renders what
        // is recorded through it.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// What this process does, for readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Serves the API only: ready while the database is reachable and migrated. An unbound
    /// carrier does not take it out of a load balancer: it keeps accepting and queueing.
    Api,
    /// Runs a delivery worker (alone, or inside `serve`): also needs a bound carrier session
    /// where a live carrier with sessions is configured.
    Worker,
}

/// The operations endpoints.
pub fn app(services: Services, role: Role) -> impl Endpoint<Output = Response> {
    metrics();
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(scrape))
        .data(services)
        .data(role)
        .map_to_response()
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[handler]
async fn readyz(services: Data<&Services>, role: Data<&Role>) -> Response {
    let refusal = services.write_refusal();
    let database = refusal.is_none() && services.ping().await.is_ok();
    let migrated = database && services.migrated().await.unwrap_or(false);
    let delivery = match (*role, services.carrier_health()) {
        (Role::Worker, Some(health)) => Some(health),
        _ => None,
    };
    let ready = database && migrated && delivery.as_ref().is_none_or(|h| h.ready);
    let mut checks = json!({
        "database": match refusal {
            Some(why) => why.describe(),
            None if database => "ok",
            None => "unreachable",
        },
        "migrations": if migrated { "ok" } else if database { "pending" } else { "unknown" },
    });
    if let Some(health) = delivery {
        // Every route has a bound connection.
        checks["carrier"] = json!(if health.ready { "bound" } else { "not bound" });
        let connections: serde_json::Map<String, serde_json::Value> = health
            .connections
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    json!({
                        "kind": c.health.kind,
                        "state": c.state.as_str(),
                        "sessions": c.health.sessions,
                        "bound": c.health.bound,
                        "throughput": c.throughput,
                    }),
                )
            })
            .collect();
        checks["connections"] = serde_json::Value::Object(connections);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = Json(json!({"ready": ready, "checks": checks})).into_response();
    response.set_status(status);
    response
}

#[handler]
async fn scrape(services: Data<&Services>) -> Response {
    if let Ok((depth, oldest)) = services.queue_stats().await {
        metrics::gauge!("agentmessage_queue_depth").set(depth as f64);
        metrics::gauge!("agentmessage_queue_oldest_age_seconds").set(oldest.as_secs_f64());
    }
    if let Some(health) = services.carrier_health() {
        for c in &health.connections {
            let name = || c.name.clone();
            metrics::gauge!("agentmessage_connection_sessions", "connection" => name())
                .set(f64::from(c.health.sessions));
            metrics::gauge!("agentmessage_connection_sessions_bound", "connection" => name())
                .set(f64::from(c.health.bound));
            metrics::gauge!("agentmessage_connection_throughput_limit", "connection" => name())
                .set(f64::from(c.throughput));
            for state in crate::domain::submission::ConnectionState::ALL {
                metrics::gauge!("agentmessage_connection_state", "connection" => name(), "state" => state.as_str())
                    .set(if state == c.state { 1.0 } else { 0.0 });
            }
        }
    }
    let (size, idle) = services.pool_use();
    metrics::gauge!("agentmessage_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("agentmessage_db_pool_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics().render())
}

/// Serves the operations endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Services,
    role: Role,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    crate::server::serve(
        listener,
        app(services, role),
        crate::server::ServerSettings::default(),
        shutdown,
    )
    .await
}
