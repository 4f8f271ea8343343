//! The SMPP 3.4 carrier: `--smpp-binds` transceiver sessions to an SMSC, each with a window of
//! outstanding `submit_sm` and an optional submit rate; a text of several segments goes as one
//! `submit_sm` per part under a concatenation header. Receipts and messages from recipients
//! arrive as `deliver_sm` and go through the same paths as the carrier callbacks. The protocol
//! (PDU encoding, sequence numbers, enquire_link) is rusmpp's and rusmppc's.

pub mod pdu;
mod session;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use rusmppc::{error::Error as SmppError, Client};

use self::{
    pdu::{refusal, status_name, Refusal, SubmitDefaults},
    session::Session,
};
use super::carrier::{Capabilities, Carrier, CarrierHealth, Room, Submission, SubmitError};
use crate::{domain::message::Part, service::Services};

pub use pdu::Addressing;

/// How the SMPP carrier connects and paces itself.
#[derive(Clone)]
pub struct SmppSettings {
    /// `HOST:PORT` of the SMSC.
    pub address: String,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    /// Connect over TLS.
    pub tls: bool,
    /// A PEM file of the CA certificates that verify the SMSC instead of the system's roots.
    pub tls_ca: Option<std::path::PathBuf>,
    /// Sessions this process binds.
    pub binds: u32,
    /// Outstanding `submit_sm` per session.
    pub window: u32,
    /// `submit_sm` per second per session; 0 = unlimited.
    pub throughput: u32,
    pub enquire_link: Duration,
    pub response_timeout: Duration,
    /// Reconnect backoff: first pause, and the most it doubles to (with jitter).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// How long a session submits nothing after the SMSC throttled it.
    pub throttle_pause: Duration,
    /// How long the parts of an inbound concatenated message are waited for.
    pub reassembly_timeout: Duration,
    /// Most inbound messages waiting for parts, and bytes of their text, per carrier; a part
    /// past either is answered with a temporary error so the SMSC delivers it again.
    pub reassembly_max_sets: u64,
    pub reassembly_max_bytes: u64,
    /// How long closing waits for outstanding responses before it unbinds.
    pub close_timeout: Duration,
    pub source: Addressing,
    pub destination: Addressing,
}

impl std::fmt::Debug for SmppSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppSettings")
            .field("address", &self.address)
            .field("system_id", &self.system_id)
            .field("password", &"<hidden>")
            .field("tls", &self.tls)
            .field("tls_ca", &self.tls_ca)
            .field("binds", &self.binds)
            .field("window", &self.window)
            .field("throughput", &self.throughput)
            .finish_non_exhaustive()
    }
}

impl SmppSettings {
    /// The settings' defaults for an SMSC at `address`.
    pub fn new(address: impl Into<String>, system_id: impl Into<String>) -> SmppSettings {
        use crate::defaults::{self, duration};
        SmppSettings {
            address: address.into(),
            system_id: system_id.into(),
            password: String::new(),
            system_type: String::new(),
            tls: false,
            tls_ca: None,
            binds: defaults::SMPP_BINDS,
            window: defaults::SMPP_WINDOW,
            throughput: defaults::SMPP_THROUGHPUT,
            enquire_link: duration(defaults::SMPP_ENQUIRE_LINK),
            response_timeout: duration(defaults::SMPP_RESPONSE_TIMEOUT),
            reconnect_min: duration(defaults::SMPP_RECONNECT_MIN),
            reconnect_max: duration(defaults::SMPP_RECONNECT_MAX),
            throttle_pause: duration(defaults::SMPP_THROTTLE_PAUSE),
            reassembly_timeout: duration(defaults::SMPP_REASSEMBLY_TIMEOUT),
            reassembly_max_sets: defaults::SMPP_REASSEMBLY_MAX_SETS,
            reassembly_max_bytes: defaults::SMPP_REASSEMBLY_MAX_BYTES,
            close_timeout: duration(defaults::SMPP_CLOSE_TIMEOUT),
            source: Addressing {
                ton: defaults::SMPP_SOURCE_TON,
                npi: defaults::SMPP_SOURCE_NPI,
            },
            destination: Addressing {
                ton: defaults::SMPP_DEST_TON,
                npi: defaults::SMPP_DEST_NPI,
            },
        }
    }

