//! SMPP 3.4 PDUs as AgentMessage writes and reads them: one `submit_sm` per part of a message,
//! and what a `deliver_sm` says (a delivery receipt, or a message from a recipient). Encoding and
//! decoding of the PDUs themselves is rusmpp's.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusmpp::{
    pdus::{DeliverSm, SubmitSm},
    tlvs::TlvValue,
    types::{COctetString, EmptyOrFullCOctetString, OctetString},
    values::{DataCoding, EsmClass, MessageState, Npi, RegisteredDelivery, ServiceType, Ton},
    CommandStatus,
};

use crate::{
    delivery::carrier::Submission,
    domain::{
        message::Part,
        submission::{decode, read_receipt_text, read_udh, submit_parts, Concatenation},
    },
};

/// Type of number and numbering plan of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    pub ton: u8,
    pub npi: u8,
}

impl Addressing {
    /// International, ISDN (E.164): the default for both ends.
    pub const INTERNATIONAL: Addressing = Addressing { ton: 1, npi: 1 };
}

/// What goes into every `submit_sm` besides the message.
#[derive(Debug, Clone)]
pub struct SubmitDefaults {
    pub source: Addressing,
    pub destination: Addressing,
}

/// Why a `submit_sm` could not be written (the part is refused without being sent).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unwritable(pub String);

/// An E.164 number as SMPP addresses carry it: without the `+`.
pub fn address_of(e164: &str) -> &str {
    e164.strip_prefix('+').unwrap_or(e164)
}

/// A received address in E.164: digits get a `+` (SMSCs send international numbers without it).
pub fn e164_of(address: &str) -> String {
    let address = address.trim();
    if address.starts_with('+') {
        address.to_owned()
    } else {
        format!("+{address}")
    }
}

/// The SMPP 3.4 relative time format (`YYMMDDhhmmss000R`) for `left` (at least one second, at
/// most 99 days 23:59:59).
pub fn relative_validity(left: chrono::Duration) -> String {
    let max = 99 * 86_400 + 86_399;
    let secs = left.num_seconds().clamp(1, max);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hours, rest) = (rest / 3600, rest % 3600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    format!("0000{days:02}{hours:02}{minutes:02}{seconds:02}000R")
}

/// The `submit_sm` of `part` (numbered from 1) of the submission's text: data_coding 0 (GSM 03.38) or 8 (UCS-2),
/// a concatenation UDH under the part's reference with esm_class UDHI when the text has several parts, a
/// final delivery receipt requested, and the time left until the submission's `valid_until` as its validity.
pub fn submit_sm(
    defaults: &SubmitDefaults,
    submission: &Submission,
    part: &Part,
    now: DateTime<Utc>,
) -> Result<SubmitSm, Unwritable> {
    let (from, to, text) = (&submission.from, &submission.to, &submission.text);
    let (number, reference, valid_until) = (part.number, part.reference, submission.valid_until);
    let (data_coding, parts) = submit_parts(text, reference);
    let part = parts
        .get(usize::from(number).saturating_sub(1))
        .ok_or_else(|| Unwritable(format!("the text has no part {number}")))?;
    let address = |a: &str| {
        COctetString::<1, 21>::from_str(address_of(a))
            .map_err(|e| Unwritable(format!("address {a}: {e}")))
    };
    // Default mode and type; UDHI (0x40) when a concatenation header leads the message.
    // (rusmpp's `EsmClass::default()` is not 0: its ANSI-41 bits default to 0x08.)
    let esm_class = EsmClass::from(if part.has_udh { 0x40 } else { 0x00 });
    Ok(SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::from(defaults.source.ton))
        .source_addr_npi(Npi::from(defaults.source.npi))
        .source_addr(address(from)?)
        .dest_addr_ton(Ton::from(defaults.destination.ton))
        .dest_addr_npi(Npi::from(defaults.destination.npi))
        .destination_addr(address(to)?)
        .esm_class(esm_class)
        // A final receipt, delivered or not.
        .registered_delivery(RegisteredDelivery::from(0x01))
        .validity_period(
            EmptyOrFullCOctetString::from_str(&relative_validity(valid_until - now))
                .map_err(|e| Unwritable(format!("validity: {e}")))?,
        )
        .data_coding(DataCoding::from(data_coding))
        .short_message(
            OctetString::from_slice(&part.short_message)
                .map_err(|e| Unwritable(format!("short message: {e}")))?,
        )
        .build())
}

