//! Lookups: each line type the deployment's lookup reports, read back as the latest.

use serde_json::json;

use crate::{
    client::Request,
    ctx::{data_of, expect_fields, numbers, reads_back, Ctx},
};

pub fn cases(ctx: &mut Ctx) {
    for (suffix, line_type) in [
        (numbers::LANDLINE, "landline"),
        (numbers::VOIP, "voip"),
        (numbers::OPTED_IN, "mobile"),
    ] {
        let number = ctx.number(suffix);
        let n = number.clone();
        let created = ctx.expect(
            "look a number up",
            "lookups_create",
            201,
            Request::new("POST", "/v1/lookups").json(json!({"phone_number": number})),
            move |r| {
                let data = data_of(r);
                expect_fields(
                    &data,
                    &[("phone_number", json!(n)), ("line_type", json!(line_type))],
                )
            },
        );
        match created.and_then(|r| r.json).map(|b| b["data"].clone()) {
            Some(stored) => {
                ctx.expect(
                    "read the latest lookup",
                    "lookups_view",
                    200,
                    Request::new("GET", format!("/v1/lookups/{number}")),
                    reads_back(Some(stored), "lookup"),
                );
            }
            None => ctx.not_provable_after(
                &[("lookups_view", 200)],
                "setup: the lookup to read back failed",
            ),
        }
    }
}
