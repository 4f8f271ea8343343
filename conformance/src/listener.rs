//! `--webhook-listen`: an HTTP receiver the suite registers as a webhook endpoint, to check the
//! events of its own requests — their Standard Webhooks signatures and their order.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One delivery the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
    /// When it arrived, RFC 3339 (for the run's evidence).
    pub received: String,
}

/// The receiver: answers 204 to every request and keeps what it got. It runs on a runtime of
/// its own (the suite itself is synchronous), on poem.
pub struct Listener {
    pub url: String,
    got: Arc<Mutex<Vec<Got>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Listener {
    /// Listens on `addr`, which the deployment must be able to reach.
    pub fn start(addr: SocketAddr) -> anyhow::Result<Listener> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("listening on {addr} for webhooks: {e}"))?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let kept = got.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let endpoint = poem::endpoint::make(move |mut request: poem::Request| {
                    let kept = kept.clone();
                    async move {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let (id, timestamp, signature) = (
                            header("webhook-id"),
                            header("webhook-timestamp"),
                            header("webhook-signature"),
                        );
                        let body = request.take_body().into_string().await.unwrap_or_default();
                        kept.lock().unwrap_or_else(|e| e.into_inner()).push(Got {
                            id,
                            timestamp,
                            signature,
                            body,
                            at: std::time::Instant::now(),
                            received:
                                humantime::format_rfc3339_millis(std::time::SystemTime::now())
                                    .to_string(),
                        });
                        poem::http::StatusCode::NO_CONTENT
                    }
                });
                let Ok(acceptor) = poem::listener::TcpAcceptor::from_std(listener) else {
                    return;
                };
                let _ = poem::Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(
                        endpoint,
                        async {
                            let _ = stopped.await;
                        },
                        None,
                    )
                    .await;
            });
        });
        Ok(Listener {
            url: format!("http://{bound}/agentmessage-conformance/webhooks"),
            got,
            stop: Some(stop),
        })
    }

    /// Everything received so far, in arrival order.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Whether one of the `webhook-signature` entries is the `v1` HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under one of `secrets` (Standard Webhooks).
pub fn signature_verifies(got: &Got, secrets: &[String]) -> bool {
    let content = format!("{}.{}.{}", got.id, got.timestamp, got.body);
    secrets.iter().any(|secret| {
        let Ok(key) = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)) else {
            return false;
        };
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
            return false;
        };
        mac.update(content.as_bytes());
        got.signature.split(' ').any(|entry| {
            entry
                .strip_prefix("v1,")
                .and_then(|sig| STANDARD.decode(sig).ok())
                .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
        })
    })
}