/// What a `deliver_sm` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// A delivery receipt for the part the carrier gave `id`.
    Receipt {
        id: String,
        stat: String,
        err: Option<String>,
        done_date: Option<String>,
    },
    /// A message from a recipient (or one part of it).
    Message {
        from: String,
        to: String,
        text: String,
        part: Option<Concatenation>,
    },
}

/// The receipt `stat` a `message_state` TLV stands for.
pub fn stat_of(state: MessageState) -> &'static str {
    match state {
        MessageState::Enroute => "ENROUTE",
        MessageState::Delivered => "DELIVRD",
        MessageState::Expired => "EXPIRED",
        MessageState::Deleted => "DELETED",
        MessageState::Undeliverable => "UNDELIV",
        MessageState::Accepted => "ACCEPTD",
        MessageState::Rejected => "REJECTD",
        _ => "UNKNOWN",
    }
}

/// Reads a `deliver_sm`: a receipt when esm_class says so or the `receipted_message_id` and
/// `message_state` TLVs are there (the TLVs win over the receipt text), else a message decoded
/// from data_coding 0, 3 or 8 with its concatenation header read.
pub fn read_deliver_sm(pdu: &DeliverSm) -> Delivered {
    let esm = u8::from(pdu.esm_class);
    // Bits 5–2: 0001 MC delivery receipt, 0010/0100 SME acknowledgements, 1000 intermediate
    // notification.
    let receipt_type = matches!(esm & 0x3C, 0x04 | 0x08 | 0x10 | 0x20);
    let (mut tlv_id, mut tlv_state) = (None, None);
    for tlv in pdu.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => tlv_id = Some(id.as_str().to_owned()),
            Some(TlvValue::MessageState(state)) => tlv_state = Some(*state),
            _ => {}
        }
    }
    let raw = pdu.short_message().as_ref();
    let data_coding = u8::from(pdu.data_coding);
    if receipt_type || (tlv_id.is_some() && tlv_state.is_some()) {
        let body = if esm & 0x40 != 0 {
            read_udh(raw).map_or(raw, |(_, rest)| rest)
        } else {
            raw
        };
        let text = read_receipt_text(&decode(data_coding, body))
            .or_else(|| read_receipt_text(&String::from_utf8_lossy(body)));
        let id = tlv_id.or_else(|| text.as_ref().map(|t| t.id.clone()));
        let stat = tlv_state
            .map(|s| stat_of(s).to_owned())
            .or_else(|| text.as_ref().map(|t| t.stat.clone()));
        if let (Some(id), Some(stat)) = (id, stat) {
            return Delivered::Receipt {
                id,
                stat,
                err: text.as_ref().and_then(|t| t.err.clone()),
                done_date: text.and_then(|t| t.done_date),
            };
        }
    }
    let (part, body) = if esm & 0x40 != 0 {
        match read_udh(raw) {
            Some((at, rest)) => (Some(at), rest),
            None => (None, raw),
        }
    } else {
        (None, raw)
    };
    Delivered::Message {
        from: e164_of(pdu.source_addr.as_str()),
        to: e164_of(pdu.destination_addr.as_str()),
        text: decode(data_coding, body),
        part,
    }
}

/// An SMPP command status by its specification name (`ESME_RTHROTTLED`), or in hex when
/// rusmpp does not name it.
pub fn status_name(status: CommandStatus) -> String {
    let debug = format!("{status:?}");
    match debug.strip_prefix("Esme") {
        Some(rest) if !rest.contains('(') => format!("ESME_{}", rest.to_ascii_uppercase()),
        _ => format!("0x{:08X}", u32::from(status)),
    }
}

/// What a refused `submit_sm` means for its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Refused for now: not sent, safe to submit again later.
    Temporary,
    /// Refused for good.
    Permanent,
}

