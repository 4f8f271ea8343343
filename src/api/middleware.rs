//! The outer middleware: a request id for every request, the route check (404, 405 with
//! `Allow`), the 64 KiB body limit (413), and the rule that no answer leaves the server as plain
//! text: framework errors and panics become the error envelope.

use std::{any::Any, collections::BTreeSet, time::Duration};

use poem::{
    http::{header, HeaderValue, Method},
    middleware::CatchPanic,
    Body, Endpoint, EndpointExt, IntoResponse, Request, Response,
};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use super::{envelope::ErrorCode, error::ApiError, request_id};

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The MMS centre's path, whose bodies carry media.
pub const MM7_PATH: &str = "/v1/carrier/mm7";

/// The largest body `POST /v1/carrier/mm7` takes with media of at most `mms_max_bytes`: as
/// base64 makes them, plus 64 KiB for the envelope and the MIME headers.
pub fn mm7_body_bytes(mms_max_bytes: u64) -> usize {
    usize::try_from(mms_max_bytes.saturating_mul(4) / 3)
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_BODY_BYTES)
}

/// Paths served outside the API operations.
pub const EXTRA_ROUTES: [&str; 5] = [
    "/openapi.json",
    "/openapi.yaml",
    "/openapi.d.ts",
    "/docs",
    "/reference",
];

/// Every path template the server answers, with its methods.
pub struct RouteTable {
    /// Each path's segments, methods and template (as the spec writes it).
    routes: Vec<(Vec<Segment>, BTreeSet<&'static str>, String)>,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    Param,
}

/// What the route table says of a request.
#[derive(Debug, PartialEq)]
pub enum RouteCheck {
    /// The route's template, as the spec writes it (`/v1/messages/{id}`).
    Found(String),
    NotFound,
    /// The path exists with these methods (for `Allow`).
    MethodNotAllowed(String),
}

fn method_name(method: &str) -> Option<&'static str> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
}

fn parse_template(template: &str) -> Vec<Segment> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

impl RouteTable {
    /// The operations of the spec plus the spec and docs pages.
    pub fn from_spec(spec: &Value) -> RouteTable {
        let mut routes = Vec::new();
        if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
            for (template, operations) in paths {
                let mut methods: BTreeSet<&'static str> = operations
                    .as_object()
                    .map(|ops| ops.keys().filter_map(|m| method_name(m)).collect())
                    .unwrap_or_default();
                if methods.contains("GET") {
                    methods.insert("HEAD");
                }
                routes.push((parse_template(template), methods, template.clone()));
            }
        }
        for path in EXTRA_ROUTES {
            routes.push((
                parse_template(path),
                BTreeSet::from(["GET", "HEAD"]),
                (*path).to_owned(),
            ));
        }
        RouteTable { routes }
    }

    pub fn check(&self, method: &Method, path: &str) -> RouteCheck {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let matches = |template: &[Segment]| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| match t {
                    Segment::Literal(l) => l == s,
                    Segment::Param => !s.is_empty(),
                })
        };
        let mut allowed: BTreeSet<&'static str> = BTreeSet::new();
        for (template, methods, name) in &self.routes {
            if matches(template) {
                if methods.contains(method.as_str()) {
                    return RouteCheck::Found(name.clone());
                }
                allowed.extend(methods.iter().copied());
            }
        }
        if allowed.is_empty() {
            RouteCheck::NotFound
        } else {
            RouteCheck::MethodNotAllowed(allowed.into_iter().collect::<Vec<_>>().join(", "))
        }
    }
}

/// Wraps the routes; see the module documentation.
pub struct Guard<E> {
    inner: E,
    routes: RouteTable,
    body_read_timeout: Duration,
    /// The largest body of `POST /v1/carrier/mm7` (an inbound MMS with its media), beside the
    /// 64 KiB of every other route.
    mm7_body_bytes: usize,
    /// Whether the database is gone from under the process (its file removed or replaced):
    /// every API request is then 503, so that nothing is answered from a database a restart
    /// would not find.
    gone: Gone,
}

