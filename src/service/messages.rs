//! Sending a message and reading it back.

use chrono::Utc;
use uuid::Uuid;

use super::{auth::Caller, Error, FieldErrors, Services, Settings};
use crate::domain::idempotency::Completion;
use crate::{
    domain::{
        lifecycle::Event,
        listing::{ListPosition, MessageFilter},
        lookup::LineType,
        message::{Channel, Direction, Message, Priority},
        text::MessageText,
        PhoneNumber,
    },
    store::{
        messages::NewMessage,
        sends::{QueuedSend, SendFacts, SendOutcome},
    },
};

/// A send request whose fields have all been parsed.
#[derive(Debug, Clone)]
pub struct SendMessage {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: MessageText,
    pub priority: Priority,
    pub tag: Option<String>,
    /// Empty for SMS; 1 to 10 http(s) URLs for MMS.
    pub media_urls: Vec<String>,
    /// Send later: `scheduled` until then.
    pub send_at: Option<chrono::DateTime<Utc>>,
    /// Its own validity, in seconds (from `send_at`, or from acceptance).
    pub validity_period: Option<u32>,
}

/// The answer to an MMS while the live carrier cannot carry one (SMPP).
pub const MMS_NOT_SUPPORTED: &str = "mms is not supported by this deployment's carrier";

