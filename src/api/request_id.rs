//! Request ids: one ULID per request, sent as `X-Request-Id` and quoted in every error body.

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The response header that carries the request id (as HTTP/2 sends it, and as poem looks it up).
pub const HEADER: &str = "x-request-id";
/// The same header as the spec and the docs spell it.
pub const HEADER_NAME: &str = "X-Request-Id";

/// A fresh request id.
pub fn generate() -> String {
    ulid::Ulid::new().to_string()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The id of the request being served; outside a request, a fresh one.
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| generate())
}
