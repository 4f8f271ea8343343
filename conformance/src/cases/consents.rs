//! Consents: opt in, read back, opt out; and the lock a recipient's own STOP puts on them.

use serde_json::json;

use crate::{
    client::Request,
    ctx::{code_is, data_of, expect_fields, no_extra, numbers, reads_back, Ctx},
};

pub fn cases(ctx: &mut Ctx) {
    let to = ctx.number(numbers::OPTED_IN);
    let put = Request::new("PUT", format!("/v1/consents/{to}"))
        .json(json!({"source": "web_form", "evidence": "conformance suite"}));
    let number = to.clone();
    let opted_in = ctx.expect("record an opt-in", "consents_update", 200, put, move |r| {
        let data = data_of(r);
        expect_fields(
            &data,
            &[
                ("phone_number", json!(number)),
                ("status", json!("opted_in")),
                ("source", json!("web_form")),
                ("evidence", json!("conformance suite")),
            ],
        )
    });
    match opted_in.and_then(|r| r.json).map(|b| b["data"].clone()) {
        Some(stored) => {
            ctx.expect(
                "read consent",
                "consents_view",
                200,
                Request::new("GET", format!("/v1/consents/{to}")),
                reads_back(Some(stored), "consent"),
            );
        }
        None => ctx.not_provable_after(
            &[("consents_view", 200)],
            "setup: recording an opt-in to read back failed",
        ),
    }
    let opted_out = ctx.number(numbers::OPTED_OUT);
    let put =
        Request::new("PUT", format!("/v1/consents/{opted_out}")).json(json!({"source": "verbal"}));
    ctx.expect("record an opt-in", "consents_update", 200, put, no_extra);
    ctx.expect(
        "record an opt-out",
        "consents_delete",
        200,
        Request::new("DELETE", format!("/v1/consents/{opted_out}")),
        |r| {
            let data = data_of(r);
            expect_fields(&data, &[("status", json!("opted_out"))])
        },
    );
}

/// `stop` (the recipient `stopped` texting STOP, through `op`) is recorded with its keyword, and
/// then locks the consent ([`expect_locked`]); when the STOP fails, the lock is not provable.
pub fn stop_then_locked(ctx: &mut Ctx, case: &str, op: &str, stop: Request, stopped: &str) {
    let stopped_by_keyword = ctx.expect(case, op, 201, stop, |r| {
        expect_fields(&data_of(r), &[("keyword", json!("STOP"))])
    });
    match stopped_by_keyword {
        Some(_) => expect_locked(ctx, stopped),
        None => ctx.not_provable_after(
            &[("consents_update", 409)],
            &format!("setup: the recipient's STOP ({case}) failed"),
        ),
    }
}

/// An API opt-in for `stopped`, who texted STOP, is refused: 409 `CONSENT_LOCKED`; the
/// organization's own opt-out is recorded without lifting the lock (it shows `locked`), and an
/// opt-in after that is refused too.
pub fn expect_locked(ctx: &mut Ctx, stopped: &str) {
    let opt_in = || {
        Request::new("PUT", format!("/v1/consents/{stopped}"))
            .json(json!({"source": "web_form", "evidence": "conformance"}))
    };
    ctx.expect(
        "an API opt-in after the recipient's STOP",
        "consents_update",
        409,
        opt_in(),
        code_is("CONSENT_LOCKED"),
    );
    ctx.expect(
        "an API opt-out after the recipient's STOP keeps the lock",
        "consents_delete",
        200,
        Request::new("DELETE", format!("/v1/consents/{stopped}")),
        |r| {
            if data_of(r)["locked"] == json!(true) {
                vec![]
            } else {
                vec![format!("the lock is not shown: {}", data_of(r))]
            }
        },
    );
    ctx.expect(
        "an API opt-in after the recipient's STOP and an API opt-out",
        "consents_update",
        409,
        opt_in(),
        code_is("CONSENT_LOCKED"),
    );
}
