//! Delivery receipts: stored as the carrier sent them, matched to their message (now, or when
//! `sent` is recorded), and applied by the status machine — never moving a message backward.

use super::group_commit::each_alone_on_failure;
use super::{Error, Services};
use crate::{
    domain::{
        lifecycle::{is_final_stat, status_after_part_receipts, EventKind, MessageErrorCode},
        message::Message,
    },
    store::{
        delivery::{Change, EventDetail, StoredReceipt},
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
    /// one query for a whole batch (usually finding none).
    pub(crate) async fn match_pending_receipts(&self, sent: &[SentPart]) -> Result<(), Error> {
        if sent.is_empty() {
            return Ok(());
        }
        let system = self.system();
        let wanted: Vec<(&str, &str)> = sent
            .iter()
            .map(|p| (p.carrier.as_str(), p.carrier_id.as_str()))
            .collect();
        for receipt in system.unmatched_receipts_for(&wanted).await? {
            let Some(part) = sent.iter().find(|p| {
                p.carrier == receipt.carrier && p.carrier_id == receipt.carrier_message_id
            }) else {
                continue;
            };
            let current = system
                .message_by_id(part.message_id)
                .await?
                .ok_or(Error::NotFound)?;
            self.apply_receipt(current, part.number, &receipt).await?;
        }
        Ok(())
    }

    /// Matches receipts whose message has become known since they arrived (a safety net for
    /// receipts that raced with `sent`).
    pub async fn match_unmatched_receipts(&self) -> Result<usize, Error> {
        let system = self.system();
        let mut matched = 0;
        for receipt in system.unmatched_receipts().await? {
            if let Some((message, part)) = system
                .outbound_part_by_carrier_id(&receipt.carrier, &receipt.carrier_message_id)
                .await?
            {
                self.apply_receipt(message, part, &receipt).await?;
                matched += 1;
            }
        }
        Ok(matched)
    }

    /// Records the receipt of `message`'s part `part` as an event of the message and moves the
    /// status as the machine says, given every part's final receipt.
    async fn apply_receipt(
        &self,
        message: Message,
        part: u8,
        receipt: &StoredReceipt,
    ) -> Result<(), Error> {
        let system = self.system();
        if !system.mark_receipt_matched(receipt.id, message.id).await? {
            return Ok(()); // another process applied it
        }
        let finals = if is_final_stat(&receipt.stat) {
            system
                .record_part_receipt(message.id, part, &receipt.stat)
                .await?
        } else {
            system
                .parts_of(message.id)
                .await?
                .into_iter()
                .map(|p| p.receipt_stat)
                .collect()
        };
        let finals: Vec<Option<&str>> = finals.iter().map(|s| s.as_deref()).collect();
        let detail = EventDetail {
            carrier_message_id: Some(receipt.carrier_message_id.clone()),
            stat: Some(receipt.stat.clone()),
            err: receipt.err.clone(),
            done_date: receipt.done_date.clone(),
            error_code: None,
        };
        let mut current = message;
        for _ in 0..3 {
            let Some(change) = receipt_change(&current, &finals, &detail)
                .map_err(|e| Error::Internal(anyhow::anyhow!(e)))?
            else {
                system
                    .record_event(&current, EventKind::Receipt, detail)
                    .await?;
                return Ok(());
            };
            match system.change_status(current.id, change).await? {
                Some(_) => return Ok(()),
                // The status moved meanwhile: read it again and decide again.
                None => {
                    current = system
                        .message_by_id(current.id)
                        .await?
                        .ok_or(Error::NotFound)?
                }
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "message {} kept changing while a receipt was applied",
            current.id
        )))
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