/// See [`Guard`]'s `gone`.
pub type Gone = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// The longest request target (path and query) answered normally; longer is 414.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The most header bytes (names, values and separators) answered normally; more is 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

impl<E: Endpoint<Output = Response>> Guard<E> {
    pub fn new(
        inner: E,
        routes: RouteTable,
        body_read_timeout: Duration,
        mm7_body_bytes: usize,
        gone: Gone,
    ) -> Guard<impl Endpoint<Output = Response>> {
        let inner = inner.with(CatchPanic::new().with_handler(|_: Box<dyn Any + Send>| {
            tracing::error!(request_id = %request_id::current(), "handler panicked");
            ApiError::new(ErrorCode::InternalError).into_response()
        }));
        Guard {
            inner,
            routes,
            body_read_timeout,
            mm7_body_bytes,
            gone,
        }
    }
}

/// The header with the caller's rate-limit policy.
pub const RATE_LIMIT_POLICY: &str = "ratelimit-policy";
/// The header with what is left of the caller's allowance.
pub const RATE_LIMIT: &str = "ratelimit";

/// An error answer after which the connection closes (the rest of the request is not read).
fn closing(code: ErrorCode) -> Response {
    let mut response = ApiError::new(code).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

impl<E: Endpoint<Output = Response>> Endpoint for Guard<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let id = request_id::generate();
        let started = std::time::Instant::now();
        let method = req.method().clone();
        // Matched once: the answer for an unknown route and the operation label of the metrics.
        let check = self.routes.check(&method, req.uri().path());
        let route = match &check {
            RouteCheck::Found(template) => format!("{method} {template}"),
            _ => "unmatched".to_owned(),
        };
        // Every log line of the request carries its id (the span's field).
        let span = tracing::info_span!("request", request_id = %id);
        let (mut response, allowance) = request_id::scope(
            id.clone(),
            crate::service::rate_limit::scope(self.handle(req, check)),
        )
        .instrument(span.clone())
        .await;
        // The caller's rate-limit policy on every answer to an authenticated request, and what
        // is left on the answers of requests that spent a token (IETF httpapi draft headers).
        if let Some(allowance) = allowance {
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&allowance.policy_header()) {
                headers.insert(RATE_LIMIT_POLICY, value);
            }
            if let Some(value) = allowance
                .state_header()
                .and_then(|s| HeaderValue::from_str(&s).ok())
            {
                headers.insert(RATE_LIMIT, value);
            }
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        metrics::counter!(
            "agentmessage_http_requests_total",
            "operation" => route.clone(),
            "status" => status.to_string()
        )
        .increment(1);
        metrics::histogram!("agentmessage_http_request_duration_seconds", "operation" => route.clone())
            .record(elapsed.as_secs_f64());
        span.in_scope(|| {
            tracing::info!(
                target: "agentmessage::access",
                operation = %route,
                status,
                // Rounded to microseconds: `0.405`, not `0.40529299999999996`.
                duration_ms = elapsed.as_micros() as f64 / 1000.0,
                "answered"
            )
        });
        // A replayed answer keeps the id of the request that first gave it.
        if !response.headers().contains_key(request_id::HEADER) {
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(request_id::HEADER, value);
            }
        }
        Ok(response)
    }
}

