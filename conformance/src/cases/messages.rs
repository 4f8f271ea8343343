//! Messages: the seed's example sent and read back, the send rules (consent, line type, owned
//! number, E.164), listing, a message's events, and scheduled messages canceled.

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
    cancel(ctx, &to, sent_id.clone());
    listing(ctx, sent_id);
}

/// Scheduled sends (an hour ahead: within the default leads, 5 minutes to 35 days) canceled: 200
/// and `canceled`, again 409 `MESSAGE_NOT_CANCELABLE`, a message sent at once 409 too, one
/// `Idempotency-Key` for two messages 422, a malformed key 400.
fn cancel(ctx: &mut Ctx, to: &str, sent_id: Option<String>) {
    let at = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    )
    .to_string();
    let mut scheduled = Vec::new();
    for n in 0..2 {
        let body = json!({"from": ctx.from, "to": to, "text": format!("conformance later {n}"), "send_at": at});
        match ctx.prepare(
            "schedule a message an hour ahead",
            Request::new("POST", "/v1/messages").json(body),
            202,
        ) {
            Ok(r) => {
                let data = data_of(&r);
                scheduled.push(data["id"].as_str().unwrap_or_default().to_owned());
            }
            Err(reason) => {
                ctx.not_provable_after(
                    &[
                        ("messages_cancel", 200),
                        ("messages_cancel", 409),
                        ("messages_cancel", 422),
                        ("messages_cancel", 400),
                    ],
                    &reason,
                );
                return;
            }
        }
    }
    let path = |id: &str| format!("/v1/messages/{id}/cancel");
    let key = format!("conformance-cancel-{}", ctx.uuid().simple());
    ctx.expect(
        "cancel a scheduled message",
        "messages_cancel",
        200,
        Request::new("POST", path(&scheduled[0])).header("Idempotency-Key", key.clone()),
        |r| expect_fields(&data_of(r), &[("status", json!("canceled"))]),
    );
    ctx.expect(
        "the same Idempotency-Key for another message",
        "messages_cancel",
        422,
        Request::new("POST", path(&scheduled[1])).header("Idempotency-Key", key),
        code_is("IDEMPOTENCY_KEY_REUSED"),
    );
    ctx.expect(
        "a malformed Idempotency-Key",
        "messages_cancel",
        400,
        Request::new("POST", path(&scheduled[1])).header("Idempotency-Key", "k".repeat(300)),
        details_name("Idempotency-Key"),
    );
    ctx.expect(
        "cancel a canceled message",
        "messages_cancel",
        409,
        Request::new("POST", path(&scheduled[0])),
        |r| {
            let mut problems = code_is("MESSAGE_NOT_CANCELABLE")(r);
            let status = r
                .json
                .as_ref()
                .map(|b| b["error"]["details"]["status"].clone())
                .unwrap_or_default();
            if status != json!("canceled") {
                problems.push(format!("details.status is {status}, expected canceled"));
            }
            problems
        },
    );
    // The second one is canceled too, so that nothing of the run goes out an hour later.
    let _ = ctx.send(&Request::new("POST", path(&scheduled[1])));
    if let Some(id) = sent_id {
        ctx.expect(
            "cancel a message sent at once",
            "messages_cancel",
            409,
            Request::new("POST", path(&id)),
            code_is("MESSAGE_NOT_CANCELABLE"),
        );
    }
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
