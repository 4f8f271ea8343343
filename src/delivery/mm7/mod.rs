//! The MM7 carrier: MMS submitted to an operator's MMS centre (MMSC) as a VASP, over SOAP 1.1
//! with MIME attachments (3GPP TS 23.140). Each MMS is one `SubmitReq` — its media fetched and
//! checked under the deployment's media rules first — sent with HTTP Basic to `--mm7-url`, at
//! most `--mm7-concurrency` at once. The answer decides the part:
//!
//! | answer | outcome |
//! |---|---|
//! | `SubmitRsp` 1xxx (1000 Success, 1100 Partial success) with a `MessageID` | accepted: `sent`, the MessageID is the carrier id |
//! | 2xxx (client errors), 4xxx but 4006 | refused: `failed`, `CARRIER_REFUSED` |
//! | 3xxx (server errors), 4006 (service unavailable), HTTP 5xx without an MM7 status, a `Server` fault, no connection | deferred: tried again after the backoff |
//! | no answer once the request was written (timeout, connection lost), an answer that cannot be read | uncertain: `failed`, `SUBMISSION_UNCERTAIN`, never sent twice |
//!
//! Delivery reports, read replies and inbound MMS come back over `POST /v1/carrier/mm7`
//! ([`crate::api`]).

pub mod soap;

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::carrier::{Capabilities, Carrier, CarrierHealth, Room, Submission, SubmitError};
use crate::{domain::message::Part, service::Services};

/// The MM7 carrier carries MMS only.
pub const CAPABILITIES: Capabilities = Capabilities { mms: true };

/// How the MM7 carrier reaches the MMSC.
#[derive(Clone)]
pub struct Mm7Settings {
    /// The MMSC's MM7 endpoint (`https://…`).
    pub url: String,
    /// HTTP Basic towards the MMSC (none when empty).
    pub username: String,
    pub password: String,
    pub vasp_id: String,
    pub vas_id: String,
    pub service_code: String,
    /// The MM7 version written in every request; the schema namespace follows it.
    pub version: String,
    /// A PEM file of CA certificates that verify the MMSC, instead of the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// How long a submission may take, from connecting to the answer's last byte.
    pub timeout: Duration,
    /// Submissions outstanding at once (per worker process).
    pub concurrency: u32,
}

impl std::fmt::Debug for Mm7Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mm7Settings")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("vasp_id", &self.vasp_id)
            .field("vas_id", &self.vas_id)
            .field("service_code", &self.service_code)
            .field("version", &self.version)
            .field("tls_ca", &self.tls_ca)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Mm7Settings {
    /// Settings for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Mm7Settings {
        use crate::defaults::{self, duration};
        Mm7Settings {
            url: url.into(),
            username: String::new(),
            password: String::new(),
            vasp_id: String::new(),
            vas_id: String::new(),
            service_code: String::new(),
            version: defaults::MM7_VERSION.into(),
            tls_ca: None,
            timeout: duration(defaults::MM7_TIMEOUT),
            concurrency: defaults::MM7_CONCURRENCY,
        }
    }
}

/// The MM7 carrier.
pub struct Mm7Carrier {
    name: String,
    settings: Mm7Settings,
    client: reqwest::Client,
    media: super::media::MediaFetcher,
    services: Services,
    permits: Arc<Semaphore>,
}

