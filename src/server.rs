//! The public listener: our own accept loop on hyper (HTTP/1.1), because poem's `Server` offers
//! only an idle timeout and retries failed accepts silently and at once.
//!
//! - Header-read timeout: a client that has not sent a whole request head in time (half a
//!   request line, or nothing at all on a fresh or kept-alive connection) is disconnected.
//! - Idle timeout: a kept-alive connection with no request in flight and no traffic is closed.
//! - Connection cap: past it, new connections wait in the kernel's backlog until one closes —
//!   the accept loop does not spin.
//! - Per-address cap: a client address holding its share already has further connections
//!   closed as they are accepted, so one client cannot take every slot from the others.
//! - Accept errors (descriptors exhausted, …) back off, up to a second, and are logged at most
//!   every ten seconds.
//! - Shutdown: stop accepting, let requests in flight finish (bounded), then close.
//!
//! Request targets over 8 KiB and headers over 32 KiB get their envelope from the middleware
//! (414, 431). hyper reads heads up to [`HYPER_MAX_HEAD_BYTES`] and targets up to its own fixed
//! limit (near 64 KiB); past those, and for a head it cannot parse (a control character in a
//! header value, a malformed request line), it refuses the request itself (431, 414, 400) and
//! closes the connection: the socket puts that refusal into the envelope with a request id.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::{
    web::{LocalAddr, RemoteAddr},
    Addr, Endpoint, EndpointExt,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

/// How much of a request head hyper buffers; a larger head gets hyper's own bare 431.
pub const HYPER_MAX_HEAD_BYTES: usize = 128 * 1024;

/// The listener's protections; every one a setting.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// How long a client may take to send a whole request head.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may sit with no request in flight.
    pub idle_timeout: Duration,
    /// Most connections served at once; more wait in the backlog.
    pub max_connections: usize,
    /// Most connections one client address holds at once; more are closed when accepted.
    pub max_connections_per_address: usize,
    /// How long a stop waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        use crate::defaults::{self, duration};
        ServerSettings {
            header_read_timeout: duration(defaults::HEADER_READ_TIMEOUT),
            idle_timeout: duration(defaults::IDLE_TIMEOUT),
            max_connections: usize::try_from(defaults::MAX_CONNECTIONS).unwrap_or(usize::MAX),
            max_connections_per_address: usize::try_from(defaults::MAX_CONNECTIONS_PER_ADDRESS)
                .unwrap_or(usize::MAX),
            shutdown_grace: duration(defaults::SHUTDOWN_GRACE),
        }
    }
}

/// Keeps glibc's allocator to two arenas. By default it gives busy threads arenas of their own
/// (up to eight per core); under load that held about a fifth of the server's peak memory
/// (measured with `scripts/bench`: 108 MiB peak with the default, 87 MiB with two), for no
/// measurable speed.
pub fn limit_allocator_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets one of the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Raises the soft limit on open descriptors to the hard limit, so that the connection cap, not
/// the descriptor limit, is what holds connections back. Returns the limit in force.
pub fn raise_descriptor_limit() -> io::Result<u64> {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
            limit.rlim_cur = limit.rlim_max;
        }
        Ok(limit.rlim_cur)
    }
}

/// Serves `endpoint` on `listener` until `shutdown` completes, then lets requests in flight
/// finish for up to the shutdown grace.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let endpoint = Arc::new(endpoint.map_to_response().boxed());
    let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(10);
    let mut last_report: Option<Instant> = None;
    let mut failures = 0u64;
    let per_address = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut refused_per_address = 0u64;
    let mut last_refusal_report: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(err) => {
                    failures += 1;
                    if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(%err, failures, "cannot accept connections; backing off");
                        last_report = Some(Instant::now());
                    }
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(held) = PerAddress::hold(
            &per_address,
            remote.ip(),
            settings.max_connections_per_address,
        ) else {
            refused_per_address += 1;
            if last_refusal_report.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(10))
            {
                tracing::warn!(
                    address = %remote.ip(),
                    refused = refused_per_address,
                    "a client address holds its most connections; closing its new ones"
                );
                last_refusal_report = Some(Instant::now());
            }
            drop(stream);
            drop(permit);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let endpoint = endpoint.clone();
        let local = local.clone();
        let settings = settings.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _held = held;
            serve_connection(stream, remote, local, endpoint, &settings, &mut stop).await;
        });
    }
    // Stop accepting; let connections finish what they are doing.
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(settings.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace; closing them");
    }
    Ok(())
}

type Shared = Arc<poem::endpoint::BoxEndpoint<'static, poem::Response>>;

/// Connections held per client address.
type Counts = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One connection counted against its client address until dropped.
struct PerAddress {
    counts: Counts,
    ip: std::net::IpAddr,
}

