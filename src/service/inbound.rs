//! Messages from recipients to an organization's numbers, and the keywords that change consent.

use super::{Error, FieldErrors, Services};
use crate::domain::submission::{PartAdded, PartLimits, PartSet};
use crate::{
    domain::{
        consent::ConsentStatus,
        keywords::{match_keyword, KeywordAction, KeywordMatch},
        lifecycle::EventKind,
        message::{Channel, Direction, Message, Priority},
        organization::KeyMode,
        text::{encoding_of, split_segments},
        PhoneNumber,
    },
    store::{
        delivery::EventDetail,
        messages::{KeywordEffect, NewMessage},
    },
};

/// An inbound message as the carrier delivers it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: String,
    pub carrier_message_id: Option<String>,
    /// An inbound MMS's media (stored with it, listed in its `media_urls`); none for an SMS.
    pub media: Vec<crate::domain::media::StoredMedia>,
    /// The carrier it came from, when not the deployment's SMS carrier (the MMS centre).
    pub carrier: Option<String>,
}

impl Services {
    /// Stores an inbound message for the organization that owns `to`, and acts on keywords.
    pub async fn receive_inbound(
        &self,
        inbound: Inbound,
    ) -> Result<(Message, Option<&'static str>), Error> {
        let system = self.system();
        let owner = system.phone_number(&inbound.to).await?.ok_or_else(|| {
            Error::Validation(FieldErrors::single(
                "to",
                "is not a number any organization owns",
            ))
        })?;
        // Carrier callbacks are live traffic.
        let tenant = self.store.tenant(owner.org_id, KeyMode::Live);
        self.store_inbound(&tenant, inbound).await
    }

    /// A test key's simulated inbound message (`POST /v1/test_helpers/inbound`): the same path
    /// as the carrier's, in test mode, to a number of the caller's own organization. 404 for a
    /// live key.
    pub async fn receive_test_inbound(
        &self,
        caller: &super::auth::Caller,
        inbound: Inbound,
    ) -> Result<(Message, Option<&'static str>), Error> {
        self.require_test_mode(caller)?;
        let tenant = self.tenant(caller);
        if !tenant.owns_number(&inbound.to).await? {
            return Err(Error::Validation(FieldErrors::single(
                "to",
                "must be a number owned by your organization",
            )));
        }
        self.store_inbound(&tenant, inbound).await
    }

    /// The test helpers exist for test keys only: 404 for a live key.
    pub fn require_test_mode(&self, caller: &super::auth::Caller) -> Result<(), Error> {
        if caller.mode == KeyMode::Test {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Media item `index` (1-based) of the caller's message `id`: 404 when either does not
    /// exist in the caller's organization and mode.
    pub async fn message_media(
        &self,
        caller: &super::auth::Caller,
        id: uuid::Uuid,
        index: u32,
    ) -> Result<crate::domain::media::StoredMedia, Error> {
        let index = i32::try_from(index).map_err(|_| Error::NotFound)?;
        self.tenant(caller)
            .message_media(id, index)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Stores an inbound message for `tenant` and acts on its keyword.
    async fn store_inbound(
        &self,
        tenant: &crate::store::Tenant,
        inbound: Inbound,
    ) -> Result<(Message, Option<&'static str>), Error> {
        let found = match_keyword(&inbound.text);
        let keyword = match found {
            Some(KeywordMatch::Act(word, _)) => Some(word),
            _ => None,
        };
        let carrier = inbound
            .carrier
            .clone()
            .unwrap_or_else(|| self.settings.carrier_name.clone());
        let (id, channel, media_urls) = if inbound.media.is_empty() {
            (None, Channel::Sms, Vec::new())
        } else {
            let id = uuid::Uuid::now_v7();
            let urls = (1..=inbound.media.len())
                .map(|n| crate::domain::media::inbound_media_path(id, n))
                .collect();
            (Some(id), Channel::Mms, urls)
        };
        let new = NewMessage {
            id,
            direction: Direction::Inbound,
            from: inbound.from.clone(),
            to: inbound.to.clone(),
            segments: u32::try_from(split_segments(&inbound.text).len()).unwrap_or(u32::MAX),
            encoding: encoding_of(&inbound.text),
            text: inbound.text.clone(),
            channel,
            priority: Priority::Default,
            tag: None,
            media_urls,
            send_at: None,
            valid_until: None,
            carrier: inbound
                .carrier_message_id
                .clone()
                .map(|id| (carrier.clone(), id)),
        };
        let detail = EventDetail {
            carrier_message_id: inbound.carrier_message_id.clone(),
            connection: Some(carrier.clone()),
            ..Default::default()
        };
        let effect = found.map(|found| match found {
            KeywordMatch::Act(word, action) => KeywordEffect {
                word,
                consent: match action {
                    KeywordAction::OptOut => Some(ConsentStatus::OptedOut),
                    KeywordAction::OptIn => Some(ConsentStatus::OptedIn),
                    KeywordAction::Help => None,
                },
                event: EventKind::Keyword,
            },
            KeywordMatch::Mentioned(word) => KeywordEffect {
                word,
                consent: None,
                event: EventKind::KeywordMentioned,
            },
        });
        // The message, its keyword's consent change and their events in one transaction; a
        // true redelivery answers with the first copy and changes nothing.
        let (stored, _redelivered) = tenant
            .receive_inbound(new, detail, effect, inbound.media)
            .await?;
        Ok((stored, keyword))
    }
}

impl Services {
    /// Stores a part of an inbound concatenated message; whether its message is now whole.
    pub async fn add_inbound_part(
        &self,
        set: &PartSet,
        sequence: u8,
        text: &str,
        limits: PartLimits,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<PartAdded, Error> {
        Ok(self
            .system()
            .add_inbound_part(set, sequence, text, limits, now)
            .await?)
    }

    /// Removes the stored parts of a message that was stored.
    pub async fn remove_inbound_parts(&self, set: &PartSet) -> Result<(), Error> {
        Ok(self.system().remove_inbound_parts(set).await?)
    }

    /// The waiting parts of `carrier`'s messages begun before `before`, by message.
    pub async fn stale_inbound_parts(
        &self,
        carrier: &str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(PartSet, crate::store::inbound_parts::WaitingParts)>, Error> {
        Ok(self.system().stale_inbound_parts(carrier, before).await?)
    }
}