    fn defaults(&self) -> SubmitDefaults {
        SubmitDefaults {
            source: self.source,
            destination: self.destination,
        }
    }
}

/// The SMPP carrier.
pub struct SmppCarrier {
    name: String,
    settings: SmppSettings,
    sessions: Vec<Arc<Session>>,
    next: AtomicUsize,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl SmppCarrier {
    /// Starts `settings.binds` sessions (each binds, and rebinds after any loss, in the
    /// background); receipts and inbound messages go to `services` under the carrier name
    /// `name`.
    pub fn start(services: Services, name: &str, settings: SmppSettings) -> Arc<SmppCarrier> {
        // Several crates of the build enable rustls's crypto back ends, so rustls needs the
        // process's choice before a TLS session is made (it is made at most once).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (stop, _) = tokio::sync::watch::channel(false);
        let inbound = session::Inbound::new(services, name.to_owned(), &settings);
        let sessions: Vec<Arc<Session>> = (0..settings.binds.max(1))
            .map(|index| Arc::new(Session::new(index, &settings)))
            .collect();
        let mut tasks = Vec::new();
        for session in &sessions {
            tasks.push(tokio::spawn(session::run(
                session.clone(),
                settings.clone(),
                inbound.clone(),
                stop.subscribe(),
            )));
        }
        tasks.push(tokio::spawn(inbound.clone().expire_parts(stop.subscribe())));
        Arc::new(SmppCarrier {
            name: name.to_owned(),
            settings,
            sessions,
            next: AtomicUsize::new(0),
            stop,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// A bound session, taking turns.
    fn pick(&self) -> Option<&Arc<Session>> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.sessions[(start + i) % n])
            .find(|s| s.is_bound())
    }
}

impl SmppCarrier {
    /// The `submit_sm` of one part, or why it cannot be written (nothing is sent).
    fn pdu_of(
        &self,
        submission: &Submission,
        part: &Part,
    ) -> Result<rusmpp::pdus::SubmitSm, SubmitError> {
        if !submission.media_urls.is_empty() {
            return Err(SubmitError::Refused {
                code: "MMS_NOT_SUPPORTED".into(),
                message: "SMPP cannot carry MMS".into(),
            });
        }
        let now = chrono::Utc::now();
        if submission.valid_until <= now {
            return Err(SubmitError::Deferred {
                code: "EXPIRED".into(),
                message: "the validity period ran out before submission".into(),
            });
        }
        pdu::submit_sm(&self.settings.defaults(), submission, part, now).map_err(|e| {
            SubmitError::Refused {
                code: "UNWRITABLE".into(),
                message: e.0,
            }
        })
    }

    /// Writes `pdu` on the session of `room` and reads its answer.
    async fn write(
        &self,
        pdu: rusmpp::pdus::SubmitSm,
        room: &SessionRoom,
    ) -> Result<String, SubmitError> {
        let (session, client) = (&room.session, room.client.clone());
        // rusmppc times the response out on its connection; should the connection itself stall,
        // this bound still ends the wait (the part may have been sent).
        let bound = self.settings.response_timeout + Duration::from_secs(1);
        let _in_flight = session.in_flight();
        let answer = tokio::time::timeout(
            bound,
            client
                .response_timeout(self.settings.response_timeout)
                .submit_sm(pdu),
        )
        .await;
        let Ok(answer) = answer else {
            return Err(SubmitError::Uncertain(format!(
                "no submit_sm_resp within {bound:?}"
            )));
        };
        match answer {
            Ok(resp) => Ok(resp.message_id().as_str().to_owned()),
            Err(SmppError::UnexpectedResponse { response }) => {
                let status = response.status();
                let code = status_name(status);
                match refusal(status) {
                    Refusal::Temporary => {
                        session.slow_down(self.settings.throttle_pause);
                        Err(SubmitError::Deferred {
                            code,
                            message: "the SMSC refused the part for now".into(),
                        })
                    }
                    Refusal::Permanent => Err(SubmitError::Refused {
                        code,
                        message: "the SMSC refused the part".into(),
                    }),
                }
            }
            Err(SmppError::Encode(e)) => Err(SubmitError::Refused {
                code: "UNWRITABLE".into(),
                message: e.to_string(),
            }),
            Err(SmppError::ResponseTimeout { timeout, .. }) => Err(SubmitError::Uncertain(
                format!("no submit_sm_resp within {timeout:?}"),
            )),
            Err(other) => Err(SubmitError::Uncertain(format!(
                "the session was lost while the submit_sm was outstanding: {other}"
            ))),
        }
    }
}

/// SMPP carries text only: an MMS is refused before it is queued.
pub const CAPABILITIES: Capabilities = Capabilities { mms: false };

/// The error of a submission that found no bound session with room: nothing was sent.
fn not_bound() -> SubmitError {
    SubmitError::Deferred {
        code: "NOT_BOUND".into(),
        message: "no SMPP session is bound".into(),
    }
}

/// Room in one session's window: the session, its client and the window place.
struct SessionRoom {
    session: Arc<Session>,
    client: Client,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

#[async_trait]
impl Carrier for SmppCarrier {
    fn name(&self) -> &str {
        &self.name
    }

    fn part_count(&self, submission: &Submission) -> u8 {
        // One submit_sm per segment the API reported.
        let segments = crate::domain::text::split_segments(&submission.text).len();
        u8::try_from(segments).unwrap_or(u8::MAX)
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "smpp",
            sessions: u32::try_from(self.sessions.len()).unwrap_or(u32::MAX),
            bound: u32::try_from(self.sessions.iter().filter(|s| s.is_bound()).count())
                .unwrap_or(u32::MAX),
        }
    }

    async fn rooms(&self, most: usize, wait: Duration) -> Vec<Room> {
        let mut rooms = Vec::with_capacity(most.min(self.sessions.len() * 64));
        let mut wait = wait;
        'fill: while rooms.len() < most {
            // Each bound session in turn: the first with room now gives it.
            for _ in 0..self.sessions.len() {
                let Some(session) = self.pick() else {
                    break 'fill;
                };
                // Bounded: nothing was sent yet. After the first, only room free at once.
                let ready = tokio::time::timeout(wait, session.ready_to_submit()).await;
                if let Ok(Some((client, permit))) = ready {
                    rooms.push(Room::holding(SessionRoom {
                        session: session.clone(),
                        client,
                        _permit: permit,
                    }));
                    wait = Duration::ZERO;
                    continue 'fill;
                }
            }
            break;
        }
        rooms
    }

    async fn submit_in(
        &self,
        submission: &Submission,
        part: &Part,
        room: Room,
    ) -> (Result<String, SubmitError>, Room) {
        let pdu = match self.pdu_of(submission, part) {
            Ok(pdu) => pdu,
            Err(err) => return (Err(err), room),
        };
        let room = match room.take::<SessionRoom>() {
            Some(room) => room,
            None => {
                // Waiting for room in the window is bounded too: nothing was sent yet.
                let wait = self.settings.response_timeout;
                match self.rooms(1, wait).await.pop().and_then(Room::take) {
                    Some(room) => room,
                    None => return (Err(not_bound()), Room::any()),
                }
            }
        };
        let result = self.write(pdu, &room).await;
        (result, Room::holding(room))
    }

    async fn close(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }
}
