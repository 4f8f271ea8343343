//! A controllable SMSC for the fault tests, built on rusmpp's codec: it binds any transceiver,
//! records every `submit_sm`, answers each as its script says (accept, refuse with a status, stay
//! silent, or send the receipt before the response), sends receipts for accepted parts, and can
//! unbind its sessions or restart (every connection dropped, the port closed for a while).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    str::FromStr,
    sync::{
        atomic::{AtomicU32, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use rusmpp::{
    pdus::{BindTransceiverResp, DeliverSm, SubmitSm, SubmitSmResp},
    tlvs::MessageDeliveryRequestTlvValue,
    tokio_codec::CommandCodec,
    types::{COctetString, OctetString},
    values::{EsmClass, MessageState},
    Command, CommandStatus, Pdu,
};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_util::codec::Framed;

/// How the SMSC answers one `submit_sm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `ESME_ROK` with a fresh id, then a DELIVRD receipt.
    Accept,
    /// This status, no id.
    Refuse(CommandStatus),
    /// No answer at all.
    Silent,
    /// The DELIVRD receipt first, the `submit_sm_resp` 100 ms later.
    ReceiptFirst,
}

/// A `submit_sm` as the SMSC saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub pdu: SubmitSm,
    pub answer: Answer,
    pub message_id: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<VecDeque<Answer>>,
    binds: AtomicUsize,
    /// The status of every deliver_sm_resp.
    answers: Mutex<Vec<CommandStatus>>,
    /// TLS handshakes that failed (a client that refused our certificate).
    failed_handshakes: AtomicUsize,
    next_id: AtomicU32,
    sessions: Mutex<Vec<mpsc::UnboundedSender<Command>>>,
    /// Receipts not answered yet, by sequence number: sent again after every bind, as an SMSC
    /// stores and forwards them.
    receipts: Mutex<std::collections::BTreeMap<u32, DeliverSm>>,
    next_sequence: AtomicU32,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The SMSC; stops when dropped.
pub struct Smsc {
    pub addr: SocketAddr,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Drop for Smsc {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Smsc {
    pub async fn start() -> Smsc {
        Self::start_with(None).await
    }

    /// An SMSC that speaks TLS with `acceptor`'s certificate.
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Smsc {
        Self::start_with(Some(acceptor)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Smsc {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            next_id: AtomicU32::new(0xA000),
            next_sequence: AtomicU32::new(0x7200_0000),
            ..Default::default()
        });
        let smsc = Smsc { addr, state, tls };
        smsc.serve(listener);
        smsc
    }

    fn serve(&self, listener: TcpListener) {
        let (state, tls) = (self.state.clone(), self.tls.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state2 = state.clone();
                let tls = tls.clone();
                let session = tokio::spawn(async move {
                    match tls {
                        None => session(state2, stream).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => session(state2, stream).await,
                            Err(_) => {
                                state2.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                    }
                });
                state.tasks.lock().unwrap().push(session);
            }
        });
        self.state.tasks.lock().unwrap().push(task);
    }

    /// The answers for the next `submit_sm`s, in order; after them, every one is accepted.
    pub fn script(&self, answers: &[Answer]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(answers.iter().copied());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The statuses the ESME answered our deliver_sm with, in order.
    pub fn deliver_answers(&self) -> Vec<CommandStatus> {
        self.state.answers.lock().unwrap().clone()
    }

    /// TLS handshakes that failed.
    pub fn failed_handshakes(&self) -> usize {
        self.state.failed_handshakes.load(Ordering::SeqCst)
    }

    pub fn binds(&self) -> usize {
        self.state.binds.load(Ordering::SeqCst)
    }

    /// Sends `pdu` on the first session.
    pub fn deliver(&self, pdu: DeliverSm) {
        let sessions = self.state.sessions.lock().unwrap();
        let session = sessions
            .iter()
            .find(|s| !s.is_closed())
            .expect("a bound session");
        session
            .send(Command::new(CommandStatus::EsmeRok, 0x7000_0000, pdu))
            .expect("session open");
    }

    /// Asks every session to unbind.
    pub fn unbind_all(&self) {
        for session in self.state.sessions.lock().unwrap().iter() {
            let _ = session.send(Command::new(
                CommandStatus::EsmeRok,
                0x7100_0000,
                Pdu::Unbind,
            ));
        }
    }

    /// Drops every connection and closes the port.
    pub fn stop(&self) {
        for task in self.state.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        self.state.sessions.lock().unwrap().clear();
    }

    /// Drops every connection, keeps the port closed for `down`, then listens again.
    pub async fn restart(&self, down: Duration) {
        self.stop();
        tokio::time::sleep(down).await;
        let listener = TcpListener::bind(self.addr).await.expect("bind again");
        self.serve(listener);
    }
}

/// A DELIVRD receipt for `id`, in the receipt text and (for even ids) the TLVs too.
pub fn receipt(to: &SubmitSm, id: &str, with_tlvs: bool) -> DeliverSm {
    let text = format!(
        "id:{id} sub:001 dlvrd:001 submit date:2611280000 done date:2611280001 stat:DELIVRD err:000 text:"
    );
    let mut builder = DeliverSm::builder()
        .source_addr(to.destination_addr.clone())
        .destination_addr(to.source_addr.clone())
        .esm_class(EsmClass::from(0x04))
        .short_message(OctetString::from_str(&text).unwrap());
    if with_tlvs {
        builder = builder
            .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
                COctetString::from_str(id).unwrap(),
            ))
            .push_tlv(MessageDeliveryRequestTlvValue::MessageState(
                MessageState::Delivered,
            ));
    }
    builder.build()
}

async fn session<S>(state: Arc<State>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let framed = Framed::new(stream, CommandCodec::new());
    let (mut sink, mut commands) = framed.split();
    let (out, mut outgoing) = mpsc::unbounded_channel::<Command>();
    state.sessions.lock().unwrap().push(out.clone());
    let writer = tokio::spawn(async move {
        while let Some(command) = outgoing.recv().await {
            if sink.send(command).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(command)) = commands.next().await {
        let sequence = command.sequence_number();
        let reply = |pdu: Pdu| Command::new(CommandStatus::EsmeRok, sequence, pdu);
        match command.pdu() {
            Some(Pdu::BindTransceiver(_)) => {
                state.binds.fetch_add(1, Ordering::SeqCst);
                let resp = BindTransceiverResp::builder()
                    .system_id(COctetString::from_str("smsc").unwrap())
                    .build();
                let _ = out.send(reply(resp.into()));
                let pending: Vec<(u32, DeliverSm)> = state
                    .receipts
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(s, r)| (*s, r.clone()))
                    .collect();
                for (sequence, receipt) in pending {
                    let _ = out.send(Command::new(CommandStatus::EsmeRok, sequence, receipt));
                }
            }
            Some(Pdu::EnquireLink) => {
                let _ = out.send(reply(Pdu::EnquireLinkResp));
            }
            Some(Pdu::Unbind) => {
                let _ = out.send(reply(Pdu::UnbindResp));
                break;
            }
            Some(Pdu::UnbindResp) => break,
            Some(Pdu::DeliverSmResp(_)) => {
                state.answers.lock().unwrap().push(command.status());
                state.receipts.lock().unwrap().remove(&sequence);
            }
            Some(Pdu::SubmitSm(pdu)) => {
                let answer = state
                    .script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Answer::Accept);
                let id = matches!(answer, Answer::Accept | Answer::ReceiptFirst)
                    .then(|| format!("{:X}", state.next_id.fetch_add(1, Ordering::SeqCst)));
                state.seen.lock().unwrap().push(Seen {
                    pdu: (*pdu).clone(),
                    answer,
                    message_id: id.clone(),
                });
                let resp = move |status: CommandStatus, id: &str| {
                    Command::new(
                        status,
                        sequence,
                        SubmitSmResp::builder()
                            .message_id(COctetString::from_str(id).unwrap())
                            .build(),
                    )
                };
                match answer {
                    Answer::Accept => {
                        let id = id.unwrap();
                        let _ = out.send(resp(CommandStatus::EsmeRok, &id));
                        let with_tlvs = u32::from_str_radix(&id, 16).unwrap() % 2 == 0;
                        let receipt = receipt(pdu, &id, with_tlvs);
                        let sequence = state.next_sequence.fetch_add(1, Ordering::SeqCst);
                        state
                            .receipts
                            .lock()
                            .unwrap()
                            .insert(sequence, receipt.clone());
                        let out = out.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let _ =
                                out.send(Command::new(CommandStatus::EsmeRok, sequence, receipt));
                        });
                    }
                    Answer::ReceiptFirst => {
                        let id = id.unwrap();
                        let _ = out.send(Command::new(
                            CommandStatus::EsmeRok,
                            0x7300_0000,
                            receipt(pdu, &id, true),
                        ));
                        let out = out.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let _ = out.send(resp(CommandStatus::EsmeRok, &id));
                        });
                    }
                    Answer::Refuse(status) => {
                        let _ = out.send(resp(status, ""));
                    }
                    Answer::Silent => {}
                }
            }
            _ => {}
        }
    }
    writer.abort();
}
