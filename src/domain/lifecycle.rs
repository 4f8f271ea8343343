//! The message status machine and the meaning of carrier delivery receipts.
//!
//! `queued → sending → sent → delivered | undelivered`, `queued → undelivered` when the validity
//! (counted from creation, or from `send_at`) runs out before a carrier took the message, and
//! `failed` from any state that is not terminal. A message sent with a `send_at` starts
//! `scheduled`: at its time it becomes `queued` (or `failed`, when its recipient may no longer be
//! messaged), and until then it may be `canceled`. A message whose lease expires before its submission was attempted goes back from
//! `sending` to `queued`. Terminal states never change. Receipts act only on `sent` messages:
//! they never move a message backward. Which cause makes which change, and what else it writes,
//! is planned in [`super::transition`].

pub use entity::values::{EventKind, MessageErrorCode};

use super::{message::MessageStatus, Timestamp};

/// One step of a message's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's place in the server's order of events.
    pub sequence: i64,
    pub kind: EventKind,
    /// The message's status after the event.
    pub status: MessageStatus,
    pub occurred_at: Timestamp,
    pub carrier_message_id: Option<String>,
    /// A receipt's `stat`, or the keyword of an inbound message.
    pub stat: Option<String>,
    pub err: Option<String>,
    pub done_date: Option<String>,
    pub error_code: Option<MessageErrorCode>,
    /// What the server did to the message, when the event says (a media conversion).
    pub note: Option<String>,
    /// The carrier connection the event came through (a carrier's answer, a receipt).
    pub connection: Option<String>,
}

/// Statuses that never change again.
pub const TERMINAL_STATUSES: [MessageStatus; 5] = [
    MessageStatus::Delivered,
    MessageStatus::Undelivered,
    MessageStatus::Failed,
    MessageStatus::Received,
    MessageStatus::Canceled,
];

/// Whether `status` never changes again.
pub fn is_terminal(status: MessageStatus) -> bool {
    TERMINAL_STATUSES.contains(&status)
}

/// Whether the machine allows `from → to`.
pub fn can_transition(from: MessageStatus, to: MessageStatus) -> bool {
    use MessageStatus::*;
    if is_terminal(from) {
        return false;
    }
    matches!(
        (from, to),
        (Scheduled, Queued)
            | (Scheduled, Canceled)
            | (Scheduled, Failed)
            | (Queued, Sending)
            | (Sending, Queued)
            | (Sending, Sent)
            | (Sent, Delivered)
            | (Sent, Undelivered)
            // Its validity ran out before a carrier could take it.
            | (Queued, Undelivered)
            | (Queued | Sending | Sent, Failed)
    )
}

/// Every status the machine allows to move to `to`: what a guarded update may find in the row.
pub fn sources_of(to: MessageStatus) -> Vec<MessageStatus> {
    MessageStatus::ALL
        .iter()
        .copied()
        .filter(|from| can_transition(*from, to))
        .collect()
}

/// What a receipt's `stat` does to a `sent` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptEffect {
    Delivered,
    /// Undelivered, keeping `stat` and `err` as the reason.
    Undelivered,
    /// Recorded, no status change (ACCEPTD, ENROUTE, UNKNOWN, or a `stat` we do not know).
    Nothing,
}

/// The SMPP delivery-receipt `stat` values.
pub const RECEIPT_STATS: [&str; 8] = [
    "DELIVRD", "UNDELIV", "EXPIRED", "DELETED", "REJECTD", "ACCEPTD", "ENROUTE", "UNKNOWN",
];

pub fn receipt_effect(stat: &str) -> ReceiptEffect {
    match stat {
        "DELIVRD" => ReceiptEffect::Delivered,
        "UNDELIV" | "EXPIRED" | "DELETED" | "REJECTD" => ReceiptEffect::Undelivered,
        _ => ReceiptEffect::Nothing,
    }
}

/// The status after a receipt: only a `sent` message moves.
pub fn status_after_receipt(current: MessageStatus, stat: &str) -> MessageStatus {
    if current != MessageStatus::Sent {
        return current;
    }
    match receipt_effect(stat) {
        ReceiptEffect::Delivered => MessageStatus::Delivered,
        ReceiptEffect::Undelivered => MessageStatus::Undelivered,
        ReceiptEffect::Nothing => current,
    }
}

/// The status a message of several parts reaches from `current` given each part's final receipt
/// (`None` while a part has none): `undelivered` when any part's receipt says so, `delivered`
/// when every part's says delivered, otherwise unchanged. Only a `sent` message moves.
pub fn status_after_part_receipts(current: MessageStatus, parts: &[Option<&str>]) -> MessageStatus {
    if current != MessageStatus::Sent || parts.is_empty() {
        return current;
    }
    let effects: Vec<_> = parts.iter().map(|p| p.map(receipt_effect)).collect();
    if effects.contains(&Some(ReceiptEffect::Undelivered)) {
        MessageStatus::Undelivered
    } else if effects.iter().all(|e| *e == Some(ReceiptEffect::Delivered)) {
        MessageStatus::Delivered
    } else {
        current
    }
}

/// Whether a receipt's `stat` is final for its part (delivered or not delivered).
pub fn is_final_stat(stat: &str) -> bool {
    receipt_effect(stat) != ReceiptEffect::Nothing
}

