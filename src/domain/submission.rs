//! How a text is handed to an SMSC (SMPP 3.4): its bytes in GSM 03.38 (`data_coding` 0, one
//! septet per octet) or UCS-2 big-endian (`data_coding` 8), in exactly the parts the API reported
//! as `segments`, joined by a concatenation header (UDH) with one reference per message; and how
//! a delivery receipt's text is read. Pure functions: the SMPP carrier adapter uses them.

use super::text::{
    encoding_of, split_segments, Encoding, GSM7_BASIC as BASIC, GSM7_EXTENSION as EXTENSION,
};

/// `data_coding` of the GSM 03.38 default alphabet.
pub const DATA_CODING_GSM7: u8 = 0;
/// `data_coding` of Latin-1 (only ever received).
pub const DATA_CODING_LATIN1: u8 = 3;
/// `data_coding` of UCS-2, big-endian.
pub const DATA_CODING_UCS2: u8 = 8;

const ESCAPE: u8 = 0x1B;

fn basic_code(c: char) -> Option<u8> {
    let index = BASIC.chars().position(|b| b == c)?;
    // The escape (0x1B) has no character: codes from 0x1B on are one past their index.
    let code = if index >= 0x1B { index + 1 } else { index };
    u8::try_from(code).ok()
}

/// GSM 03.38 septets, one per octet (how SMPP carries `data_coding` 0); `None` when a character
/// is outside the alphabet and its extension.
pub fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if let Some(code) = basic_code(c) {
            out.push(code);
        } else {
            let (_, code) = EXTENSION.iter().find(|(e, _)| *e == c)?;
            out.extend([ESCAPE, *code]);
        }
    }
    Some(out)
}

/// Reads GSM 03.38 septets (one per octet); an unknown code reads as `?`.
pub fn decode_gsm7(bytes: &[u8]) -> String {
    let basic: Vec<char> = BASIC.chars().collect();
    let mut out = String::with_capacity(bytes.len());
    let mut escaped = false;
    for &b in bytes {
        if escaped {
            escaped = false;
            out.push(
                EXTENSION
                    .iter()
                    .find(|(_, code)| *code == b)
                    .map_or('?', |(c, _)| *c),
            );
        } else if b == ESCAPE {
            escaped = true;
        } else {
            let index = if b > ESCAPE { b - 1 } else { b };
            out.push(basic.get(usize::from(index)).copied().unwrap_or('?'));
        }
    }
    out
}

/// UCS-2 (UTF-16) big-endian.
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Reads UCS-2 (UTF-16) big-endian; a broken unit reads as U+FFFD.
pub fn decode_ucs2(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// A short message as received: its `data_coding` and bytes, read as text.
pub fn decode(data_coding: u8, bytes: &[u8]) -> String {
    match data_coding {
        DATA_CODING_UCS2 => decode_ucs2(bytes),
        DATA_CODING_LATIN1 => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => decode_gsm7(bytes),
    }
}

/// One `submit_sm` of a message: its `short_message` (a UDH first when the message has several
/// parts) and whether `esm_class` must flag the UDH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPart {
    pub short_message: Vec<u8>,
    pub has_udh: bool,
}

/// How a text is submitted: its `data_coding` and one part per API segment. `reference`
/// ties the parts of one message together (the same for every retry of that message).
pub fn submit_parts(text: &str, reference: u8) -> (u8, Vec<SubmitPart>) {
    let encoding = encoding_of(text);
    let data_coding = match encoding {
        Encoding::Gsm7 => DATA_CODING_GSM7,
        Encoding::Ucs2 => DATA_CODING_UCS2,
    };
    let segments = split_segments(text);
    let total = u8::try_from(segments.len()).unwrap_or(u8::MAX);
    let parts = segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let body = match encoding {
                Encoding::Gsm7 => encode_gsm7(segment).unwrap_or_default(),
                Encoding::Ucs2 => encode_ucs2(segment),
            };
            if total == 1 {
                return SubmitPart {
                    short_message: body,
                    has_udh: false,
                };
            }
            let sequence = u8::try_from(i + 1).unwrap_or(u8::MAX);
            // IEI 0x00: concatenated short messages, 8-bit reference.
            let mut short_message = vec![0x05, 0x00, 0x03, reference, total, sequence];
            short_message.extend(body);
            SubmitPart {
                short_message,
                has_udh: true,
            }
        })
        .collect();
    (data_coding, parts)
}