impl Mm7Carrier {
    /// A carrier under `name` (receipts and carrier ids are stored under it). Fails when the
    /// version is not one this server speaks or the CA file cannot be read.
    pub fn new(
        services: Services,
        name: &str,
        settings: Mm7Settings,
    ) -> anyhow::Result<Mm7Carrier> {
        if soap::namespace(&settings.version).is_none() {
            let known: Vec<_> = soap::VERSIONS.iter().map(|(v, _)| *v).collect();
            anyhow::bail!(
                "--mm7-version {} is not one this server speaks ({})",
                settings.version,
                known.join(", ")
            );
        }
        let url = reqwest::Url::parse(&settings.url)
            .map_err(|e| anyhow::anyhow!("--mm7-url {:?}: {e}", settings.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!("--mm7-url must be an http or https URL");
        }
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .user_agent(concat!("AgentMessage-MM7/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(settings.concurrency as usize);
        if let Some(path) = &settings.tls_ca {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--mm7-tls-ca {}: {e}", path.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("--mm7-tls-ca {}: {e}", path.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build()?;
        Ok(Mm7Carrier {
            name: name.to_owned(),
            media: super::media::MediaFetcher::new(services.settings.media),
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1) as usize)),
            settings,
            client,
            services,
        })
    }

    /// The SubmitReq for `submission` with its fetched media.
    fn request(&self, submission: &Submission, media: &[soap::Item]) -> soap::Body {
        let transaction_id = format!("am-{}", submission.message_id.simple());
        let request = soap::SubmitReq {
            version: &self.settings.version,
            transaction_id: &transaction_id,
            vasp_id: &self.settings.vasp_id,
            vas_id: &self.settings.vas_id,
            service_code: &self.settings.service_code,
            from: &submission.from,
            to: &submission.to,
            expiry: submission.valid_until,
            text: &submission.text,
            media,
        };
        request.body(&ulid::Ulid::new().to_string())
    }

    /// Sends `body` and classifies what comes back.
    async fn send(&self, body: soap::Body) -> Result<String, SubmitError> {
        let mut request = self
            .client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, &body.content_type)
            .header("SOAPAction", "\"\"")
            .body(body.bytes);
        if !self.settings.username.is_empty() {
            request = request.basic_auth(&self.settings.username, Some(&self.settings.password));
        }
        let response = match request.send().await {
            Ok(response) => response,
            // Nothing was written: the MMSC did not get it.
            Err(err) if err.is_connect() => {
                return Err(SubmitError::Deferred {
                    code: "CONNECT".into(),
                    message: format!("the MMSC could not be reached: {}", chain(&err)),
                })
            }
            Err(err) => {
                return Err(SubmitError::Uncertain(format!(
                    "no answer from the MMSC once the SubmitReq was sent: {}",
                    chain(&err)
                )))
            }
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/xml")
            .to_owned();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(err) => {
                return Err(SubmitError::Uncertain(format!(
                    "the MMSC's answer (HTTP {status}) was cut short: {}",
                    chain(&err)
                )))
            }
        };
        classify(
            status.as_u16(),
            soap::read_submit_answer(&content_type, &bytes),
        )
    }
}

/// An error and its causes on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an answer makes of the part (the table in the module's documentation).
pub fn classify(
    http: u16,
    answer: Result<soap::SubmitAnswer, String>,
) -> Result<String, SubmitError> {
    use soap::SubmitAnswer;
    let by_status = |status: soap::Status| {
        let code = status.code.to_string();
        let message = if status.text.is_empty() {
            format!("MM7 status {code}")
        } else {
            status.text
        };
        match status.code {
            3000..=3999 | 4006 => Err(SubmitError::Deferred { code, message }),
            _ => Err(SubmitError::Refused { code, message }),
        }
    };
    match answer {
        Ok(SubmitAnswer::Submitted {
            status,
            message_id: Some(id),
        }) if (1000..2000).contains(&status.code) && !id.is_empty() => Ok(id),
        Ok(SubmitAnswer::Submitted { status, .. }) if (1000..2000).contains(&status.code) => {
            Err(SubmitError::Uncertain(format!(
                "the MMSC accepted the SubmitReq (MM7 status {}) without a MessageID",
                status.code
            )))
        }
        Ok(SubmitAnswer::Submitted { status, .. }) | Ok(SubmitAnswer::Error(status)) => {
            by_status(status)
        }
        Ok(SubmitAnswer::Fault { fault_code, text }) => {
            let message = format!("SOAP fault {fault_code}: {text}");
            if fault_code.eq_ignore_ascii_case("Client") {
                Err(SubmitError::Refused {
                    code: "SOAP_CLIENT".into(),
                    message,
                })
            } else {
                Err(SubmitError::Deferred {
                    code: format!("SOAP_{}", fault_code.to_ascii_uppercase()),
                    message,
                })
            }
        }
        Err(why) if http >= 500 => Err(SubmitError::Deferred {
            code: format!("HTTP_{http}"),
            message: format!("the MMSC answered HTTP {http} ({why})"),
        }),
        Err(why) if http >= 400 => Err(SubmitError::Refused {
            code: format!("HTTP_{http}"),
            message: format!("the MMSC answered HTTP {http} ({why})"),
        }),
        Err(why) => Err(SubmitError::Uncertain(format!(
            "the MMSC's answer (HTTP {http}) could not be read: {why}"
        ))),
    }
}

