//! The webhook dispatcher: it leases due deliveries, POSTs each event signed per the Standard
//! Webhooks specification, and records the outcomes in batches.
//!
//! - Order: a delivery is due only when no earlier event of the same subject (a message, or a
//!   phone number for consent events) is still pending for the same endpoint; the store's claim
//!   checks it.
//! - Isolation: at most `per_endpoint` attempts run per endpoint, so a slow or dead endpoint
//!   holds up only its own deliveries.
//! - Destinations: host names are resolved by a resolver that refuses loopback, private,
//!   link-local and metadata addresses (unless allowed), so the address checked is the address
//!   connected to; address literals are checked before sending; redirects are not followed and no
//!   proxy is used.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::{
    domain::{
        webhooks::{next_wait, signature_header, AttemptResult, DueDelivery, Outcome},
        Timestamp,
    },
    service::{
        webhooks::{refused_destination, InFlight, Shares},
        Services,
    },
};

/// The dispatcher's timers and limits; every one a setting.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How long one attempt may take.
    pub timeout: Duration,
    /// The waits after each failed attempt; past the last, the delivery is `failed`.
    pub schedule: Vec<Duration>,
    /// How often the dispatcher looks for due deliveries when idle.
    pub poll: Duration,
    /// Most attempts in flight at once.
    pub concurrency: usize,
    /// Most attempts in flight to one endpoint.
    pub per_endpoint: usize,
    /// Most attempts in flight to one organization's endpoints.
    pub per_organization: usize,
    /// Whether private destinations may be reached (checked again at each attempt).
    pub allow_private: bool,
    /// How long finished events are kept.
    pub retention: Duration,
    /// Pause between purges of finished events.
    pub sweep_every: Duration,
    /// The shortest wait a receiver's `Retry-After` can ask for.
    pub retry_after_floor: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        use crate::defaults::{self, duration};
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        WebhookSettings {
            timeout: duration(defaults::WEBHOOK_TIMEOUT),
            schedule: defaults::WEBHOOK_SCHEDULE
                .split(',')
                .map(duration)
                .collect(),
            poll: duration(defaults::WEBHOOK_POLL),
            concurrency: count(defaults::WEBHOOK_CONCURRENCY),
            per_endpoint: count(defaults::WEBHOOK_PER_ENDPOINT),
            per_organization: count(defaults::WEBHOOK_PER_ORGANIZATION),
            allow_private: false,
            retention: duration(defaults::WEBHOOK_RETENTION),
            sweep_every: Duration::from_secs(60),
            retry_after_floor: duration(defaults::WEBHOOK_RETRY_AFTER_FLOOR),
        }
    }
}

