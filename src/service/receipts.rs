//! Delivery receipts: stored as the carrier sent them, matched to their message (now, or when
//! `sent` is recorded), and applied by the status machine — never moving a message backward.

use super::group_commit::each_alone_on_failure;
use super::{Error, Services};
use crate::{
    domain::{
        lifecycle::{status_after_part_receipts, EventKind, MessageErrorCode},
        message::Message,
    },
    store::{
        delivery::{Change, EventDetail},
        receipts::IncomingReceipt,
    },
};

/// A receipt in the SMPP delivery-receipt vocabulary.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub carrier_message_id: String,
    pub stat: String,
    pub err: Option<String>,
    pub done_date: Option<String>,
}

impl Receipt {
    fn detail(&self) -> EventDetail {
        EventDetail {
            carrier_message_id: Some(self.carrier_message_id.clone()),
            stat: Some(self.stat.clone()),
            err: self.err.clone(),
            done_date: self.done_date.clone(),
            error_code: None,
        }
    }
}

/// A part the carrier accepted, of a message now `sent`.
#[derive(Debug, Clone)]
pub struct SentPart {
    pub message_id: uuid::Uuid,
    pub number: u8,
    pub carrier: String,
    pub carrier_id: String,
}

/// What became of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Applied to a known message (whose status it may or may not have changed).
    Matched,
    /// No message has that carrier id yet; kept until one does.
    Pending,
}

impl Services {
    /// Stores a receipt from `carrier` and applies it if its message is known. Unknown ids,
    /// duplicates and late receipts are accepted: a carrier is never made to retry. Concurrent
    /// receipts are committed together ([`crate::store::System::record_receipts`]).
    pub async fn record_receipt(
        &self,
        carrier: &str,
        receipt: Receipt,
    ) -> Result<ReceiptOutcome, Error> {
        let incoming = IncomingReceipt {
            carrier: carrier.to_owned(),
            detail: receipt.detail(),
            received_at: None,
        };
        let system = self.system();
        self.receipt_queue
            .submit(incoming, self.settings.send_batch_max, move |receipts| {
                let system = system.clone();
                async move {
                    each_alone_on_failure("receipts", &receipts, |some| {
                        let system = system.clone();
                        Box::pin(async move {
                            let matched = system.record_receipts(some, &receipt_change).await?;
                            Ok(matched
                                .into_iter()
                                .map(|m| {
                                    if m {
                                        ReceiptOutcome::Matched
                                    } else {
                                        ReceiptOutcome::Pending
                                    }
                                })
                                .collect())
                        })
                    })
                    .await
                }
            })
            .await
    }

    /// Applies the receipts that arrived for `sent` parts before their carrier ids were stored:
    /// one query for a whole batch (usually finding none), then one transaction that matches
    /// and applies them as an arriving receipt is.
    pub(crate) async fn match_pending_receipts(&self, sent: &[SentPart]) -> Result<(), Error> {
        if sent.is_empty() {
            return Ok(());
        }
        let system = self.system();
        let wanted: Vec<(&str, &str)> = sent
            .iter()
            .map(|p| (p.carrier.as_str(), p.carrier_id.as_str()))
            .collect();
        let ids: Vec<i64> = system
            .unmatched_receipts_for(&wanted)
            .await?
            .iter()
            .map(|r| r.id)
            .collect();
        system.rematch_receipts(&ids, &receipt_change).await?;
        Ok(())
    }

    /// Matches receipts whose message has become known since they arrived (a safety net for
    /// receipts that raced with `sent`): those whose part now exists are matched and applied in
    /// one transaction.
    pub async fn match_unmatched_receipts(&self) -> Result<usize, Error> {
        let system = self.system();
        let mut ids = Vec::new();
        for receipt in system.unmatched_receipts().await? {
            if system
                .outbound_part_by_carrier_id(&receipt.carrier, &receipt.carrier_message_id)
                .await?
                .is_some()
            {
                ids.push(receipt.id);
            }
        }
        Ok(system.rematch_receipts(&ids, &receipt_change).await?)
    }
}

/// The status rule for a receipt: given the message as it stands, every part's final receipt (in
/// part order) and the receipt, the status change to make — `None` records the receipt as an
/// event only. Every receipt, one at a time or in a batch, goes through it.
pub(crate) fn receipt_change(
    current: &Message,
    finals: &[Option<&str>],
    receipt: &EventDetail,
) -> Result<Option<Change>, String> {
    let status = current.status;
    let next = status_after_part_receipts(status, finals);
    if next == status {
        return Ok(None);
    }
    let mut change = Change::new(status, next).map_err(|e| e.to_string())?;
    change.kind = EventKind::Receipt;
    change.detail = receipt.clone();
    if next == crate::domain::message::MessageStatus::Undelivered {
        change.error_code = Some(MessageErrorCode::Undelivered);
        change.error_message = Some(format!(
            "the carrier reported {} (err {})",
            receipt.stat.as_deref().unwrap_or_default(),
            receipt.err.as_deref().unwrap_or("none")
        ));
        change.detail.error_code = change.error_code;
    }
    Ok(Some(change))
}