/// Where a part stands in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concatenation {
    /// Ties the parts of one message together.
    pub reference: u16,
    pub total: u8,
    /// From 1.
    pub sequence: u8,
}

/// A concatenation header read from the front of a short message, and the rest of the message.
pub fn read_udh(short_message: &[u8]) -> Option<(Concatenation, &[u8])> {
    let header_len = usize::from(*short_message.first()?);
    let header = short_message.get(1..=header_len)?;
    let rest = &short_message[header_len + 1..];
    let mut at = 0;
    while at + 1 < header.len() {
        let (iei, len) = (header[at], usize::from(header[at + 1]));
        let data = header.get(at + 2..at + 2 + len)?;
        match (iei, data) {
            (0x00, [reference, total, sequence]) => {
                let reference = u16::from(*reference);
                let (total, sequence) = (*total, *sequence);
                return Some((
                    Concatenation {
                        reference,
                        total,
                        sequence,
                    },
                    rest,
                ));
            }
            (0x08, [high, low, total, sequence]) => {
                let reference = u16::from_be_bytes([*high, *low]);
                let (total, sequence) = (*total, *sequence);
                return Some((
                    Concatenation {
                        reference,
                        total,
                        sequence,
                    },
                    rest,
                ));
            }
            _ => at += 2 + len,
        }
    }
    None
}

/// A delivery receipt's fields, as SMSCs write them in the receipt text:
/// `id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptText {
    pub id: String,
    pub stat: String,
    pub err: Option<String>,
    pub done_date: Option<String>,
}

/// Reads a receipt text, tolerant of case and spacing; `None` when it has no `id` or `stat`.
pub fn read_receipt_text(text: &str) -> Option<ReceiptText> {
    let lower = text.to_ascii_lowercase();
    let field = |name: &str| -> Option<String> {
        let mut search = 0;
        while let Some(found) = lower[search..].find(name) {
            let start = search + found;
            // A field name starts the text or follows white space.
            let at_boundary = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
            let after = start + name.len();
            if at_boundary {
                let rest = lower[after..].trim_start();
                if let Some(rest) = rest.strip_prefix(':') {
                    let value_start = text.len() - rest.trim_start().len();
                    let value: String = text[value_start..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    return (!value.is_empty()).then_some(value);
                }
            }
            search = after;
        }
        None
    };
    let done_date = field("done date").or_else(|| field("donedate"));
    Some(ReceiptText {
        id: field("id")?,
        stat: field("stat")?.to_ascii_uppercase(),
        err: field("err"),
        done_date,
    })
}

/// The form a carrier message id is looked up by: lower case, without leading zeros (SMSCs differ
/// in both).
pub fn carrier_id_key(id: &str) -> String {
    id.trim().trim_start_matches('0').to_ascii_lowercase()
}

/// The keys a receipt's id may stand for, most likely first: the id as written, then the same
/// number in the other base (SMSCs write the receipt's id in decimal when `submit_sm_resp` gave
/// it in hexadecimal, and the reverse).
pub fn carrier_id_keys(receipted: &str) -> Vec<String> {
    let written = receipted.trim();
    let mut keys = vec![carrier_id_key(written)];
    if !written.is_empty() && written.len() <= 38 && written.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = written.parse::<u128>() {
            keys.push(format!("{n:x}"));
        }
    }
    if !written.is_empty() && written.len() <= 32 && written.bytes().all(|b| b.is_ascii_hexdigit())
    {
        if let Ok(n) = u128::from_str_radix(written, 16) {
            keys.push(n.to_string());
        }
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    keys
}

/// Whether a receipt's id names the message id a `submit_sm_resp` returned: the same text
/// (case and leading zeros aside), or the same number written in hexadecimal on one side and
/// decimal on the other.
pub fn same_carrier_id(submitted: &str, receipted: &str) -> bool {
    carrier_id_keys(receipted).contains(&carrier_id_key(submitted))
}

/// How a carrier stands, for `/healthz` and for the worker (which claims a mode's messages only
/// while its carrier can take them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierHealth {
    /// `simulated` or `smpp`.
    pub kind: &'static str,
    /// Sessions configured (1 for a carrier without sessions).
    pub sessions: u32,
    /// Sessions bound and able to submit now.
    pub bound: u32,
}