impl<E: Endpoint<Output = Response>> Guard<E> {
    async fn handle(&self, mut req: Request, check: RouteCheck) -> Response {
        let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target > MAX_TARGET_BYTES {
            return closing(ErrorCode::UriTooLong);
        }
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            return closing(ErrorCode::HeadersTooLarge);
        }
        match check {
            RouteCheck::Found(_) if req.uri().path().starts_with("/v1/") && (self.gone)() => {
                tracing::error!(request_id = %request_id::current(), "the database file was removed or replaced; answering 503");
                return ApiError {
                    retry_after: Some(crate::service::UNAVAILABLE_RETRY_AFTER_SECS),
                    ..ApiError::new(ErrorCode::ServiceUnavailable)
                }
                .into_response();
            }
            RouteCheck::Found(_) => {}
            RouteCheck::NotFound => return ApiError::new(ErrorCode::NotFound).into_response(),
            RouteCheck::MethodNotAllowed(allow) => {
                return ApiError {
                    allow: Some(allow),
                    ..ApiError::new(ErrorCode::MethodNotAllowed)
                }
                .into_response()
            }
        }

        let limit = if req.uri().path() == MM7_PATH {
            self.mm7_body_bytes.max(MAX_BODY_BYTES)
        } else {
            MAX_BODY_BYTES
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return too_large();
        }
        match tokio::time::timeout(self.body_read_timeout, read_limited(req.take_body(), limit))
            .await
        {
            Err(_) => return closing(ErrorCode::RequestTimeout),
            Ok(Ok(Some(bytes))) => req.set_body(bytes),
            Ok(Ok(None)) => return too_large(),
            Ok(Err(err)) => {
                tracing::info!(request_id = %request_id::current(), %err, "could not read the request body");
                return ApiError::new(ErrorCode::BadRequest).into_response();
            }
        }

        match self.inner.call(req).await {
            Ok(response) => envelope_if_bare(response),
            Err(err) => ApiError::from_poem(err).into_response(),
        }
    }
}

/// 413, closing the connection: the rest of the body is never read, so the connection cannot
/// carry another request.
fn too_large() -> Response {
    closing(ErrorCode::PayloadTooLarge)
}

/// Reads at most `limit` bytes; `None` when the body is longer.
async fn read_limited(body: Body, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    body.into_async_read()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .await?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// An error response that is not already JSON (or MM7's SOAP) becomes the envelope for its
/// status.
fn envelope_if_bare(response: Response) -> Response {
    let status = response.status();
    let is_json_or_soap = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/xml"));
    if (status.is_client_error() || status.is_server_error()) && !is_json_or_soap {
        tracing::warn!(request_id = %request_id::current(), status = status.as_u16(), "bare error response replaced by the envelope");
        ApiError::from_status(status).into_response()
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::from_spec(&serde_json::json!({
            "paths": {
                "/v1/messages": {"post": {}},
                "/v1/messages/{id}": {"get": {}},
                "/v1/consents/{phone_number}": {"get": {}, "put": {}, "delete": {}}
            }
        }))
    }

    #[test]
    fn known_paths_and_methods() {
        let t = table();
        assert_eq!(
            t.check(&Method::POST, "/v1/messages"),
            RouteCheck::Found("/v1/messages".into())
        );
        assert_eq!(
            t.check(&Method::GET, "/v1/messages/abc"),
            RouteCheck::Found("/v1/messages/{id}".into())
        );
        assert_eq!(
            t.check(&Method::HEAD, "/v1/messages/abc"),
            RouteCheck::Found("/v1/messages/{id}".into())
        );
        assert_eq!(
            t.check(&Method::GET, "/openapi.json"),
            RouteCheck::Found("/openapi.json".into())
        );
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        let t = table();
        assert_eq!(
            t.check(&Method::GET, "/v1/messages"),
            RouteCheck::MethodNotAllowed("POST".into())
        );
        assert_eq!(
            t.check(&Method::POST, "/v1/consents/+15554443333"),
            RouteCheck::MethodNotAllowed("DELETE, GET, HEAD, PUT".into())
        );
    }

    #[test]
    fn unknown_paths() {
        let t = table();
        for path in [
            "/",
            "/v1",
            "/v1/messages/",
            "/v1/messages/a/b",
            "/v2/messages",
        ] {
            assert_eq!(t.check(&Method::GET, path), RouteCheck::NotFound, "{path}");
        }
    }
}
