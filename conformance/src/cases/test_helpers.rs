//! With a test key: the recipient's messages through the test helper — HELP recorded, STOP
//! locking the consent against API opt-ins.

use serde_json::json;

use crate::{
    cases::{carrier::a_recorded_help, consents},
    client::Request,
    ctx::{data_of, expect_fields, numbers, Ctx},
};

pub fn cases(ctx: &mut Ctx) {
    if !ctx.test_mode {
        return;
    }
    let from = ctx.from.clone();
    let help = Request::new("POST", "/v1/test_helpers/inbound")
        .json(json!({"from": ctx.number(numbers::TEST_HELP), "to": from, "text": "help"}));
    ctx.expect(
        "a simulated inbound HELP",
        "test_helpers_inbound_create",
        201,
        help,
        a_recorded_help,
    );
    let stopped = ctx.number(numbers::TEST_STOPPED);
    let stop = Request::new("POST", "/v1/test_helpers/inbound")
        .json(json!({"from": stopped, "to": from, "text": "STOP"}));
    let stopped_by_keyword = ctx.expect(
        "a simulated inbound STOP",
        "test_helpers_inbound_create",
        201,
        stop,
        |r| expect_fields(&data_of(r), &[("keyword", json!("STOP"))]),
    );
    match stopped_by_keyword {
        Some(_) => consents::expect_locked(ctx, &stopped),
        None => ctx.not_provable_after(
            &[("consents_update", 409)],
            "setup: the recipient's simulated STOP failed",
        ),
    }
}