/// What a DeliveryReportReq's `MMStatus` means for the message, in the delivery-receipt
/// vocabulary every receipt is recorded in: `Retrieved` is `DELIVRD` (delivered); `Expired`,
/// `Rejected`, `Unrecognised`, `NotSupported` and `DeliveryConditionNotMet` are final
/// (undelivered); `Deferred`, `Forwarded` and `Indeterminate` are interim and change nothing.
/// Matched without regard to case; an unknown value is recorded as `UNKNOWN` (no change).
pub fn receipt_stat(mm_status: &str) -> &'static str {
    match mm_status.trim().to_ascii_lowercase().as_str() {
        "retrieved" => "DELIVRD",
        "expired" => "EXPIRED",
        "rejected" => "REJECTD",
        "unrecognised" | "unrecognized" | "notsupported" | "deliveryconditionnotmet" => "UNDELIV",
        "deferred" | "forwarded" => "ENROUTE",
        _ => "UNKNOWN",
    }
}

/// A place among the submissions outstanding at once.
struct Permit(#[allow(dead_code)] OwnedSemaphorePermit);

#[async_trait]
impl Carrier for Mm7Carrier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// HTTP has no session to lose: the carrier is always ready, and a request that cannot
    /// connect is deferred.
    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "mm7",
            sessions: self.settings.concurrency,
            bound: self.settings.concurrency,
        }
    }

    async fn rooms(&self, most: usize, wait: Duration) -> Vec<Room> {
        let mut rooms = Vec::new();
        let first = tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await;
        let Ok(Ok(first)) = first else {
            return rooms;
        };
        rooms.push(Room::holding(Permit(first)));
        while rooms.len() < most {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => rooms.push(Room::holding(Permit(permit))),
                Err(_) => break,
            }
        }
        rooms
    }

    async fn submit_in(
        &self,
        submission: &Submission,
        _part: &Part,
        room: Room,
    ) -> (Result<String, SubmitError>, Room) {
        // Room taken by the worker is held until the answer is recorded; otherwise wait here.
        let (room, _held) = match room.take::<Permit>() {
            Some(permit) => (Room::holding(permit), None),
            None => {
                let permit = self.permits.clone().acquire_owned().await.ok();
                (Room::any(), permit)
            }
        };
        let fetched = match self.media.prepare(&self.services, submission).await {
            Ok(fetched) => fetched,
            Err(refused) => return (Err(refused), room),
        };
        let media: Vec<soap::Item> = fetched
            .into_iter()
            .enumerate()
            .map(|(n, item)| soap::Item {
                content_id: format!(
                    "media-{}.{}",
                    n + 1,
                    crate::domain::media::extension(&item.content_type)
                ),
                content_type: item.content_type,
                bytes: item.bytes,
            })
            .collect();
        let body = self.request(submission, &media);
        (self.send(body).await, room)
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, soap::Status, soap::SubmitAnswer, SubmitError};

    fn status(code: u32) -> Result<SubmitAnswer, String> {
        Ok(SubmitAnswer::Error(Status {
            code,
            text: "t".into(),
        }))
    }

    #[test]
    fn answers_are_sorted_into_accepted_refused_deferred_and_uncertain() {
        let ok = Ok(SubmitAnswer::Submitted {
            status: Status {
                code: 1100,
                text: String::new(),
            },
            message_id: Some("m-1".into()),
        });
        assert_eq!(classify(200, ok).unwrap(), "m-1");
        let no_id = Ok(SubmitAnswer::Submitted {
            status: Status {
                code: 1000,
                text: String::new(),
            },
            message_id: None,
        });
        assert!(matches!(
            classify(200, no_id),
            Err(SubmitError::Uncertain(_))
        ));
        for code in [2000, 2002, 2007, 4001, 4004] {
            assert!(
                matches!(
                    classify(500, status(code)),
                    Err(SubmitError::Refused { .. })
                ),
                "{code}"
            );
        }
        for code in [3000, 3001, 4006] {
            assert!(
                matches!(
                    classify(200, status(code)),
                    Err(SubmitError::Deferred { .. })
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify(503, Err("html".into())),
            Err(SubmitError::Deferred { .. })
        ));
        assert!(matches!(
            classify(401, Err("html".into())),
            Err(SubmitError::Refused { .. })
        ));
        assert!(matches!(
            classify(200, Err("html".into())),
            Err(SubmitError::Uncertain(_))
        ));
        let server = Ok(SubmitAnswer::Fault {
            fault_code: "Server".into(),
            text: "x".into(),
        });
        assert!(matches!(
            classify(500, server),
            Err(SubmitError::Deferred { .. })
        ));
    }
}
