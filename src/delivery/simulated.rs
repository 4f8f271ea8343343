//! The simulated carrier: outcomes fixed by the recipient's test number, receipts after a delay,
//! delivered through the same receipt path a real carrier uses.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use dashmap::DashMap;
use uuid::Uuid;

use super::carrier::{Capabilities, Carrier, CarrierHealth, Room, Submission, SubmitError};
use crate::{
    domain::{
        message::Part,
        test_numbers::{behaviour, CarrierOutcome},
        PhoneNumber,
    },
    service::{receipts::Receipt, Services},
};

/// The simulated carrier takes SMS and MMS alike.
pub const CAPABILITIES: Capabilities = Capabilities { mms: true };

/// How long the simulated carrier waits before it sends a receipt, unless configured otherwise.
pub fn default_receipt_delay() -> Duration {
    crate::defaults::duration(crate::defaults::RECEIPT_DELAY)
}

/// The simulated carrier.
pub struct SimulatedCarrier {
    services: Services,
    /// The name its receipts and ids are stored under.
    name: String,
    receipt_delay: Duration,
    submissions: Arc<DashMap<Uuid, u32>>,
    /// An MMS's media are fetched and checked as a real MMS carrier's would be, so that test
    /// mode and the demo show the same media errors.
    media: super::media::MediaFetcher,
}

impl SimulatedCarrier {
    pub fn new(services: Services, receipt_delay: Duration) -> SimulatedCarrier {
        SimulatedCarrier {
            name: services.settings.carrier_name.clone(),
            media: super::media::MediaFetcher::new(services.settings.media),
            services,
            receipt_delay,
            submissions: Arc::default(),
        }
    }

    /// The same carrier under another name (test mode's beside a live SMPP carrier).
    pub fn named(mut self, name: &str) -> SimulatedCarrier {
        self.name = name.to_owned();
        self
    }

    /// How many times a message was submitted (tests hold the worker to at most once).
    pub fn submissions(&self, message_id: Uuid) -> u32 {
        self.submissions.get(&message_id).map_or(0, |n| *n)
    }
}

impl SimulatedCarrier {
    /// The receipt a test number gets: `(stat, err)`, or none (refused, or never answered).
    fn receipt_for(to: &str) -> Option<(&'static str, &'static str)> {
        let outcome =
            PhoneNumber::parse(to).map_or(CarrierOutcome::Delivered, |n| behaviour(&n).carrier);
        match outcome {
            CarrierOutcome::Delivered => Some(("DELIVRD", "000")),
            CarrierOutcome::Undelivered => Some(("UNDELIV", "001")),
            CarrierOutcome::Refused | CarrierOutcome::NoReceipt => None,
        }
    }

    /// Sends `stat` for `carrier_id` after the receipt delay, through the receipt path.
    fn schedule_receipt(&self, carrier_id: String, stat: &'static str, err: &'static str) {
        let services = self.services.clone();
        let carrier = self.name.clone();
        let delay = self.receipt_delay;
        let receipt = Receipt {
            carrier_message_id: carrier_id,
            stat: stat.into(),
            err: Some(err.into()),
            done_date: Some(chrono::Utc::now().format("%y%m%d%H%M").to_string()),
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(err) = services.record_receipt(&carrier, receipt).await {
                tracing::error!(%err, "the simulated carrier's receipt was not recorded");
            }
        });
    }
}

impl SimulatedCarrier {
    /// The answer to a submission: the test number's outcome, its receipt scheduled.
    fn answer(&self, submission: &Submission) -> Result<String, SubmitError> {
        *self.submissions.entry(submission.message_id).or_insert(0) += 1;
        let outcome = PhoneNumber::parse(&submission.to)
            .map_or(CarrierOutcome::Delivered, |n| behaviour(&n).carrier);
        if outcome == CarrierOutcome::Refused {
            return Err(SubmitError::Refused {
                code: "REJECTED".into(),
                message: "the carrier refused the submission (test number 555-015X)".into(),
            });
        }
        let carrier_id = format!("sim-{}", Uuid::now_v7().simple());
        if let Some((stat, err)) = Self::receipt_for(&submission.to) {
            self.schedule_receipt(carrier_id.clone(), stat, err);
        }
        Ok(carrier_id)
    }
}

#[async_trait]
impl Carrier for SimulatedCarrier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "simulated",
            sessions: 1,
            bound: 1,
        }
    }

    /// The whole message is one part; an MMS's media are fetched and checked first.
    async fn submit_in(
        &self,
        submission: &Submission,
        _part: &Part,
        room: Room,
    ) -> (Result<String, SubmitError>, Room) {
        if let Err(refused) = self.media.prepare(&self.services, submission).await {
            return (Err(refused), room);
        }
        (self.answer(submission), room)
    }

    /// The receipts are only in this process's memory: after a restart, every message still
    /// `sent` through this carrier gets the receipt its test number owes, so none waits out its
    /// validity. (A receipt that arrives twice is recorded and changes nothing.)
    async fn recover(&self) -> anyhow::Result<usize> {
        let sent = self
            .services
            .sent_messages(self.name())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut scheduled = 0;
        for message in sent {
            let (Some(carrier_id), Some((stat, err))) = (
                message.delivery.carrier_message_id.clone(),
                Self::receipt_for(message.to.as_str()),
            ) else {
                continue;
            };
            self.schedule_receipt(carrier_id, stat, err);
            scheduled += 1;
        }
        Ok(scheduled)
    }
}
