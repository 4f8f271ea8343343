//! With a test key: the recipient's messages through the test helper — HELP recorded, STOP
//! locking the consent against API opt-ins.

use serde_json::json;

use crate::{
    cases::{carrier::a_recorded_help, consents},
    client::Request,
    ctx::{numbers, Ctx},
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
    consents::stop_then_locked(
        ctx,
        "a simulated inbound STOP",
        "test_helpers_inbound_create",
        stop,
        &stopped,
    );
}
