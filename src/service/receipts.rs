//! Delivery receipts: stored as the carrier sent them, matched to their message (now, or when
//! `sent` is recorded), and applied by the status machine — never moving a message backward.

use super::{Error, Services};
use crate::{
    domain::{
        lifecycle::{
            receipt_effect, status_after_receipt, EventKind, MessageErrorCode, ReceiptEffect,
        },
        message::Message,
    },
    store::delivery::{Change, EventDetail, StoredReceipt},
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
    /// duplicates and late receipts are accepted: a carrier is never made to retry.
    pub async fn record_receipt(
        &self,
        carrier: &str,
        receipt: Receipt,
    ) -> Result<ReceiptOutcome, Error> {
        let system = self.system();
        let row = system.insert_receipt(carrier, &receipt.detail()).await?;
        match system
            .outbound_by_carrier_id(carrier, &receipt.carrier_message_id)
            .await?
        {
            Some(message) => {
                self.apply_receipt(message, &row).await?;
                Ok(ReceiptOutcome::Matched)
            }
            None => Ok(ReceiptOutcome::Pending),
        }
    }

    /// Applies the receipts that arrived for `message` before its carrier id was stored.
    pub(crate) async fn match_pending_receipts(&self, message: &Message) -> Result<(), Error> {
        let (Some(carrier), Some(carrier_id)) = (
            &message.delivery.carrier,
            &message.delivery.carrier_message_id,
        ) else {
            return Ok(());
        };
        let system = self.system();
        for receipt in system
            .unmatched_receipts(Some((carrier, carrier_id)))
            .await?
        {
            let current = system
                .message_by_id(message.id)
                .await?
                .ok_or(Error::NotFound)?;
            self.apply_receipt(current, &receipt).await?;
        }
        Ok(())
    }

    /// Matches receipts whose message has become known since they arrived (a safety net for
    /// receipts that raced with `sent`).
    pub async fn match_unmatched_receipts(&self) -> Result<usize, Error> {
        let system = self.system();
        let mut matched = 0;
        for receipt in system.unmatched_receipts(None).await? {
            if let Some(message) = system
                .outbound_by_carrier_id(&receipt.carrier, &receipt.carrier_message_id)
                .await?
            {
                self.apply_receipt(message, &receipt).await?;
                matched += 1;
            }
        }
        Ok(matched)
    }

    /// Records the receipt as an event of `message` and moves the status as the machine says.
    async fn apply_receipt(&self, message: Message, receipt: &StoredReceipt) -> Result<(), Error> {
        let system = self.system();
        if !system.mark_receipt_matched(receipt.id, message.id).await? {
            return Ok(()); // another process applied it
        }
        let detail = EventDetail {
            carrier_message_id: Some(receipt.carrier_message_id.clone()),
            stat: Some(receipt.stat.clone()),
            err: receipt.err.clone(),
            done_date: receipt.done_date.clone(),
            error_code: None,
        };
        let mut current = message;
        for _ in 0..3 {
            let status = current.status;
            let next = status_after_receipt(status, &receipt.stat);
            if next == status {
                system
                    .record_event(&current, EventKind::Receipt, detail)
                    .await?;
                return Ok(());
            }
            let mut change = Change::new(status, next)?;
            change.kind = EventKind::Receipt;
            change.detail = detail.clone();
            if receipt_effect(&receipt.stat) == ReceiptEffect::Undelivered {
                change.error_code = Some(MessageErrorCode::Undelivered);
                change.error_message = Some(format!(
                    "the carrier reported {} (err {})",
                    receipt.stat,
                    receipt.err.as_deref().unwrap_or("none")
                ));
                change.detail.error_code = change.error_code;
            }
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
