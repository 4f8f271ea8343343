//! One SMPP session: bind as transceiver, keep it (enquire_link both ways, answered by rusmppc),
//! rebind with exponential backoff and jitter after any loss, answer the SMSC's unbind, and at
//! shutdown stop submitting, wait (bounded) for outstanding responses and unbind. Every
//! `deliver_sm` is handed to [`Inbound`] and answered.

use std::{
    str::FromStr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures_util::StreamExt;
use rand::Rng;
use rusmpp::{
    pdus::{BindTransceiver, DeliverSm, DeliverSmResp},
    types::COctetString,
    values::{InterfaceVersion, Npi, Ton},
    Command, CommandStatus, Pdu,
};
use rusmppc::{Client, ConnectionBuilder, Event};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::{
    pdu::{read_deliver_sm, Delivered},
    SmppSettings,
};
use crate::{
    domain::{
        submission::{PartAdded, PartLimits, PartSet},
        PhoneNumber,
    },
    service::{self, receipts::Receipt, Services},
};

/// A session's state, shared with the submitters.
pub(super) struct Session {
    index: u32,
    client: Mutex<Option<Client>>,
    /// Outstanding `submit_sm`.
    window: Arc<Semaphore>,
    window_size: u32,
    limiter: Option<governor::DefaultDirectRateLimiter>,
    /// No submission before this (the SMSC throttled the session).
    paused_until: Mutex<tokio::time::Instant>,
    /// Shutting down: no new submission.
    closing: AtomicBool,
    /// `submit_sm` handed to the connection and not answered yet.
    in_flight: Arc<Outstanding>,
}

impl Session {
    pub(super) fn new(index: u32, settings: &SmppSettings) -> Session {
        let window_size = settings.window.max(1);
        let limiter = std::num::NonZeroU32::new(settings.throughput)
            .map(|rate| governor::RateLimiter::direct(governor::Quota::per_second(rate)));
        Session {
            index,
            client: Mutex::new(None),
            window: Arc::new(Semaphore::new(window_size as usize)),
            window_size,
            limiter,
            paused_until: Mutex::new(tokio::time::Instant::now()),
            closing: AtomicBool::new(false),
            in_flight: Arc::default(),
        }
    }

    fn lock_client(&self) -> std::sync::MutexGuard<'_, Option<Client>> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bound and taking submissions.
    pub(super) fn is_bound(&self) -> bool {
        !self.closing.load(Ordering::Acquire) && self.lock_client().is_some()
    }

    /// Waits for room in the window, the end of a throttling pause and the submit rate; then the
    /// client to submit on, or `None` when the session is not bound (nothing was sent).
    pub(super) async fn ready_to_submit(&self) -> Option<(Client, OwnedSemaphorePermit)> {
        let permit = self.window.clone().acquire_owned().await.ok()?;
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            if until <= tokio::time::Instant::now() {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let client = self.lock_client().clone()?;
        if self.closing.load(Ordering::Acquire) || !client.is_active() {
            return None;
        }
        Some((client, permit))
    }

    /// Counts a `submit_sm` in flight until the guard is dropped, and wakes the connection's
    /// poller so that it takes the request now.
    pub(super) fn in_flight(&self) -> InFlight {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        self.in_flight.poller.wake();
        InFlight(self.in_flight.clone())
    }

    /// Submits nothing for `pause` (the SMSC throttled the session).
    pub(super) fn slow_down(&self, pause: Duration) {
        let mut until = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        *until = (*until).max(tokio::time::Instant::now() + pause);
    }

    fn set_client(&self, client: Option<Client>) {
        *self.lock_client() = client;
    }
}

/// The `submit_sm` in flight on one session, and the waker of the task that polls its
/// connection.
#[derive(Default)]
pub(super) struct Outstanding {
    count: AtomicUsize,
    /// Polls still owed after another request (a `deliver_sm_resp`, an `unbind_resp`) was handed
    /// to the client.
    kicks: AtomicUsize,
    poller: futures_util::task::AtomicWaker,
}

impl Outstanding {
    /// Makes the connection take a request just handed to the client: rusmppc does not wake its
    /// connection for a queued request, so it is polled every millisecond for a little while.
    fn kick(&self) {
        self.kicks.store(KICK_POLLS, Ordering::Release);
        self.poller.wake();
    }
}

/// How many times (a millisecond apart) the connection is polled after a kick.
const KICK_POLLS: usize = 50;

/// A `submit_sm` in flight, counted while it lives.
pub(super) struct InFlight(Arc<Outstanding>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection future of rusmppc, polled again every millisecond while submissions are in
/// flight. rusmppc 0.4 takes at most five requests from its queue per poll and can then wait
/// for its next wake-up (an incoming PDU or its enquire_link timer) with requests still queued:
/// with a full window that stalled submissions for up to the enquire_link interval.
struct Nudged<F> {
    connection: std::pin::Pin<Box<F>>,
    in_flight: Arc<Outstanding>,
    nudge: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<F: std::future::Future<Output = ()>> std::future::Future for Nudged<F> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        // A request written while the connection waits for nothing else wakes it here: rusmppc
        // does not wake its connection for a queued request.
        self.in_flight.poller.register(cx.waker());
        if self.connection.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(());
        }
        let kicked = self
            .in_flight
            .kicks
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |k| k.checked_sub(1))
            .is_ok();
        if kicked || self.in_flight.count.load(Ordering::Acquire) > 0 {
            let at = tokio::time::Instant::now() + Duration::from_millis(1);
            self.nudge.as_mut().reset(at);
            // Registers the timer's wake-up.
            let _ = self.nudge.as_mut().poll(cx);
        }
        std::task::Poll::Pending
    }
}

