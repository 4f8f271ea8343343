//! Rows to domain types. A row the code cannot read (an unknown stored value, a malformed list)
//! is an error, never a default: the client gets a 500 and the log the cause.

use entity::{api_key, consent, lookup, message, message_event, organization, phone_number};
use sea_orm::DbErr;

use crate::domain::{
    consent::Consent,
    lifecycle::Event,
    lookup::Lookup,
    message::{Delivery, Message},
    organization::{ApiKey, Organization, OwnedNumber},
    PhoneNumber, ScopeSet, Timestamp,
};

fn unreadable(what: &str, detail: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("unreadable {what}: {detail}"))
}

pub fn message(m: message::Model) -> Result<Message, DbErr> {
    let media_urls = match &m.media_urls {
        None => Vec::new(),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| unreadable(&format!("media_urls of message {}", m.id), e))?,
    };
    let segments = u32::try_from(m.segments)
        .map_err(|e| unreadable(&format!("segments of message {}", m.id), e))?;
    Ok(Message {
        id: m.id,
        org_id: m.org_id,
        mode: m.mode,
        direction: m.direction,
        from: PhoneNumber::from_stored(m.from_number),
        to: PhoneNumber::from_stored(m.to_number),
        text: m.body,
        channel: m.channel,
        priority: m.priority,
        status: m.status,
        tag: m.tag,
        media_urls,
        segments,
        encoding: m.encoding,
        error_code: m.error_code,
        error_message: m.error_message,
        created_at: m.created_at.into(),
        updated_at: m.updated_at.into(),
        send_at: m.send_at,
        valid_until: m.valid_until,
        delivery: Delivery {
            carrier: m.carrier,
            carrier_message_id: m.carrier_message_id,
            lease_owner: m.lease_owner,
            lease_expires_at: m.lease_expires_at,
            attempted_at: m.attempted_at,
            sent_at: m.sent_at,
            delivered_at: m.delivered_at,
        },
    })
}

pub fn messages(rows: Vec<message::Model>) -> Result<Vec<Message>, DbErr> {
    rows.into_iter().map(message).collect()
}

pub fn part(p: entity::message_part::Model) -> crate::domain::message::Part {
    let byte = |n: i32| u8::try_from(n).unwrap_or(u8::MAX);
    crate::domain::message::Part {
        number: byte(p.part_number),
        total: byte(p.total_parts),
        reference: byte(p.reference),
        state: p.state,
        carrier_message_id: p.carrier_message_id,
        receipt_stat: p.receipt_stat,
    }
}

pub fn event(e: message_event::Model) -> Event {
    Event {
        sequence: i64::from(e.number),
        kind: e.kind,
        status: e.status,
        occurred_at: e.occurred_at.into(),
        carrier_message_id: e.carrier_message_id,
        stat: e.stat,
        err: e.carrier_err,
        done_date: e.done_date,
        error_code: e.error_code,
        note: e.note,
        connection: e.connection,
    }
}

pub fn consent(c: consent::Model) -> Consent {
    Consent {
        phone_number: PhoneNumber::from_stored(c.phone_number),
        status: c.status,
        source: c.source,
        evidence: c.evidence,
        recorded_at: c.recorded_at.into(),
    }
}

pub fn lookup(l: lookup::Model) -> Lookup {
    Lookup {
        phone_number: PhoneNumber::from_stored(l.phone_number),
        line_type: l.line_type,
        looked_up_at: l.looked_up_at.into(),
    }
}

pub fn organization(o: organization::Model) -> Result<Organization, DbErr> {
    Ok(Organization {
        id: o.id,
        name: o.name,
        rate_per_second: u32::try_from(o.rate_per_second)
            .map_err(|e| unreadable("rate_per_second", e))?,
        burst: u32::try_from(o.burst).map_err(|e| unreadable("burst", e))?,
    })
}

pub fn owned_number(n: phone_number::Model) -> OwnedNumber {
    OwnedNumber {
        id: n.id,
        org_id: n.org_id,
        phone_number: PhoneNumber::from_stored(n.phone_number),
        created_at: n.created_at.into(),
    }
}

pub fn api_key(k: api_key::Model) -> Result<ApiKey, DbErr> {
    Ok(ApiKey {
        scopes: ScopeSet::parse_list(&k.scopes)
            .map_err(|e| unreadable(&format!("scopes of key {}", k.id), e))?,
        id: k.id,
        org_id: k.org_id,
        name: k.name,
        display_prefix: k.display_prefix,
        mode: k.mode,
        created_at: k.created_at.into(),
        revoked_at: k.revoked_at.map(Timestamp::from),
        last_used_at: k.last_used_at.map(Timestamp::from),
    })
}