impl Services {
    /// `send_at` between the deployment's shortest and longest lead from now, and
    /// `validity_period` between 60 seconds and the deployment's validity: else 422 naming each.
    fn check_schedule(&self, send: &SendMessage) -> Result<(), Error> {
        let mut errors = FieldErrors::new();
        if let Some(at) = send.send_at {
            let lead = at.signed_duration_since(Utc::now());
            let min = chrono::Duration::from_std(self.settings.schedule_min_lead)
                .unwrap_or(chrono::Duration::MAX);
            let max = chrono::Duration::from_std(self.settings.schedule_max_lead)
                .unwrap_or(chrono::Duration::MAX);
            if lead < min || lead > max {
                errors.add(
                    "send_at",
                    format!(
                        "must be between {} and {} from now",
                        humantime::format_duration(self.settings.schedule_min_lead),
                        humantime::format_duration(self.settings.schedule_max_lead)
                    ),
                );
            }
        }
        if let Some(period) = send.validity_period {
            let max = self.settings.validity.as_secs();
            if u64::from(period) < 60 || u64::from(period) > max {
                errors.add(
                    "validity_period",
                    format!("must be between 60 and {max} seconds (this deployment's validity)"),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// Each media URL must be https (or http where the deployment allows it) and must not point
    /// to a refused destination (the webhooks' table: loopback, private, link-local, metadata,
    /// this host's own addresses) — its address literal, or any address its host name resolves
    /// to now. A host name that does not resolve now is taken: the worker's fetch decides
    /// (`MEDIA_UNAVAILABLE`), and checks every address again, redirects included.
    async fn check_media_urls(&self, urls: &[String]) -> Result<(), Error> {
        let rules = self.settings.media;
        let mut errors = FieldErrors::new();
        for (i, text) in urls.iter().enumerate() {
            let refusal = match url::Url::parse(text) {
                Err(_) => Some("must be an absolute https URL".to_owned()),
                Ok(url) => match crate::domain::media::url_refusal(&url, rules.allow_http) {
                    Some(why) => Some(why.to_owned()),
                    None if rules.allow_private => None,
                    None => refused_host(&url).await,
                },
            };
            if let Some(why) = refusal {
                errors.add("media_urls", format!("item {} {why}", i + 1));
                break;
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// The send rules, in order: rate limit (429), `from` owned (422), no recent landline lookup
    /// (422 LINE_TYPE_BLOCKED), consent (453); then the message is stored as `queued`. Every call
    /// spends a rate-limit token, even one refused after it.
    pub async fn send_message(&self, caller: &Caller, send: SendMessage) -> Result<Message, Error> {
        self.send_message_completing(caller, send, None).await
    }

    /// [`Services::send_message`], recording `completion` (an `Idempotency-Key`'s outcome) with
    /// the message.
    pub async fn send_message_completing(
        &self,
        caller: &Caller,
        send: SendMessage,
        completion: Option<&Completion<Message>>,
    ) -> Result<Message, Error> {
        // Test mode mirrors the live carrier's capabilities.
        if !send.media_urls.is_empty() && !self.settings.mms_supported {
            return Err(Error::Validation(FieldErrors::single(
                "media_urls",
                MMS_NOT_SUPPORTED,
            )));
        }
        self.check_schedule(&send)?;
        self.check_media_urls(&send.media_urls).await?;
        self.spend_token(caller).await?;
        let queued = QueuedSend {
            org_id: caller.org_id,
            mode: caller.mode,
            from: send.from.clone(),
            to: send.to.clone(),
            decide: {
                let settings = self.settings.clone();
                Box::new(move |facts: &SendFacts| send_rules(&settings, &send, facts))
            },
            completion: completion.cloned(),
        };
        match self.commit_send(queued).await? {
            SendOutcome::Stored(message) => Ok(message),
            SendOutcome::Refused(refusal) => Err(refusal),
            SendOutcome::TakenOver => Err(Error::IdempotencyConflict {
                retry_after_secs: 1,
            }),
        }
    }

    /// One of the caller's messages; 404 for one it cannot see.
    pub async fn message(&self, caller: &Caller, id: Uuid) -> Result<Message, Error> {
        self.tenant(caller)
            .message(id)
            .await?
            .ok_or(Error::NotFound)
    }
}

/// The send rules after the rate limit, in order, on the facts read in the send's transaction:
/// `from` owned (422), no recent landline lookup (422 LINE_TYPE_BLOCKED), consent (453). What
/// passes is the message to store as `queued`.
fn send_rules(
    settings: &Settings,
    send: &SendMessage,
    facts: &SendFacts,
) -> Result<NewMessage, Error> {
    if !facts.owns_from {
        return Err(Error::Validation(FieldErrors::single(
            "from",
            "must be a number owned by your organization",
        )));
    }
    if let Some(lookup) = &facts.lookup {
        let max_age =
            chrono::Duration::from_std(settings.lookup_max_age).unwrap_or(chrono::Duration::MAX);
        let recent = Utc::now().signed_duration_since(lookup.looked_up_at.as_datetime()) <= max_age;
        if recent && lookup.line_type == LineType::Landline {
            return Err(Error::LineTypeBlocked);
        }
    }
    if let Some(refusal) = facts.consent.refusal() {
        return Err(Error::ConsentRequired {
            to: send.to.clone(),
            refusal,
        });
    }
    let channel = if send.media_urls.is_empty() {
        Channel::Sms
    } else {
        Channel::Mms
    };
    Ok(NewMessage {
        id: None,
        direction: Direction::Outbound,
        from: send.from.clone(),
        to: send.to.clone(),
        segments: u32::try_from(send.text.segments()).unwrap_or(u32::MAX),
        encoding: send.text.encoding(),
        text: send.text.as_str().to_owned(),
        channel,
        priority: send.priority,
        tag: send.tag.clone(),
        media_urls: send.media_urls.clone(),
        carrier: None,
        send_at: send.send_at,
        valid_until: valid_until(settings, send),
    })
}

/// When a send's validity runs out, when it is its own: its `validity_period` (or the
/// deployment's validity) counted from its `send_at` (or from now). `None` for a send with
/// neither: the deployment's validity counted from creation, as the sweep reads it.
fn valid_until(settings: &Settings, send: &SendMessage) -> Option<chrono::DateTime<Utc>> {
    if send.send_at.is_none() && send.validity_period.is_none() {
        return None;
    }
    let start = send.send_at.unwrap_or_else(Utc::now);
    let period = match send.validity_period {
        Some(seconds) => chrono::Duration::seconds(i64::from(seconds)),
        None => chrono::Duration::from_std(settings.validity).unwrap_or(chrono::Duration::MAX),
    };
    start.checked_add_signed(period)
}

/// One page of messages.
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Where the next page starts, when there is one.
    pub next: Option<ListPosition>,
}

impl Services {
    /// A page of the caller's messages, newest first.
    pub async fn list_messages(
        &self,
        caller: &Caller,
        filter: &MessageFilter,
        after: Option<ListPosition>,
        limit: u64,
    ) -> Result<MessagePage, Error> {
        let mut messages = self
            .tenant(caller)
            .list_messages(filter, after, limit + 1)
            .await?;
        let next = if messages.len() as u64 > limit {
            messages.truncate(limit as usize);
            messages.last().map(|m| ListPosition {
                created_at: m.created_at.as_datetime(),
                id: m.id,
            })
        } else {
            None
        };
        Ok(MessagePage { messages, next })
    }

    /// A page of a message's events after event number `after`, oldest first; 404 for a message
    /// the caller cannot see.
    pub async fn message_events(
        &self,
        caller: &Caller,
        id: Uuid,
        after: i32,
        limit: u64,
    ) -> Result<EventPage, Error> {
        self.message(caller, id).await?;
        let mut events = self
            .tenant(caller)
            .message_events(id, after, limit + 1)
            .await?;
        let next = if events.len() as u64 > limit {
            events.truncate(limit as usize);
            events.last().map(|e| e.sequence)
        } else {
            None
        };
        Ok(EventPage { events, next })
    }
}

/// One page of a message's events.
pub struct EventPage {
    pub events: Vec<Event>,
    /// The number of the page's last event, when more follow.
    pub next: Option<i64>,
}

/// Why `url`'s host is a refused destination, if it is: its address literal, or an address its
/// name resolves to now (a name that does not resolve within a second is not refused here).
async fn refused_host(url: &url::Url) -> Option<String> {
    use super::webhooks::refused_destination;
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = match url.host()? {
        url::Host::Ipv4(ip) => vec![ip.into()],
        url::Host::Ipv6(ip) => vec![ip.into()],
        url::Host::Domain(name) => {
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(std::time::Duration::from_secs(1), lookup).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => vec![],
            }
        }
    };
    addresses
        .into_iter()
        .find_map(|ip| refused_destination(ip).map(|why| format!("must not point to {why} ({ip})")))
}
