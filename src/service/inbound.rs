//! Messages from recipients to an organization's numbers, and the keywords that change consent.

use entity::message;
use sea_orm::ActiveValue::Set;
use uuid::Uuid;

use super::{Error, FieldErrors, Services};
use crate::{
    domain::{
        consent::{ConsentSource, ConsentStatus},
        lifecycle::EventKind,
        message::{Channel, Direction, MessageStatus, Priority},
        text::{encoding_of, split_segments},
        PhoneNumber, Timestamp,
    },
    store::delivery::EventDetail,
};

/// Words that opt the sender out of the organization's messages.
pub const OPT_OUT_KEYWORDS: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// Words that opt the sender back in.
pub const OPT_IN_KEYWORDS: [&str; 2] = ["START", "UNSTOP"];
/// A request for help, recorded.
pub const HELP_KEYWORD: &str = "HELP";

/// The keyword a text is, if it is one (any case, surrounding spaces ignored).
pub fn keyword_of(text: &str) -> Option<&'static str> {
    let word = text.trim().to_uppercase();
    OPT_OUT_KEYWORDS
        .into_iter()
        .chain(OPT_IN_KEYWORDS)
        .chain([HELP_KEYWORD])
        .find(|k| *k == word)
}

/// An inbound message as the carrier delivers it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: String,
    pub carrier_message_id: Option<String>,
}

impl Services {
    /// Stores an inbound message for the organization that owns `to`, and acts on keywords.
    pub async fn receive_inbound(
        &self,
        inbound: Inbound,
    ) -> Result<(message::Model, Option<&'static str>), Error> {
        let owner = self.store.phone_number(&inbound.to).await?.ok_or_else(|| {
            Error::Validation(FieldErrors::single(
                "to",
                "is not a number any organization owns",
            ))
        })?;
        let now = Timestamp::now().as_datetime();
        let keyword = keyword_of(&inbound.text);
        let row = message::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(owner.org_id),
            direction: Set(Direction::Inbound.as_str().to_owned()),
            from_number: Set(inbound.from.as_str().to_owned()),
            to_number: Set(inbound.to.as_str().to_owned()),
            body: Set(inbound.text.clone()),
            channel: Set(Channel::Sms.as_str().to_owned()),
            priority: Set(Priority::Default.as_str().to_owned()),
            status: Set(MessageStatus::Received.as_str().to_owned()),
            tag: Set(None),
            media_urls: Set(None),
            segments: Set(i32::try_from(split_segments(&inbound.text).len()).unwrap_or(i32::MAX)),
            encoding: Set(encoding_of(&inbound.text).as_str().to_owned()),
            error_code: Set(None),
            carrier: Set(inbound
                .carrier_message_id
                .as_ref()
                .map(|_| self.settings.carrier_name.clone())),
            carrier_message_id: Set(inbound.carrier_message_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            attempted_at: Set(None),
            sent_at: Set(None),
            error_message: Set(None),
        };
        let detail = EventDetail {
            carrier_message_id: inbound.carrier_message_id.clone(),
            ..Default::default()
        };
        let stored = match self
            .store
            .insert_message_with_event(row, EventKind::Transition, detail)
            .await
        {
            Ok(stored) => stored,
            // The carrier delivered the same inbound message again: answer with the first copy.
            Err(err) if crate::store::is_unique_violation(&err) => {
                let id = inbound.carrier_message_id.as_deref().unwrap_or_default();
                let existing = self
                    .store
                    .message_by_carrier_id(&self.settings.carrier_name, id)
                    .await?
                    .ok_or(Error::NotFound)?;
                return Ok((existing, keyword));
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(word) = keyword {
            let change = if OPT_OUT_KEYWORDS.contains(&word) {
                Some(ConsentStatus::OptedOut)
            } else if OPT_IN_KEYWORDS.contains(&word) {
                Some(ConsentStatus::OptedIn)
            } else {
                None
            };
            if let Some(status) = change {
                let evidence = format!("inbound message {} said {word}", stored.id);
                self.store
                    .insert_consent(
                        owner.org_id,
                        &inbound.from,
                        status,
                        ConsentSource::Keyword,
                        Some(&evidence),
                    )
                    .await?;
            }
            let detail = EventDetail {
                stat: Some(word.to_owned()),
                ..Default::default()
            };
            self.store
                .record_event(&stored, EventKind::Keyword, detail)
                .await?;
        }
        Ok((stored, keyword))
    }
}

#[cfg(test)]
mod tests {
    use super::keyword_of;

    #[test]
    fn keywords_ignore_case_and_surrounding_spaces() {
        assert_eq!(keyword_of("STOP"), Some("STOP"));
        assert_eq!(keyword_of("  stop \n"), Some("STOP"));
        assert_eq!(keyword_of("Unsubscribe"), Some("UNSUBSCRIBE"));
        assert_eq!(keyword_of("start"), Some("START"));
        assert_eq!(keyword_of("help"), Some("HELP"));
        assert_eq!(keyword_of("please stop"), None);
        assert_eq!(keyword_of("STOPP"), None);
    }
}