/// The command statuses after which a part may be submitted again: the SMSC did not take it and
/// says the condition passes.
pub const TEMPORARY_STATUSES: [CommandStatus; 6] = [
    // Throttling error: the ESME exceeded its allowed message limits.
    CommandStatus::EsmeRthrottled,
    // Message queue full.
    CommandStatus::EsmeRmsgqful,
    // System error.
    CommandStatus::EsmeRsyserr,
    // Submit failed (the SMSC could not store it now).
    CommandStatus::EsmeRsubmitfail,
    // Unable to process, delivery failure (SMSC-internal, transient by SMPP 5 usage).
    CommandStatus::EsmeRdeliveryfailure,
    // The SMSC is not bound to the network for now.
    CommandStatus::EsmeRinvbndsts,
];

/// What a refused `submit_sm` means: temporary for [`TEMPORARY_STATUSES`], permanent otherwise.
pub fn refusal(status: CommandStatus) -> Refusal {
    if TEMPORARY_STATUSES.contains(&status) {
        Refusal::Temporary
    } else {
        Refusal::Permanent
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusmpp::tlvs::MessageDeliveryRequestTlvValue;

    use super::*;
    use crate::domain::{
        message::PartState,
        submission::same_carrier_id,
        text::{split_segments, strategies::any_text},
    };

    const STATES: [(MessageState, &str); 7] = [
        (MessageState::Enroute, "ENROUTE"),
        (MessageState::Delivered, "DELIVRD"),
        (MessageState::Expired, "EXPIRED"),
        (MessageState::Deleted, "DELETED"),
        (MessageState::Undeliverable, "UNDELIV"),
        (MessageState::Accepted, "ACCEPTD"),
        (MessageState::Rejected, "REJECTD"),
    ];

    fn receipt_pdu(text: &str, tlvs: Option<(&str, MessageState)>, esm_class: u8) -> DeliverSm {
        let mut builder = DeliverSm::builder()
            .source_addr(COctetString::from_str("12125550100").unwrap())
            .destination_addr(COctetString::from_str("15551112222").unwrap())
            .esm_class(EsmClass::from(esm_class))
            .short_message(OctetString::from_slice(text.as_bytes()).unwrap());
        if let Some((id, state)) = tlvs {
            builder = builder
                .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
                    COctetString::from_str(id).unwrap(),
                ))
                .push_tlv(MessageDeliveryRequestTlvValue::MessageState(state));
        }
        builder.build()
    }

    #[test]
    fn status_names_are_the_specifications() {
        assert_eq!(
            status_name(CommandStatus::EsmeRthrottled),
            "ESME_RTHROTTLED"
        );
        assert_eq!(
            status_name(CommandStatus::EsmeRinvdstadr),
            "ESME_RINVDSTADR"
        );
        assert_eq!(status_name(CommandStatus::EsmeRok), "ESME_ROK");
        assert_eq!(refusal(CommandStatus::EsmeRmsgqful), Refusal::Temporary);
        assert_eq!(refusal(CommandStatus::EsmeRinvdstadr), Refusal::Permanent);
    }

    #[test]
    fn validity_is_written_in_the_relative_format() {
        assert_eq!(
            relative_validity(chrono::Duration::hours(48)),
            "000002000000000R"
        );
        assert_eq!(
            relative_validity(chrono::Duration::seconds(3_723)),
            "000000010203000R"
        );
        assert_eq!(
            relative_validity(chrono::Duration::seconds(-5)),
            "000000000001000R"
        );
        assert_eq!(
            relative_validity(chrono::Duration::days(400)),
            "000099235959000R"
        );
    }

    #[test]
    fn esm_class_is_zero_or_udhi_only() {
        let submission = Submission {
            message_id: uuid::Uuid::now_v7(),
            from: "+15551112222".into(),
            to: "+12125550100".into(),
            text: "x".repeat(200),
            media_urls: vec![],
            valid_until: Utc::now() + chrono::Duration::hours(1),
        };
        let part = |number| Part {
            number,
            total: 2,
            reference: 7,
            state: PartState::Pending,
            carrier_message_id: None,
            receipt_stat: None,
        };
        let defaults = SubmitDefaults {
            source: Addressing::INTERNATIONAL,
            destination: Addressing { ton: 0, npi: 1 },
        };
        let first = submit_sm(&defaults, &submission, &part(1), Utc::now()).unwrap();
        assert_eq!(u8::from(first.esm_class), 0x40);
        assert_eq!(first.source_addr.as_str(), "15551112222");
        assert_eq!(u8::from(first.dest_addr_ton), 0);
        let single = Submission {
            text: "short".into(),
            ..submission.clone()
        };
        let only = submit_sm(&defaults, &single, &part(1), Utc::now()).unwrap();
        assert_eq!(u8::from(only.esm_class), 0x00);
        assert!(submit_sm(&defaults, &single, &part(2), Utc::now()).is_err());
    }

    proptest! {
        /// Receipts in TLV form, text form, or both, with any spacing and case and the id in
        /// hexadecimal or decimal, read to the stat and an id that matches the submitted one.
        #[test]
        fn receipts_are_read_in_every_form(
            id in 1u64..u64::MAX / 2,
            submitted_hex in any::<bool>(),
            written_hex in any::<bool>(),
            state in proptest::sample::select(STATES.to_vec()),
            form in 0u8..3,
            spaces in proptest::collection::vec(0usize..3, 4),
            upper in any::<bool>(),
            flagged in any::<bool>(),
        ) {
            let submitted = if submitted_hex { format!("{id:X}") } else { id.to_string() };
            let written = if written_hex { format!("{id:x}") } else { id.to_string() };
            let sp = |i: usize| " ".repeat(spaces[i]);
            let mut text = format!(
                "id:{}{written} sub:001 dlvrd:001 submit date:2611280000 done date:2611280001{}stat:{}{} err:012 text:hi",
                sp(0), " ".repeat(spaces[1] + 1), sp(2), state.1,
            );
            if upper {
                text = text.to_ascii_uppercase();
            }
            let (body, tlvs) = match form {
                0 => (text.as_str(), None),
                1 => ("", Some((submitted.as_str(), state.0))),
                _ => (text.as_str(), Some((submitted.as_str(), state.0))),
            };
            // Receipts are flagged in esm_class; TLVs are enough without the flag.
            let esm_class = if flagged || tlvs.is_none() { 0x04 } else { 0x00 };
            let read = read_deliver_sm(&receipt_pdu(body, tlvs, esm_class));
            let Delivered::Receipt { id: read_id, stat, err, .. } = read else {
                return Err(TestCaseError::fail("not read as a receipt"));
            };
            prop_assert_eq!(stat, state.1);
            prop_assert!(same_carrier_id(&submitted, &read_id), "{} against {}", submitted, read_id);
            if form != 1 {
                prop_assert_eq!(err.as_deref(), Some("012"));
            }
        }

        /// Every part of any text becomes a submit_sm whose data_coding, esm_class and short
        /// message are the part's; the count is the API's segments.
        #[test]
        fn every_part_of_a_text_is_one_submit_sm(text in any_text(), reference in any::<u8>()) {
            let submission = Submission {
                message_id: uuid::Uuid::now_v7(),
                from: "+15551112222".into(),
                to: "+12125550100".into(),
                text: text.clone(),
                media_urls: vec![],
                valid_until: Utc::now() + chrono::Duration::hours(1),
            };
            let (data_coding, parts) = submit_parts(&text, reference);
            prop_assert_eq!(parts.len(), split_segments(&text).len());
            let defaults = SubmitDefaults { source: Addressing::INTERNATIONAL, destination: Addressing::INTERNATIONAL };
            for (i, expected) in parts.iter().enumerate() {
                let part = Part {
                    number: u8::try_from(i + 1).unwrap(),
                    total: u8::try_from(parts.len()).unwrap(),
                    reference,
                    state: PartState::Pending,
                    carrier_message_id: None,
                    receipt_stat: None,
                };
                let pdu = submit_sm(&defaults, &submission, &part, Utc::now()).unwrap();
                prop_assert_eq!(u8::from(pdu.data_coding), data_coding);
                prop_assert_eq!(u8::from(pdu.esm_class), if parts.len() > 1 { 0x40 } else { 0 });
                prop_assert_eq!(pdu.short_message().as_ref(), &expected.short_message[..]);
                prop_assert_eq!(u8::from(pdu.registered_delivery), 0x01);
            }
        }
    }
}
