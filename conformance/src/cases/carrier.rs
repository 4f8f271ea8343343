//! The carrier's callbacks (with the carrier's secret): a receipt for an id the deployment does
//! not know, an inbound HELP, and — with a live key — an inbound STOP that locks the consent.

use serde_json::json;

use crate::{
    cases::consents,
    client::{Auth, Request, Response},
    ctx::{data_of, expect_fields, numbers, Ctx},
};

pub fn cases(ctx: &mut Ctx) {
    match ctx.options.carrier_secret.clone() {
        Some(secret) => {
            let unknown = format!("conformance-{}", ctx.uuid().simple());
            let receipt = Request::new("POST", "/v1/carrier/receipts")
                .auth(Auth::Key(secret.clone()))
                .json(json!({"carrier_message_id": unknown, "stat": "DELIVRD"}));
            ctx.expect(
                "a receipt for an unknown id",
                "carrier_receipts_create",
                200,
                receipt,
                |r| {
                    let data = data_of(r);
                    expect_fields(&data, &[("matched", json!(false))])
                },
            );
            let inbound = Request::new("POST", "/v1/carrier/inbound")
                .auth(Auth::Key(secret.clone()))
                .json(json!({"from": ctx.number(numbers::HELP), "to": ctx.from, "text": "help"}));
            ctx.expect(
                "an inbound HELP",
                "carrier_inbound_create",
                201,
                inbound,
                a_recorded_help,
            );
            // The recipient's own STOP (live: carrier callbacks are live traffic) locks their
            // consent against API opt-ins; a test key proves it through the test helper.
            if !ctx.test_mode {
                let stopped = ctx.number(numbers::STOPPED);
                let stop = Request::new("POST", "/v1/carrier/inbound")
                    .auth(Auth::Key(secret.clone()))
                    .json(json!({"from": stopped, "to": ctx.from, "text": "STOP"}));
                consents::stop_then_locked(
                    ctx,
                    "an inbound STOP",
                    "carrier_inbound_create",
                    stop,
                    &stopped,
                );
            }
        }
        None => {
            ctx.needs_carrier_secret("carrier_receipts_create", 200);
            ctx.needs_carrier_secret("carrier_inbound_create", 201);
            // Only the recipient's own keyword locks a consent; a test key plays the recipient
            // through the test helper.
            if !ctx.test_mode {
                ctx.needs_carrier_secret("consents_update", 409);
            }
        }
    }
}

/// An inbound HELP as the carrier's and the test helper's answers show it: the keyword, and the
/// message stored inbound and received.
pub fn a_recorded_help(r: &Response) -> Vec<String> {
    let data = data_of(r);
    let mut problems = expect_fields(&data, &[("keyword", json!("HELP"))]);
    problems.extend(expect_fields(
        &data["message"],
        &[
            ("direction", json!("inbound")),
            ("status", json!("received")),
        ],
    ));
    problems
}