/// Connects and binds as a transceiver, SMPP 3.4.
async fn bind(
    settings: &SmppSettings,
    in_flight: Arc<Outstanding>,
) -> anyhow::Result<(Client, impl futures_util::Stream<Item = Event> + Unpin)> {
    let scheme = if settings.tls { "smpps" } else { "smpp" };
    let url = format!("{scheme}://{}", settings.address);
    let mut builder = ConnectionBuilder::new();
    if let (true, Some(path)) = (settings.tls, &settings.tls_ca) {
        builder = builder.rustls_config(tls_config(path)?);
    }
    let connect = builder
        .enquire_link_interval(settings.enquire_link)
        .enquire_link_response_timeout(settings.response_timeout)
        .response_timeout(settings.response_timeout)
        // rusmppc speaks SMPP 5 by default; AgentMessage binds as 3.4.
        .disable_interface_version_check()
        .no_spawn()
        .connect(url);
    let (client, events, connection) = tokio::time::timeout(settings.response_timeout, connect)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "connecting took longer than {:?}",
                settings.response_timeout
            )
        })??;
    tokio::spawn(Nudged {
        connection: Box::pin(connection),
        in_flight,
        nudge: Box::pin(tokio::time::sleep(Duration::ZERO)),
    });
    let bind = BindTransceiver::builder()
        .system_id(c_text(&settings.system_id, "system id")?)
        .password(c_text(&settings.password, "password")?)
        .system_type(c_text(&settings.system_type, "system type")?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .addr_ton(Ton::Unknown)
        .addr_npi(Npi::Unknown)
        .address_range(COctetString::empty())
        .build();
    if let Err(err) = client.bind_transceiver(bind).await {
        let _ = client.close().await;
        return Err(anyhow::anyhow!("bind_transceiver: {err}"));
    }
    Ok((client, events))
}

