//! The closed value sets stored in text columns (statuses, channels, sources, …), declared once.
//!
//! Each is a sea-orm active enum over the existing text column (`rs_type = "String"`; no native
//! database enum types and no CHECK constraints, so adding a value is a code change only). A
//! stored value the code does not know is a read error, never a silent default. The
//! `agentmessage` domain re-exports these types and owns their rules.

use sea_orm::entity::prelude::*;

/// Declares a closed set: the sea-orm active enum, its wire/stored names, `ALL`, `as_str` and
/// `parse`.
#[macro_export]
macro_rules! value_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $($(#[$vmeta])* #[sea_orm(string_value = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

value_set!(
    /// How a message travels: plain SMS, or MMS when it carries media.
    Channel { Sms => "sms", Mms => "mms" }
);

value_set!(
    /// Send priority; `high` messages are handed to the carrier first.
    Priority { Default => "default", High => "high" }
);

value_set!(
    /// Whether the organization sent the message or received it.
    Direction { Outbound => "outbound", Inbound => "inbound" }
);

value_set!(
    /// Where a message is in its life: `queued → sending → sent → delivered | undelivered`, and
    /// `failed` from any state that is not terminal; `received` for inbound messages.
    MessageStatus {
        /// Accepted with a `send_at`: waits for its time, then becomes `queued`.
        Scheduled => "scheduled",
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Delivered => "delivered",
        Undelivered => "undelivered",
        Failed => "failed",
        Received => "received",
        /// Canceled while `scheduled`: never handed to a carrier.
        Canceled => "canceled",
    }
);

value_set!(
    /// The encoding a text is sent in.
    Encoding { Gsm7 => "gsm7", Ucs2 => "ucs2" }
);

value_set!(
    /// What a message event records.
    EventKind {
        Transition => "transition",
        SubmissionAttempt => "submission_attempt",
        Receipt => "receipt",
        Keyword => "keyword",
        /// An inbound message longer than a keyword message that contains an opt-out keyword:
        /// recorded (the keyword in `stat`), not acted on.
        KeywordMentioned => "keyword_mentioned",
        /// The carrier refused a part for now (throttling or a temporary error): the message is
        /// queued again and resubmits only the parts not yet accepted.
        Deferred => "deferred",
        /// An MMS image over the size cap was scaled down and re-encoded as JPEG to fit (the
        /// event's `note` says which, and from what size to what).
        MediaConverted => "media_converted",
        /// The recipient's phone reported the MMS read (or deleted unread): an MM7 read reply,
        /// its status in `stat` (`Read`, `Deleted`, …) and the MMSC's text in `note`. The
        /// message's status is unchanged.
        ReadReply => "read_reply",
    }
);

value_set!(
    /// Where one part of a message is in its submission to the carrier.
    PartState {
        /// Not yet submitted (or deferred by the carrier: it may be submitted again).
        Pending => "pending",
        /// Submitted, no answer recorded yet: never submitted again.
        Submitting => "submitting",
        /// Accepted under a carrier message id.
        Accepted => "accepted",
        /// Refused for good.
        Refused => "refused",
        /// Submitted, but no answer could be read: never submitted again.
        Uncertain => "uncertain",
    }
);

value_set!(
    /// Why a message is `failed` or `undelivered`, as its `error_code`.
    MessageErrorCode {
        /// The recipient opted out while the message was queued.
        ConsentRevoked => "CONSENT_REVOKED",
        /// The carrier refused the submission.
        CarrierRefused => "CARRIER_REFUSED",
        /// The submission was attempted but its outcome is unknown: it may or may not have
        /// reached the carrier, and is never submitted twice.
        SubmissionUncertain => "SUBMISSION_UNCERTAIN",
        /// The carrier's receipt said the message was not delivered.
        Undelivered => "UNDELIVERED",
        /// No final receipt arrived within the validity period.
        Expired => "EXPIRED",
        /// A media item of the MMS could not be fetched (no answer, not found, a destination
        /// refused).
        MediaUnavailable => "MEDIA_UNAVAILABLE",
        /// A media item's Content-Type is not one an MMS may carry.
        MediaTypeUnsupported => "MEDIA_TYPE_UNSUPPORTED",
        /// The media add up to more than the deployment's MMS size cap, and could not be made
        /// to fit.
        MediaTooLarge => "MEDIA_TOO_LARGE",
        /// A scheduled message's recipient was found to be a landline by a recent lookup when
        /// its time came.
        LineTypeBlocked => "LINE_TYPE_BLOCKED",
    }
);

value_set!(
    /// The recipient's current choice.
    ConsentStatus { OptedIn => "opted_in", OptedOut => "opted_out" }
);

value_set!(
    /// How a consent was collected.
    ConsentSource {
        WebForm => "web_form",
        PaperForm => "paper_form",
        Verbal => "verbal",
        Keyword => "keyword",
        Api => "api",
        Import => "import",
    }
);

value_set!(
    /// The kind of line behind a number.
    LineType { Mobile => "mobile", Landline => "landline", Voip => "voip" }
);

value_set!(
    /// Which data a key works on: `live` (real carriers) or `test` (the simulated carrier).
    KeyMode { Live => "live", Test => "test" }
);

value_set!(
    /// What a webhook event reports.
    WebhookEventType {
        /// The carrier accepted an outbound message.
        MessageSent => "message.sent",
        /// The carrier's receipt says the message reached the handset.
        MessageDelivered => "message.delivered",
        /// The carrier's receipt says the message was not delivered (or its validity ran out).
        MessageUndelivered => "message.undelivered",
        /// The message failed before or at submission.
        MessageFailed => "message.failed",
        /// An inbound message arrived on one of the organization's numbers.
        MessageReceived => "message.received",
        /// A scheduled message was canceled before its time.
        MessageCanceled => "message.canceled",
        /// A recipient's consent changed (through the API or by keyword).
        ConsentUpdated => "consent.updated",
        /// A test event asked for through the API; sent to that one endpoint, never subscribed to.
        WebhookTest => "webhook.test",
    }
);

value_set!(
    /// Where one webhook delivery stands.
    DeliveryState {
        /// Not yet acknowledged: an attempt is due or will be.
        Pending => "pending",
        /// The endpoint answered 2xx.
        Delivered => "delivered",
        /// Every attempt failed, or the endpoint answered 410 Gone.
        Failed => "failed",
    }
);

// The enum is declared by `value_set!`, which has no room for `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Priority {
    fn default() -> Self {
        Priority::Default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_the_wire_names() {
        for s in MessageStatus::ALL {
            assert_eq!(s.to_value(), s.as_str());
            assert_eq!(
                MessageStatus::try_from_value(&s.as_str().to_owned()).unwrap(),
                *s
            );
            assert_eq!(MessageStatus::parse(s.as_str()), Some(*s));
        }
        assert!(MessageStatus::try_from_value(&"bogus".to_owned()).is_err());
    }
}
