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
}

/// The receiver: answers 204 to every POST and keeps what it got.
pub struct Listener {
    pub url: String,
    got: Arc<Mutex<Vec<Got>>>,
    server: Arc<tiny_http::Server>,
}

impl Listener {
    /// Listens on `addr`, which the deployment must be able to reach.
    pub fn start(addr: SocketAddr) -> anyhow::Result<Listener> {
        let server = Arc::new(
            tiny_http::Server::http(addr)
                .map_err(|e| anyhow::anyhow!("listening on {addr} for webhooks: {e}"))?,
        );
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("the webhook listener has no IP address"))?;
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let (serving, kept) = (server.clone(), got.clone());
        std::thread::spawn(move || {
            for mut request in serving.incoming_requests() {
                let header = |name: &str| {
                    request
                        .headers()
                        .iter()
                        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                        .map(|h| h.value.as_str().to_owned())
                        .unwrap_or_default()
                };
                let (id, timestamp, signature) = (
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                );
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(Got {
                    id,
                    timestamp,
                    signature,
                    body,
                });
                let _ = request.respond(tiny_http::Response::empty(204));
            }
        });
        Ok(Listener {
            url: format!("http://{bound}/agentmessage-conformance/webhooks"),
            got,
            server,
        })
    }

    /// Everything received so far, in arrival order.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.server.unblock();
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