/// The rank of a status along the machine, for "never backward" checks.
pub fn rank(status: MessageStatus) -> u8 {
    use MessageStatus::*;
    match status {
        Scheduled => 0,
        Queued => 1,
        Sending => 2,
        Sent => 3,
        Delivered | Undelivered | Failed | Received | Canceled => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use MessageStatus::*;

    #[test]
    fn the_documented_receipt_mapping() {
        assert_eq!(status_after_receipt(Sent, "DELIVRD"), Delivered);
        for stat in ["UNDELIV", "EXPIRED", "DELETED", "REJECTD"] {
            assert_eq!(status_after_receipt(Sent, stat), Undelivered);
        }
        for stat in ["ACCEPTD", "ENROUTE", "UNKNOWN", "SOMETHING"] {
            assert_eq!(status_after_receipt(Sent, stat), Sent);
        }
    }

    #[test]
    fn terminal_states_never_change() {
        for terminal in [Delivered, Undelivered, Failed, Received] {
            for stat in RECEIPT_STATS {
                assert_eq!(status_after_receipt(terminal, stat), terminal);
            }
            for to in MessageStatus::ALL {
                assert!(!can_transition(terminal, *to));
            }
        }
    }

    /// DESIGN.md's machine written out by hand: `queued → sending → sent → delivered |
    /// undelivered`, `failed` from any state that is not terminal, and `sending → queued` when a
    /// lease runs out before the attempt; `queued → undelivered` when a message's validity runs
    /// out before it was sent ("queued or sent past it → `undelivered`/`EXPIRED`"). Rows are `from`, columns `to`, in the order queued,
    /// sending, sent, delivered, undelivered, failed, received.
    #[test]
    fn every_pair_of_statuses_answers_as_the_design_says() {
        let order = [
            Scheduled,
            Queued,
            Sending,
            Sent,
            Delivered,
            Undelivered,
            Failed,
            Received,
            Canceled,
        ];
        let table: [[u8; 9]; 9] = [
            // sc q  s  st d  u  f  r  c
            [0, 1, 0, 0, 0, 0, 1, 0, 1], // scheduled
            [0, 0, 1, 0, 0, 1, 1, 0, 0], // queued
            [0, 1, 0, 1, 0, 0, 1, 0, 0], // sending
            [0, 0, 0, 0, 1, 1, 1, 0, 0], // sent
            [0, 0, 0, 0, 0, 0, 0, 0, 0], // delivered
            [0, 0, 0, 0, 0, 0, 0, 0, 0], // undelivered
            [0, 0, 0, 0, 0, 0, 0, 0, 0], // failed
            [0, 0, 0, 0, 0, 0, 0, 0, 0], // received
            [0, 0, 0, 0, 0, 0, 0, 0, 0], // canceled
        ];
        assert_eq!(MessageStatus::ALL.len(), 9);
        for (i, from) in order.iter().enumerate() {
            for (j, to) in order.iter().enumerate() {
                let allowed = table[i][j] == 1;
                assert_eq!(can_transition(*from, *to), allowed, "{from} → {to}");
                assert_eq!(sources_of(*to).contains(from), allowed, "{from} → {to}");
            }
        }
    }

    #[test]
    fn the_documented_transitions() {
        assert!(can_transition(Queued, Sending));
        assert!(can_transition(Sending, Queued));
        assert!(can_transition(Sending, Sent));
        assert!(can_transition(Sent, Delivered));
        assert!(
            can_transition(Queued, Failed)
                && can_transition(Sending, Failed)
                && can_transition(Sent, Failed)
        );
        assert!(!can_transition(Queued, Sent));
        assert!(!can_transition(Sent, Queued));
        assert!(!can_transition(Queued, Delivered));
        assert!(can_transition(Queued, Undelivered));
    }

    #[test]
    fn a_message_of_several_parts_is_delivered_when_every_part_is() {
        let d = Some("DELIVRD");
        let u = Some("UNDELIV");
        assert_eq!(status_after_part_receipts(Sent, &[d, d, d]), Delivered);
        assert_eq!(status_after_part_receipts(Sent, &[d, None, d]), Sent);
        assert_eq!(
            status_after_part_receipts(Sent, &[d, Some("ENROUTE"), d]),
            Sent
        );
        assert_eq!(
            status_after_part_receipts(Sent, &[None, u, None]),
            Undelivered
        );
        assert_eq!(status_after_part_receipts(Sent, &[d, d, u]), Undelivered);
        assert_eq!(status_after_part_receipts(Delivered, &[u]), Delivered);
        for stat in RECEIPT_STATS {
            assert_eq!(
                status_after_part_receipts(Sent, &[Some(stat)]),
                status_after_receipt(Sent, stat),
                "one part answers as a whole message"
            );
        }
    }

    proptest! {
        #[test]
        fn receipts_never_move_a_message_backward(start in proptest::sample::select(MessageStatus::ALL.to_vec()), stats in proptest::collection::vec(proptest::sample::select(RECEIPT_STATS.to_vec()), 0..20)) {
            let mut status = start;
            for stat in stats {
                let next = status_after_receipt(status, stat);
                prop_assert!(rank(next) >= rank(status));
                status = next;
            }
        }
    }
}