/// A destination refused by the resolver.
#[derive(Debug, thiserror::Error)]
#[error("the destination {0} is not allowed ({1})")]
struct Blocked(std::net::IpAddr, &'static str);

/// Resolves host names, refusing forbidden addresses (webhooks and MMS media share it).
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow_private {
                for address in &found {
                    if let Some(why) = refused_destination(address.ip()) {
                        return Err(Box::new(Blocked(address.ip(), why)) as _);
                    }
                }
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Delivers webhook events; several may run against one database.
pub struct Dispatcher {
    services: Services,
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl Dispatcher {
    pub fn new(services: Services, settings: WebhookSettings) -> Dispatcher {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private,
            }))
            .user_agent(concat!("AgentMessage-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(settings.per_endpoint)
            // A connection that hangs ends as a connection error before the attempt's own
            // timeout, so that it reads as a refused one does.
            .connect_timeout(settings.timeout.mul_f64(0.9))
            .build()
            .expect("the webhook client's settings are valid");
        Dispatcher {
            services,
            settings,
            client,
        }
    }

    /// Runs until `shutdown` completes; attempts in flight then finish and are recorded.
    ///
    /// Attempts, claims and the recording of outcomes overlap: an attempt's slot (and its
    /// endpoint's share) is free as soon as its answer arrives, and outcomes are written by one
    /// recorder at a time, in batches, while the next claims and attempts go on.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
        let mut attempting = 0usize;
        let mut busy = InFlight::default();
        let mut unrecorded: Vec<Outcome> = Vec::new();
        let mut recorder: Option<tokio::task::JoinHandle<()>> = None;
        let mut stopping = false;
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            if !stopping && attempting < self.settings.concurrency {
                match self
                    .claim(self.settings.concurrency - attempting, &busy)
                    .await
                {
                    Ok(due) => {
                        for delivery in due {
                            attempting += 1;
                            busy.add(delivery.endpoint_id, delivery.org_id);
                            let (client, tx) = (self.client.clone(), done_tx.clone());
                            let settings = self.settings.clone();
                            tokio::spawn(async move {
                                let outcome = attempt(&client, &settings, delivery).await;
                                let _ = tx.send(outcome);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(%err, "claiming webhook deliveries failed"),
                }
            }
            if !stopping && last_sweep.elapsed() >= self.settings.sweep_every {
                last_sweep = tokio::time::Instant::now();
                self.sweep().await;
            }
            if recorder.is_none() && !unrecorded.is_empty() {
                let (services, batch) = (self.services.clone(), std::mem::take(&mut unrecorded));
                recorder = Some(tokio::spawn(async move {
                    // A failed write leaves the deliveries leased: they are attempted again when
                    // the lease runs out (the receiver sees the same `webhook-id`).
                    if let Err(err) = services.record_webhook_outcomes(&batch).await {
                        tracing::warn!(%err, n = batch.len(), "recording webhook outcomes failed");
                    }
                }));
            }
            if stopping && attempting == 0 && unrecorded.is_empty() && recorder.is_none() {
                break;
            }
            let recorded = async {
                match recorder.as_mut() {
                    Some(task) => {
                        let _ = task.await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                outcome = done_rx.recv() => {
                    for outcome in outcome.into_iter().chain(std::iter::from_fn(|| done_rx.try_recv().ok())) {
                        attempting -= 1;
                        busy.remove(outcome.endpoint_id, outcome.org_id);
                        unrecorded.push(outcome);
                    }
                }
                _ = recorded => recorder = None,
                _ = &mut shutdown, if !stopping => stopping = true,
                _ = tokio::time::sleep(self.settings.poll), if !stopping => {}
                _ = self.services.webhook_event_committed(), if !stopping => {}
            }
        }
    }

    /// Leases up to `room` due deliveries, keeping each endpoint and each organization within
    /// its share (`busy`: the attempts running).
    async fn claim(
        &self,
        room: usize,
        busy: &InFlight,
    ) -> Result<Vec<DueDelivery>, crate::service::Error> {
        if self.services.settings.webhooks.sealing.is_none() {
            return Ok(Vec::new());
        }
        // Twice the attempt timeout: an attempt that outlives it was cut short.
        let lease = self.settings.timeout * 2;
        let until = Timestamp::now().as_datetime()
            + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
        self.services
            .claim_webhook_deliveries(
                Shares {
                    per_endpoint: self.settings.per_endpoint as u64,
                    per_organization: self.settings.per_organization as u64,
                },
                room as u64,
                until,
                busy,
            )
            .await
    }

    async fn sweep(&self) {
        let before = Timestamp::now().as_datetime()
            - chrono::Duration::from_std(self.settings.retention)
                .unwrap_or(chrono::Duration::days(30));
        match self.services.purge_webhook_events(before, 1000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(n, "purged finished webhook events"),
            Err(err) => tracing::warn!(%err, "purging webhook events failed"),
        }
    }
}

/// One attempt, and what to record of it.
async fn attempt(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    due: DueDelivery,
) -> Outcome {
    let result = send(client, settings, &due).await;
    let counted = match &result {
        AttemptResult::Delivered { .. } => "delivered",
        AttemptResult::Refused { .. } => "refused",
        AttemptResult::Gone => "gone",
    };
    metrics::counter!("agentmessage_webhook_attempts_total", "result" => counted).increment(1);
    let retry_at = match &result {
        AttemptResult::Refused { retry_after, .. } => {
            let failures = (due.attempts + 1).saturating_sub(due.schedule_base);
            next_wait(
                &settings.schedule,
                failures,
                *retry_after,
                settings.retry_after_floor,
            )
            .map(|wait| {
                Timestamp::now().as_datetime()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1))
            })
        }
        _ => None,
    };
    if let AttemptResult::Refused { status, error, .. } = &result {
        tracing::debug!(delivery = %due.id, ?status, ?error, "webhook attempt refused");
    }
    Outcome {
        id: due.id,
        endpoint_id: due.endpoint_id,
        org_id: due.org_id,
        result,
        retry_at,
    }
}

async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    due: &DueDelivery,
) -> AttemptResult {
    let refused = |error: String| AttemptResult::Refused {
        status: None,
        error: Some(error),
        retry_after: None,
    };
    if let Some(fault) = &due.fault {
        return refused(fault.clone());
    }
    if !settings.allow_private {
        if let Some(why) = literal_forbidden(&due.url) {
            return refused(why);
        }
    }
    let id = due.event_id.to_string();
    let timestamp = Timestamp::now().as_datetime().timestamp();
    let secrets: Vec<&str> = due.secrets.iter().map(String::as_str).collect();
    let Some(signature) = signature_header(&secrets, &id, timestamp, &due.payload) else {
        return refused("the endpoint's signing secret is malformed".into());
    };
    let sent = client
        .post(&due.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(due.payload.clone())
        .timeout(settings.timeout)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // The body is not read: the status is the answer.
            drop(response);
            match status {
                200..=299 => AttemptResult::Delivered { status },
                410 => AttemptResult::Gone,
                _ => AttemptResult::Refused {
                    status: Some(status),
                    error: None,
                    retry_after,
                },
            }
        }
        Err(err) => refused(describe(&err, settings.timeout)),
    }
}

/// Why an address literal may not be reached, if it may not.
pub(crate) fn literal_forbidden(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let ip: std::net::IpAddr = match parsed.host()? {
        url::Host::Ipv4(ip) => ip.into(),
        url::Host::Ipv6(ip) => ip.into(),
        url::Host::Domain(_) => return None,
    };
    refused_destination(ip).map(|why| Blocked(ip, why).to_string())
}

/// Whether a TLS error is among `err`'s causes (an I/O error holds its cause inside it, not as
/// its source).
fn holds_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    if err.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    let inner = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| holds_tls_error(inner));
    inner || err.source().is_some_and(holds_tls_error)
}

/// What a client is told about an attempt that got no answer.
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return blocked.to_string();
        }
        source = e.source();
    }
    // Coarse classes only: a refused connection and one that times out read the same, so
    // that the errors cannot tell a closed port from a filtered one.
    if err.is_connect() {
        if holds_tls_error(err) {
            return "the TLS handshake failed".into();
        }
        "the connection could not be made".into()
    } else if err.is_timeout() {
        format!("no answer within {}", humantime::format_duration(timeout))
    } else {
        "the request could not be sent".into()
    }
}
