//! Sending a message and reading it back.

use chrono::Utc;
use entity::message;
use sea_orm::ActiveValue::Set;
use uuid::Uuid;

use super::{auth::Caller, Error, FieldErrors, Services};
use crate::domain::{
    consent::ConsentStatus,
    lookup::LineType,
    message::{Channel, Direction, MessageStatus, Priority},
    text::MessageText,
    PhoneNumber, Timestamp,
};
use crate::{
    domain::lifecycle::EventKind,
    domain::listing::{ListPosition, MessageFilter},
    store::delivery::EventDetail,
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
}

impl Services {
    /// The send rules, in order: rate limit (429), `from` owned (422), no recent landline lookup
    /// (422 LINE_TYPE_BLOCKED), consent (453); then the message is stored as `queued`. Every call
    /// spends a rate-limit token, even one refused after it.
    pub async fn send_message(
        &self,
        caller: &Caller,
        send: SendMessage,
    ) -> Result<message::Model, Error> {
        self.rate_limits
            .check(caller.org_id, caller.rate_per_second, caller.burst)
            .map_err(|retry_after_secs| Error::RateLimited { retry_after_secs })?;

        if !self.store.owns_number(caller.org_id, &send.from).await? {
            return Err(Error::Validation(FieldErrors::single(
                "from",
                "must be a number owned by your organization",
            )));
        }

        if let Some(lookup) = self.store.latest_lookup(caller.org_id, &send.to).await? {
            let max_age = chrono::Duration::from_std(self.settings.lookup_max_age)
                .unwrap_or(chrono::Duration::MAX);
            let recent = Utc::now().signed_duration_since(lookup.looked_up_at) <= max_age;
            if recent && LineType::parse(&lookup.line_type) == Some(LineType::Landline) {
                return Err(Error::LineTypeBlocked);
            }
        }

        let consent = self.store.latest_consent(caller.org_id, &send.to).await?;
        if consent.and_then(|c| ConsentStatus::parse(&c.status)) != Some(ConsentStatus::OptedIn) {
            return Err(Error::ConsentRequired);
        }

        let now = Timestamp::now().as_datetime();
        let channel = if send.media_urls.is_empty() {
            Channel::Sms
        } else {
            Channel::Mms
        };
        let media_urls = (!send.media_urls.is_empty())
            .then(|| serde_json::to_string(&send.media_urls).expect("strings serialize"));
        let row = message::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(caller.org_id),
            direction: Set(Direction::Outbound.as_str().to_owned()),
            from_number: Set(send.from.as_str().to_owned()),
            to_number: Set(send.to.as_str().to_owned()),
            body: Set(send.text.as_str().to_owned()),
            channel: Set(channel.as_str().to_owned()),
            priority: Set(send.priority.as_str().to_owned()),
            status: Set(MessageStatus::Queued.as_str().to_owned()),
            tag: Set(send.tag),
            media_urls: Set(media_urls),
            segments: Set(i32::try_from(send.text.segments()).unwrap_or(i32::MAX)),
            encoding: Set(send.text.encoding().as_str().to_owned()),
            error_code: Set(None),
            carrier: Set(None),
            carrier_message_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            attempted_at: Set(None),
            sent_at: Set(None),
            error_message: Set(None),
        };
        let stored = self
            .store
            .insert_message_with_event(row, EventKind::Transition, EventDetail::default())
            .await?;
        Ok(stored)
    }

    pub async fn message(&self, caller: &Caller, id: Uuid) -> Result<message::Model, Error> {
        self.store
            .message(caller.org_id, id)
            .await?
            .ok_or(Error::NotFound)
    }
}

/// One page of messages.
pub struct MessagePage {
    pub messages: Vec<message::Model>,
    pub next: Option<ListPosition>,
}

impl Services {
    /// A page of the organization's messages, newest first.
    pub async fn list_messages(
        &self,
        caller: &Caller,
        filter: &MessageFilter,
        after: Option<ListPosition>,
        limit: u64,
    ) -> Result<MessagePage, Error> {
        let mut messages = self
            .store
            .list_messages(caller.org_id, filter, after, limit + 1)
            .await?;
        let next = if messages.len() as u64 > limit {
            messages.truncate(limit as usize);
            messages.last().map(|m| ListPosition {
                created_at: m.created_at,
                id: m.id,
            })
        } else {
            None
        };
        Ok(MessagePage { messages, next })
    }

    /// A message's events, oldest first; 404 for a message the organization cannot see.
    pub async fn message_events(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Vec<entity::message_event::Model>, Error> {
        self.message(caller, id).await?;
        Ok(self.store.message_events(caller.org_id, id).await?)
    }
}
