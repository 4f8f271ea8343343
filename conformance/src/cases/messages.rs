//! Messages: the seed's example sent and read back, the send rules (consent, line type, owned
//! number, E.164), listing and a message's events.

use serde_json::json;

use crate::{
    client::Request,
    ctx::{code_is, data_of, details_name, expect_fields, fictional, numbers, Ctx},
};

pub fn cases(ctx: &mut Ctx) {
    let to = ctx.number(numbers::OPTED_IN);
    let opt_in = Request::new("PUT", format!("/v1/consents/{to}"))
        .json(json!({"source": "web_form", "evidence": "conformance suite"}));
    let sent_id = match ctx.prepare("record the recipient's opt-in", opt_in, 200) {
        Ok(_) => send_and_read_back(ctx, &to),
        Err(reason) => {
            ctx.not_provable_after(
                &[
                    ("messages_create", 202),
                    ("messages_view", 200),
                    ("messages_list", 200),
                    ("messages_events_list", 200),
                    ("messages_events_list", 400),
                ],
                &reason,
            );
            None
        }
    };
    rules(ctx, &to);
    listing(ctx, sent_id);
}

/// The seed's example, sent and read back: the message's id.
fn send_and_read_back(ctx: &mut Ctx, to: &str) -> Option<String> {
    let body = json!({"from": ctx.from, "to": to, "text": "hello from agentmessage", "priority": "default", "tag": "conformance"});
    let sent = body.clone();
    let accepted = ctx.expect(
        "send the seed's example",
        "messages_create",
        202,
        Request::new("POST", "/v1/messages").json(body),
        move |r| {
            let data = data_of(r);
            let mut problems = expect_fields(
                &data,
                &[("status", json!("queued")), ("channel", json!("sms"))],
            );
            for field in ["from", "to", "text", "priority", "tag"] {
                if data[field] != sent[field] {
                    problems.push(format!("{field} is {}, sent {}", data[field], sent[field]));
                }
            }
            problems
        },
    );
    let Some(message) = accepted.and_then(|r| r.json).map(|b| b["data"].clone()) else {
        ctx.not_provable_after(
            &[
                ("messages_view", 200),
                ("messages_list", 200),
                ("messages_events_list", 200),
                ("messages_events_list", 400),
            ],
            "setup: the seed's example send (messages_create 202) failed",
        );
        return None;
    };
    let id = message["id"].as_str().unwrap_or_default().to_owned();
    {
        ctx.expect(
            "read a message back",
            "messages_view",
            200,
            Request::new("GET", format!("/v1/messages/{id}")),
            move |r| {
                let data = data_of(r);
                let mut problems = vec![];
                for field in [
                    "id",
                    "from",
                    "to",
                    "text",
                    "channel",
                    "priority",
                    "tag",
                    "created_at",
                ] {
                    if data[field] != message[field] {
                        problems.push(format!(
                            "{field} reads back as {}, was {}",
                            data[field], message[field]
                        ));
                    }
                }
                problems
            },
        );
    }
    Some(id)
}

/// What the send refuses: no consent, a landline, a number not owned, a bad recipient.
fn rules(ctx: &mut Ctx, to: &str) {
    let send = |to: &str, from: &str| {
        Request::new("POST", "/v1/messages")
            .json(json!({"from": from, "to": to, "text": "conformance"}))
    };
    let from = ctx.from.clone();
    let opted_out = ctx.number(numbers::OPTED_OUT);
    let opt_in =
        Request::new("PUT", format!("/v1/consents/{opted_out}")).json(json!({"source": "verbal"}));
    let opt_out = Request::new("DELETE", format!("/v1/consents/{opted_out}"));
    match ctx
        .prepare("record an opt-in", opt_in, 200)
        .and_then(|_| ctx.prepare("record the opt-out", opt_out, 200))
    {
        Ok(_) => {
            ctx.expect(
                "send to a recipient who opted out",
                "messages_create",
                453,
                send(&opted_out, &from),
                code_is("CONSENT_REQUIRED"),
            );
        }
        Err(reason) => ctx.not_provable_after(&[("messages_create", 453)], &reason),
    }
    let never = ctx.number(numbers::NEVER);
    let opt_out = Request::new("DELETE", format!("/v1/consents/{never}"));
    match ctx.prepare("record an opt-out", opt_out, 200) {
        Ok(_) => {
            ctx.expect(
                "send to a recipient without consent",
                "messages_create",
                453,
                send(&never, &from),
                code_is("CONSENT_REQUIRED"),
            );
        }
        Err(reason) => ctx.not_provable_after(&[("messages_create", 453)], &reason),
    }
    let landline = ctx.number(numbers::LANDLINE);
    let lookup = Request::new("POST", "/v1/lookups").json(json!({"phone_number": landline}));
    let put =
        Request::new("PUT", format!("/v1/consents/{landline}")).json(json!({"source": "api"}));
    match ctx
        .prepare("look the landline up", lookup, 201)
        .and_then(|_| ctx.prepare("record the landline's opt-in", put, 200))
    {
        Ok(_) => {
            ctx.expect(
                "send to a number a recent lookup calls a landline",
                "messages_create",
                422,
                send(&landline, &from),
                code_is("LINE_TYPE_BLOCKED"),
            );
        }
        Err(reason) => ctx.not_provable_after(&[("messages_create", 422)], &reason),
    }
    let not_owned = fictional(ctx.random_area(), 98);
    ctx.expect(
        "send from a number the organization does not own",
        "messages_create",
        422,
        send(to, &not_owned),
        details_name("from"),
    );
    ctx.expect(
        "send with a bad recipient",
        "messages_create",
        422,
        send("5554443333", &from),
        move |r| {
            let details = r
                .json
                .as_ref()
                .map(|b| b["error"]["details"].clone())
                .unwrap_or_default();
            if details == json!({"to": "must be E.164"}) {
                vec![]
            } else {
                vec![format!(
                    "details are {details}, expected {{\"to\": \"must be E.164\"}}"
                )]
            }
        },
    );
}

/// The message listed, its events, a cursor given twice.
fn listing(ctx: &mut Ctx, sent_id: Option<String>) {
    if let Some(id) = sent_id {
        let wanted = id.clone();
        ctx.expect(
            "list messages",
            "messages_list",
            200,
            Request::new("GET", "/v1/messages?limit=100&tag=conformance"),
            move |r| {
                if r.text.contains(&wanted) {
                    vec![]
                } else {
                    vec![format!("message {wanted} is not listed")]
                }
            },
        );
        ctx.expect(
            "list a message's events",
            "messages_events_list",
            200,
            Request::new("GET", format!("/v1/messages/{id}/events")),
            |r| {
                let first = r
                    .json
                    .as_ref()
                    .map(|b| b["data"][0].clone())
                    .unwrap_or_default();
                if first["status"] == "queued" {
                    vec![]
                } else {
                    vec![format!("the first event is {first}, not queued")]
                }
            },
        );
        ctx.expect(
            "list a message's events with a cursor given twice",
            "messages_events_list",
            400,
            Request::new("GET", format!("/v1/messages/{id}/events?cursor=1&cursor=2")),
            details_name("cursor"),
        );
    }
    ctx.expect(
        "list with a bad limit",
        "messages_list",
        400,
        Request::new("GET", "/v1/messages?limit=0"),
        details_name("limit"),
    );
}
