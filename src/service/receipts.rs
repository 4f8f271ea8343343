//! Delivery receipts: stored as the carrier sent them, matched to their message (now, or when
//! `sent` is recorded), and applied by the status machine — never moving a message backward.

use super::group_commit::each_alone_on_failure;
use super::{Error, Services};
use crate::store::{delivery::EventDetail, receipts::IncomingReceipt};

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
            note: None,
            connection: None,
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

/// What one sweep did with unmatched receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recheck {
    /// Receipts it read (only those still within their recheck period, and the ones after).
    pub looked_at: usize,
    /// Receipts it matched to their message and applied.
    pub matched: usize,
    /// Receipts past their retention it deleted.
    pub purged: u64,
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
            detail: EventDetail {
                connection: Some(carrier.to_owned()),
                ..receipt.detail()
            },
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
                            let matched = system.record_receipts(some).await?;
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

    /// Matches receipts whose message has become known since they arrived (a receipt that raced
    /// the `sent` of its message): each unmatched receipt is looked at by the sweeps of its first
    /// [`super::Settings::receipt_recheck`] only — after that it is matched when its carrier id
    /// is stored — and deleted once past [`super::Settings::unmatched_receipt_retention`].
    pub async fn match_unmatched_receipts(&self) -> Result<Recheck, Error> {
        use std::sync::atomic::Ordering;
        let system = self.system();
        let now = chrono::Utc::now();
        let recheck = chrono::Duration::from_std(self.settings.receipt_recheck)
            .unwrap_or(chrono::Duration::MAX);
        let after = self.receipts_checked.load(Ordering::Acquire);
        let recent = system.unmatched_receipts_after(after, 500).await?;
        let mut ids = Vec::new();
        // The receipts past the race, in id order up to the first recent one, are not looked at
        // again.
        let (mut settled, mut settling) = (after, true);
        for receipt in &recent {
            if system
                .outbound_part_by_carrier_id(&receipt.carrier, &receipt.carrier_message_id)
                .await?
                .is_some()
            {
                ids.push(receipt.id);
            }
            settling = settling && receipt.received_at < now - recheck;
            if settling {
                settled = receipt.id;
            }
        }
        let matched = system.rematch_receipts(&ids).await?;
        self.receipts_checked.fetch_max(settled, Ordering::AcqRel);
        let retention = chrono::Duration::from_std(self.settings.unmatched_receipt_retention)
            .unwrap_or(chrono::Duration::MAX);
        let purged = system
            .purge_unmatched_receipts(now - retention, 1000)
            .await?;
        Ok(Recheck {
            looked_at: recent.len(),
            matched,
            purged,
        })
    }
}