impl CarrierHealth {
    pub fn ready(&self) -> bool {
        self.bound > 0
    }
}

/// Where a named carrier connection stands for the routes that list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// It can take submissions now.
    Bound,
    /// Not bound, for less than the failover setting: its routes wait for it.
    Unbound,
    /// Not bound for longer than the failover setting: its routes use the next connection
    /// until it binds again.
    PassedOver,
}

impl ConnectionState {
    pub const ALL: [ConnectionState; 3] = [
        ConnectionState::Bound,
        ConnectionState::Unbound,
        ConnectionState::PassedOver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Bound => "bound",
            ConnectionState::Unbound => "unbound",
            ConnectionState::PassedOver => "passed_over",
        }
    }
}

/// One named connection's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionHealth {
    pub name: String,
    pub health: CarrierHealth,
    pub state: ConnectionState,
    /// Its `throughput` (messages a second across every worker); 0 when it has none.
    pub throughput: u32,
}

/// How a worker's delivery stands: the first connection of the default SMS route (for the
/// public `/healthz`), every connection, and whether every route has a bound connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHealth {
    pub primary: CarrierHealth,
    pub connections: Vec<ConnectionHealth>,
    pub ready: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_gsm_table_has_its_codes() {
        assert_eq!(encode_gsm7("@"), Some(vec![0x00]));
        assert_eq!(encode_gsm7("Æ"), Some(vec![0x1C]));
        assert_eq!(encode_gsm7(" A"), Some(vec![0x20, 0x41]));
        assert_eq!(encode_gsm7("a"), Some(vec![0x61]));
        assert_eq!(encode_gsm7("€"), Some(vec![0x1B, 0x65]));
        assert_eq!(encode_gsm7("ж"), None);
        assert_eq!(decode_gsm7(&[0x48, 0x69, 0x1B, 0x65]), "Hi€");
    }

    #[test]
    fn receipts_are_read_in_their_usual_and_unusual_spellings() {
        let usual = "id:0123456789 sub:001 dlvrd:001 submit date:2604261200 done date:2604261201 stat:DELIVRD err:000 text:hello";
        assert_eq!(
            read_receipt_text(usual),
            Some(ReceiptText {
                id: "0123456789".into(),
                stat: "DELIVRD".into(),
                err: Some("000".into()),
                done_date: Some("2604261201".into()),
            })
        );
        let odd = "ID: ab12 Sub:1 Dlvrd:0 Submit Date:2604261200 Done Date:2604261201 Stat: undeliv Err:  12";
        let read = read_receipt_text(odd).unwrap();
        assert_eq!(
            (read.id.as_str(), read.stat.as_str(), read.err.as_deref()),
            ("ab12", "UNDELIV", Some("12"))
        );
        assert_eq!(read_receipt_text("hello there"), None);
        assert!(same_carrier_id("1f", "31"));
        assert!(same_carrier_id("0000ABC", "abc"));
        assert!(!same_carrier_id("1f", "32"));
    }

    use crate::domain::text::strategies::any_text;

    proptest! {
        /// The parts join to the text, number as many as the API's `segments`, fit a short
        /// message (GSM: 160 septets alone, 153 after a UDH, one per octet; UCS-2: 140 octets
        /// with the UDH), and never split an escape pair or a surrogate pair.
        #[test]
        fn submitted_parts_join_to_the_text(text in any_text(), reference in any::<u8>()) {
            let (data_coding, parts) = submit_parts(&text, reference);
            prop_assert_eq!(parts.len(), split_segments(&text).len());
            let mut joined = String::new();
            for (i, part) in parts.iter().enumerate() {
                if data_coding == DATA_CODING_UCS2 {
                    prop_assert!(part.short_message.len() <= 140, "{} octets", part.short_message.len());
                }
                let body = if part.has_udh {
                    let (at, rest) = read_udh(&part.short_message).expect("a UDH");
                    prop_assert_eq!(
                        (at.reference, usize::from(at.total), usize::from(at.sequence)),
                        (u16::from(reference), parts.len(), i + 1)
                    );
                    rest
                } else {
                    &part.short_message[..]
                };
                if data_coding == DATA_CODING_GSM7 {
                    let limit = if part.has_udh { 153 } else { 160 };
                    prop_assert!(body.len() <= limit, "{} septets", body.len());
                    prop_assert!(body.last() != Some(&ESCAPE), "an escape ends a part");
                } else {
                    prop_assert_eq!(body.len() % 2, 0);
                    let last = u16::from_be_bytes([body[body.len() - 2], body[body.len() - 1]]);
                    prop_assert!(!(0xD800..0xDC00).contains(&last), "a high surrogate ends a part");
                }
                joined.push_str(&decode(data_coding, body));
            }
            prop_assert_eq!(joined, text);
        }

        /// Receipts written with any case, spacing and hex or decimal ids are read back.
        #[test]
        fn receipt_texts_are_read_whatever_their_spacing(
            id in 1u64..u64::MAX,
            hex_id in any::<bool>(),
            stat in proptest::sample::select(vec!["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "ENROUTE", "UNKNOWN", "DELETED"]),
            err in 0u16..1000,
            spaces in proptest::collection::vec(0usize..3, 8),
            upper in any::<bool>(),
        ) {
            let written_id = if hex_id { format!("{id:x}") } else { id.to_string() };
            let s = |i: usize| " ".repeat(spaces[i]);
            let names = ["id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"];
            let names: Vec<String> = names.iter().map(|n| if upper { n.to_uppercase() } else { n.to_string() }).collect();
            let text = format!(
                "{}:{}{} {}:001 {}:001 {}:2604261200 {}:{}2604261201 {}:{}{} {}:{}{:03} {}:hi",
                names[0], s(0), written_id, names[1], names[2], names[3], names[4], s(1),
                names[5], s(2), stat.to_lowercase(), names[6], s(3), err, names[7]
            );
            let read = read_receipt_text(&text).expect("a receipt");
            prop_assert_eq!(read.stat.as_str(), stat);
            prop_assert_eq!(read.err, Some(format!("{err:03}")));
            prop_assert_eq!(read.done_date.as_deref(), Some("2604261201"));
            // The id matches the submission whichever base either side wrote it in.
            let as_hex = format!("{:x}", id);
            let as_decimal = id.to_string();
            prop_assert!(same_carrier_id(&as_hex, &read.id), "{} against {}", as_hex, read.id);
            prop_assert!(same_carrier_id(&as_decimal, &read.id), "{} against {}", as_decimal, read.id);
        }
    }
}

/// Which inbound concatenated message a part belongs to: the carrier connection, sender,
/// receiving number, reference and number of parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartSet {
    pub carrier: String,
    pub sender: String,
    pub recipient: String,
    pub reference: u16,
    pub total: u8,
}

/// What the parts a carrier may keep waiting are bounded by.
#[derive(Debug, Clone, Copy)]
pub struct PartLimits {
    /// Messages waiting for parts.
    pub sets: u64,
    /// Bytes of text waiting.
    pub bytes: u64,
}

/// What storing an inbound part gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartAdded {
    /// Every part is in: their texts in order, and the id of the first part stored (stable
    /// across a restart, so the message it makes has one identity).
    Complete {
        texts: Vec<String>,
        first: uuid::Uuid,
    },
    /// Still waiting for other parts.
    Waiting,
    /// The carrier's waiting parts are at their limit: nothing was stored.
    Full,
}