/// A TLS configuration that trusts the CA certificates of the PEM file at `path` (and only them).
fn tls_config(path: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("--smpp-tls-ca {}: {e}", path.display()))?
    {
        let cert = cert.map_err(|e| anyhow::anyhow!("--smpp-tls-ca {}: {e}", path.display()))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        anyhow::bail!("--smpp-tls-ca {} holds no certificate", path.display());
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A bind field, at most `N - 1` characters.
fn c_text<const N: usize>(value: &str, what: &str) -> anyhow::Result<COctetString<1, N>> {
    COctetString::from_str(value).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// The pause before the next bind: `backoff` with up to a quarter of it added or taken away.
fn jittered(backoff: Duration) -> Duration {
    let quarter = backoff / 4;
    let spread = rand::rng().random_range(0..=quarter.as_millis() as u64 * 2);
    (backoff - quarter) + Duration::from_millis(spread)
}

/// Keeps `session` bound until `stop` says so.
pub(super) async fn run(
    session: Arc<Session>,
    settings: SmppSettings,
    inbound: Inbound,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = settings.reconnect_min;
    loop {
        if *stop.borrow() {
            return;
        }
        let bound = tokio::select! {
            bound = bind(&settings, session.in_flight.clone()) => bound,
            _ = stop.changed() => return,
        };
        match bound {
            Ok((client, mut events)) => {
                tracing::info!(session = session.index, address = %settings.address, "SMPP session bound");
                backoff = settings.reconnect_min;
                session.set_client(Some(client.clone()));
                let stopping = loop {
                    tokio::select! {
                        event = events.next() => match event {
                            None => break false,
                            Some(event) => handle(&client, &session.in_flight, &inbound, event),
                        },
                        _ = stop.changed() => break true,
                    }
                };
                if stopping {
                    close(&session, &settings, &client, &inbound, &mut events).await;
                    return;
                }
                session.set_client(None);
                tracing::warn!(session = session.index, "SMPP session lost; binding again");
            }
            Err(err) => {
                tracing::warn!(session = session.index, address = %settings.address, %err, "SMPP bind failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(jittered(backoff)) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(settings.reconnect_max.max(settings.reconnect_min));
    }
}

/// Stops submitting, waits (bounded) for the outstanding responses while still answering the
/// SMSC, then unbinds and closes.
async fn close(
    session: &Session,
    settings: &SmppSettings,
    client: &Client,
    inbound: &Inbound,
    events: &mut (impl futures_util::Stream<Item = Event> + Unpin),
) {
    session.closing.store(true, Ordering::Release);
    let drained = session
        .window
        .clone()
        .acquire_many_owned(session.window_size);
    tokio::pin!(drained);
    let deadline = tokio::time::sleep(settings.close_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut drained => break,
            _ = &mut deadline => {
                tracing::warn!(session = session.index, "SMPP responses still outstanding at shutdown");
                break;
            }
            event = events.next() => match event {
                None => break,
                Some(event) => handle(client, &session.in_flight, inbound, event),
            },
        }
    }
    session.set_client(None);
    if tokio::time::timeout(settings.response_timeout, client.unbind())
        .await
        .is_err()
    {
        tracing::warn!(session = session.index, "the SMSC did not answer unbind");
    }
    let _ = client.close_and_wait().await;
    tracing::info!(session = session.index, "SMPP session unbound");
}

/// Acts on one event of the session.
fn handle(client: &Client, outstanding: &Arc<Outstanding>, inbound: &Inbound, event: Event) {
    match event {
        Event::Incoming(command) => incoming(client, outstanding, inbound, command),
        Event::Error(err) => tracing::warn!(%err, "SMPP session error"),
    }
}

fn incoming(client: &Client, outstanding: &Arc<Outstanding>, inbound: &Inbound, command: Command) {
    let sequence = command.sequence_number();
    match command.pdu() {
        Some(Pdu::DeliverSm(pdu)) => {
            let (client, inbound, pdu) = (client.clone(), inbound.clone(), pdu.clone());
            let outstanding = outstanding.clone();
            tokio::spawn(async move {
                // Answered once it is stored; a database failure asks the SMSC to deliver it
                // again rather than lose it.
                let status = match inbound.handle(&pdu).await {
                    Ok(status) => status,
                    Err(err) => {
                        tracing::error!(%err, "a deliver_sm could not be stored; the SMSC will deliver it again");
                        CommandStatus::EsmeRxTAppn
                    }
                };
                let answer = client
                    .status(status)
                    .deliver_sm_resp(sequence, DeliverSmResp::default());
                outstanding.kick();
                if let Err(err) = answer.await {
                    tracing::warn!(%err, "deliver_sm_resp could not be sent");
                }
            });
        }
        Some(Pdu::Unbind) => {
            let client = client.clone();
            let outstanding = outstanding.clone();
            tokio::spawn(async move {
                tracing::info!("the SMSC unbound the session");
                let answer = client.unbind_resp(sequence);
                outstanding.kick();
                let _ = answer.await;
                let _ = client.close().await;
            });
        }
        // enquire_link is answered by rusmppc; responses to our requests never reach here.
        _ => tracing::debug!(id = ?command.id(), "SMPP command ignored"),
    }
}

/// Where `deliver_sm` go: receipts to the receipt path, messages to the inbound path — a part
/// of a concatenated message is stored first (so an answered part survives a restart) and the
/// message once it is whole.
#[derive(Clone)]
pub(super) struct Inbound {
    services: Services,
    carrier: String,
    timeout: Duration,
    limits: PartLimits,
}

impl Inbound {
    pub(super) fn new(services: Services, carrier: String, settings: &SmppSettings) -> Inbound {
        Inbound {
            services,
            carrier,
            timeout: settings.reassembly_timeout,
            limits: PartLimits {
                sets: settings.reassembly_max_sets,
                bytes: settings.reassembly_max_bytes,
            },
        }
    }

    /// Handles one `deliver_sm`; the status to answer it with.
    async fn handle(&self, pdu: &DeliverSm) -> Result<CommandStatus, service::Error> {
        match read_deliver_sm(pdu) {
            Delivered::Receipt {
                id,
                stat,
                err,
                done_date,
            } => {
                let receipt = Receipt {
                    carrier_message_id: id,
                    stat,
                    err,
                    done_date,
                };
                self.services.record_receipt(&self.carrier, receipt).await?;
                Ok(CommandStatus::EsmeRok)
            }
            Delivered::Message {
                from,
                to,
                text,
                part,
            } => {
                let Some(at) = part.filter(|at| at.total > 1) else {
                    self.store(&from, &to, text, None).await?;
                    return Ok(CommandStatus::EsmeRok);
                };
                if at.sequence == 0 || at.sequence > at.total {
                    tracing::warn!(
                        from,
                        to,
                        part = at.sequence,
                        total = at.total,
                        "a deliver_sm part numbered outside its message was dropped"
                    );
                    return Ok(CommandStatus::EsmeRok);
                }
                let set = PartSet {
                    carrier: self.carrier.clone(),
                    sender: from.clone(),
                    recipient: to.clone(),
                    reference: at.reference,
                    total: at.total,
                };
                let now = crate::domain::Timestamp::now().as_datetime();
                match self
                    .services
                    .add_inbound_part(&set, at.sequence, &text, self.limits, now)
                    .await?
                {
                    PartAdded::Waiting => Ok(CommandStatus::EsmeRok),
                    PartAdded::Full => {
                        tracing::warn!(
                            carrier = self.carrier,
                            "inbound parts waiting are at their limit; the SMSC is asked to deliver this part again"
                        );
                        Ok(CommandStatus::EsmeRxTAppn)
                    }
                    PartAdded::Complete { texts, first } => {
                        // The id makes a second storing (a restart between the two steps) a
                        // redelivery the inbound path drops.
                        let id = format!("concat-{first}");
                        self.store(&from, &to, texts.concat(), Some(id)).await?;
                        self.services.remove_inbound_parts(&set).await?;
                        Ok(CommandStatus::EsmeRok)
                    }
                }
            }
        }
    }

    /// Stores one message from a recipient through the inbound path (keywords, consent).
    async fn store(
        &self,
        from: &str,
        to: &str,
        text: String,
        carrier_message_id: Option<String>,
    ) -> Result<(), service::Error> {
        let (Some(from), Some(to)) = (PhoneNumber::parse(from), PhoneNumber::parse(to)) else {
            tracing::warn!(
                from,
                to,
                "a deliver_sm with an address that is not E.164 was dropped"
            );
            return Ok(());
        };
        let inbound = service::inbound::Inbound {
            from,
            to,
            text,
            carrier_message_id,
            media: Vec::new(),
            carrier: None,
        };
        match self.services.receive_inbound(inbound).await {
            Ok(_) => Ok(()),
            Err(service::Error::Validation(errors)) => {
                tracing::warn!(
                    ?errors,
                    "a deliver_sm for a number no organization owns was dropped"
                );
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Stores the messages whose parts did not all arrive within the timeout, each part as it
    /// is (a set found whole — stored before a restart cut the removal short — as one message).
    pub(super) async fn expire_parts(self, mut stop: watch::Receiver<bool>) {
        let every = (self.timeout / 4).max(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let before = crate::domain::Timestamp::now().as_datetime()
                - chrono::Duration::from_std(self.timeout).unwrap_or(chrono::Duration::minutes(1));
            let stale = match self
                .services
                .stale_inbound_parts(&self.carrier, before)
                .await
            {
                Ok(stale) => stale,
                Err(err) => {
                    tracing::warn!(%err, "waiting inbound parts could not be read");
                    continue;
                }
            };
            for (set, parts) in stale {
                if let Err(err) = self.give_up(&set, parts).await {
                    tracing::error!(%err, "an incomplete inbound message could not be stored");
                }
            }
        }
    }

    async fn give_up(
        &self,
        set: &PartSet,
        parts: Vec<(uuid::Uuid, u8, String)>,
    ) -> Result<(), service::Error> {
        let whole = parts.len() == usize::from(set.total)
            && parts.iter().zip(1..).all(|((_, n, _), m): (_, u8)| *n == m);
        if whole {
            let first = parts.iter().map(|(id, _, _)| *id).min().unwrap_or_default();
            let text: String = parts.into_iter().map(|(_, _, t)| t).collect();
            self.store(
                &set.sender,
                &set.recipient,
                text,
                Some(format!("concat-{first}")),
            )
            .await?;
        } else {
            for (id, _, text) in parts {
                self.store(
                    &set.sender,
                    &set.recipient,
                    text,
                    Some(format!("part-{id}")),
                )
                .await?;
            }
        }
        self.services.remove_inbound_parts(set).await?;
        Ok(())
    }
}
