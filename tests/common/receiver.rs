//! A webhook receiver for tests: records every request (headers, body, when) and answers as
//! told — 2xx, a status, a status for the first N requests, or no answer at all.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use poem::{Endpoint, Request, Response};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub at: Instant,
    /// When it arrived, by the wall clock (to compare with times the server stored).
    pub wall: std::time::SystemTime,
    /// The status it answered.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// 204 to everything.
    Accept,
    /// `status` to the first `count` requests, then 204.
    FailFirst { count: usize, status: u16 },
    /// `status` to everything.
    Always(u16),
    /// No answer: the request hangs.
    Hang,
    /// 503 with `Retry-After: seconds` to the first request, then 204.
    RetryAfter { seconds: u64 },
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Receiver {
    pub async fn start(answer: Answer) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answer = Arc::new(Mutex::new(answer));
        let (g, a) = (got.clone(), answer.clone());
        let endpoint = poem::endpoint::make(move |mut req: Request| {
            let (got, answer) = (g.clone(), a.clone());
            async move {
                let header = |name: &str| {
                    req.headers()
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
                let body = req.take_body().into_string().await.unwrap_or_default();
                let mut retry_after = None;
                let status = {
                    let mut plan = answer.lock().unwrap();
                    match *plan {
                        Answer::RetryAfter { seconds } => {
                            *plan = Answer::Accept;
                            retry_after = Some(seconds);
                            503
                        }
                        Answer::Accept => 204,
                        Answer::Always(status) => status,
                        Answer::Hang => 0,
                        Answer::FailFirst { count, status } => {
                            if count == 0 {
                                204
                            } else {
                                *plan = Answer::FailFirst {
                                    count: count - 1,
                                    status,
                                };
                                status
                            }
                        }
                    }
                };
                let hang = status == 0;
                got.lock().unwrap().push(Received {
                    id,
                    timestamp,
                    signature,
                    body,
                    at: Instant::now(),
                    wall: std::time::SystemTime::now(),
                    answered: status,
                });
                if hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                let mut response = Response::builder()
                    .status(poem::http::StatusCode::from_u16(status.max(200)).unwrap());
                if let Some(seconds) = retry_after {
                    response = response.header("retry-after", seconds.to_string());
                }
                response.finish()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(agentmessage::server::serve(
            listener,
            endpoint.map_to_response(),
            Default::default(),
            std::future::pending(),
        ));
        Receiver { url, got, answer }
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Every request so far, in arrival order.
    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests it acknowledged (2xx).
    pub fn acknowledged(&self) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `done` holds for the acknowledged requests, or panics after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let acknowledged = self.acknowledged();
            if done(&acknowledged) {
                return acknowledged;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests, {} acknowledged: {:#?}",
                self.got().len(),
                acknowledged.len(),
                acknowledged
                    .iter()
                    .map(|r| r.body.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `Endpoint::map_to_response` without importing the trait at each call.
trait MapToResponse: Endpoint + Sized {
    fn map_to_response(self) -> poem::endpoint::MapToResponse<Self> {
        poem::EndpointExt::map_to_response(self)
    }
}

impl<E: Endpoint> MapToResponse for E {}