impl PerAddress {
    /// Counts a connection from `ip`, unless it already holds `most`.
    fn hold(counts: &Counts, ip: std::net::IpAddr, most: usize) -> Option<PerAddress> {
        let ip = ip.to_canonical();
        let mut held = counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(ip).or_insert(0);
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(PerAddress {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for PerAddress {
    fn drop(&mut self) {
        let mut held = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: std::net::SocketAddr,
    local: LocalAddr,
    endpoint: Shared,
    settings: &ServerSettings,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
        remote,
        replacement: None,
    });
    let remote_addr = RemoteAddr(Addr::SocketAddr(remote));
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let endpoint = endpoint.clone();
        let local = local.clone();
        let remote_addr = remote_addr.clone();
        let in_flight = in_flight.clone();
        async move {
            in_flight.requests.fetch_add(1, Ordering::AcqRel);
            in_flight.begun.store(true, Ordering::Release);
            in_flight.first_request.notify_one();
            let request: poem::Request =
                (req, local, remote_addr, poem::http::uri::Scheme::HTTP).into();
            let response = endpoint.get_response(request).await;
            in_flight.requests.fetch_sub(1, Ordering::AcqRel);
            in_flight.touch();
            Ok::<hyper::Response<_>, Infallible>(response.into())
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(HYPER_MAX_HEAD_BYTES)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let idle = settings.idle_timeout;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = stop.changed() => {
                // A connection accepted before the stop may have its first request on the way
                // (or already read into hyper's buffer, not yet parsed): closing it now would
                // leave that request unanswered, and a client cannot tell whether it was
                // processed. Wait for that request to begin (within the header-read timeout),
                // then let it finish and close.
                if !activity.begun.load(Ordering::Acquire) {
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        _ = activity.first_request.notified() => {}
                        _ = tokio::time::sleep(settings.header_read_timeout) => {}
                    }
                }
                connection.as_mut().graceful_shutdown();
                let _ = connection.as_mut().await;
                return;
            }
            _ = tokio::time::sleep(activity.idle_left(idle)) => {
                if activity.idle_for() >= idle {
                    tracing::debug!(%remote, "closing an idle connection");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved bytes, and how many requests it is serving.
struct Activity {
    started: Instant,
    /// Milliseconds after `started`.
    last: AtomicU64,
    requests: AtomicUsize,
    /// Whether a request has begun on this connection.
    begun: std::sync::atomic::AtomicBool,
    /// Notified when a request begins.
    first_request: tokio::sync::Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            started: Instant::now(),
            last: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
            begun: std::sync::atomic::AtomicBool::new(false),
            first_request: tokio::sync::Notify::new(),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Release);
    }

    /// How long the connection has been idle: zero while a request is in flight.
    fn idle_for(&self) -> Duration {
        if self.requests.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Acquire));
        self.started.elapsed().saturating_sub(last)
    }

    /// How long until the idle timeout could be reached.
    fn idle_left(&self, idle: Duration) -> Duration {
        idle.saturating_sub(self.idle_for())
            .max(Duration::from_millis(10))
    }
}

/// A socket that notes when it last moved bytes, and puts hyper's own bare refusals of a request
/// head it cannot parse (400, 414, 431: no body, no request id) into the error envelope.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    remote: std::net::SocketAddr,
    /// The bytes written in place of a buffer holding hyper's refusal: what is left to write,
    /// and how long the buffer hyper gave was.
    replacement: Option<(Vec<u8>, usize)>,
}

/// Where hyper's bare refusal of an unparsable head starts at the end of `buf`, and its status.
/// hyper writes exactly `HTTP/1.1 <status>`, `connection: close`, `content-length: 0` and
/// `date`, and then closes; every answer of ours carries a body and `x-request-id`.
fn hyper_refusal(buf: &[u8]) -> Option<(usize, u16)> {
    const START: &[u8] = b"HTTP/1.1 ";
    // Answers of ours end with their body; only a bare head ends with its blank line.
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf.windows(START.len()).rposition(|w| w == START)?;
    let head = std::str::from_utf8(&buf[start..]).ok()?;
    let lines: Vec<&str> = head.strip_suffix("\r\n\r\n")?.split("\r\n").collect();
    let [status_line, "connection: close", "content-length: 0", date] = lines.as_slice() else {
        return None;
    };
    if !date.starts_with("date: ") {
        return None;
    }
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    matches!(status, 400 | 414 | 431).then_some((start, status))
}

/// The envelope answer that replaces hyper's bare refusal with `status`.
fn refusal_envelope(status: u16, remote: std::net::SocketAddr) -> Vec<u8> {
    use crate::api::{envelope::ErrorCode, error::ApiError};
    use poem_openapi::types::ToJSON;
    let error = match status {
        414 => ApiError::new(ErrorCode::UriTooLong),
        431 => ApiError::new(ErrorCode::HeadersTooLarge),
        _ => ApiError::with_details(
            ErrorCode::BadRequest,
            std::collections::BTreeMap::from([(
                "request".into(),
                "the request line or a header is not valid HTTP/1.1 (a header value may not hold control characters other than tab)".into(),
            )]),
        ),
    };
    let body = error.body();
    let id = body.error.request_id.clone();
    tracing::info!(request_id = %id, status, %remote, "request head refused by the HTTP parser");
    let json = body.to_json_string();
    let reason = poem::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Bad Request");
    format!(
        "HTTP/1.1 {status} {reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n{}: {id}\r\n\r\n{json}",
        json.len(),
        crate::api::request_id::HEADER,
    )
    .into_bytes()
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            if let Some((start, status)) = hyper_refusal(buf) {
                let mut bytes = buf[..start].to_vec();
                bytes.extend(refusal_envelope(status, self.remote));
                self.replacement = Some((bytes, buf.len()));
            }
        }
        if let Some((bytes, given)) = self.replacement.take() {
            // Written whole before hyper hears that its buffer went out.
            let mut left = bytes;
            while !left.is_empty() {
                match Pin::new(&mut self.inner).poll_write(cx, &left) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        left.drain(..n);
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => {
                        self.replacement = Some((left, given));
                        return Poll::Pending;
                    }
                }
            }
            self.activity.touch();
            return Poll::Ready(Ok(given));
        }
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
