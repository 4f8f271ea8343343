//! The cases every operation gets from its spec alone: 401 without a key or with an unknown one,
//! 403 with a key lacking its scope, 413, test-mode-only answers, 400/415/422 for its body, a
//! malformed path value, 404 for what does not exist.

use serde_json::json;

use crate::{
    client::{Auth, Request},
    ctx::{code_is, details_name, numbers, Ctx, Expectation, OVERSIZED_BYTES},
};

/// The cases every operation gets from its spec alone.
pub fn cases(ctx: &mut Ctx) {
    let operations = ctx.spec.operations.clone();
    let mut bodies = vec![];
    for op in &operations {
        // An operation whose body is not JSON (the MMS centre's SOAP) has its own case file.
        if op.has_body && !op.json_body {
            continue;
        }
        let any_path = Ctx::path(op, |p| {
            if p.contains("phone") {
                ctx.number(numbers::NOBODY)
            } else {
                ctx.uuid().to_string()
            }
        });
        let with_body = |r: Request| if op.has_body { r.json(json!({})) } else { r };

        if op.secured && op.documents(401) {
            let r = with_body(Request::new(&op.method, &any_path).auth(Auth::None));
            ctx.expect("no API key", &op.id, 401, r, code_is("UNAUTHORIZED"));
            let r = with_body(
                Request::new(&op.method, &any_path)
                    .auth(Auth::Key(format!("am_live_{}", "0".repeat(32)))),
            );
            ctx.expect("unknown API key", &op.id, 401, r, code_is("UNAUTHORIZED"));
        }
        if op.documents(403) {
            let scope = op.required_scope.clone();
            let key = ctx
                .restricted
                .iter()
                .find(|(_, _, scopes)| scope.as_ref().is_none_or(|s| !scopes.contains(s)))
                .map(|(_, k, _)| k.clone());
            match (scope, key) {
                (Some(scope), Some(key)) => {
                    let r = with_body(Request::new(&op.method, &any_path).auth(Auth::Key(key)));
                    ctx.expect(
                        "a key without the operation's scope",
                        &op.id,
                        403,
                        r,
                        move |r| {
                            let details = r
                                .json
                                .as_ref()
                                .map(|b| b["error"]["details"].clone())
                                .unwrap_or_default();
                            if details["required_scope"] == json!(scope) {
                                vec![]
                            } else {
                                vec![format!(
                                    "details.required_scope is {}, expected {scope}",
                                    details["required_scope"]
                                )]
                            }
                        },
                    );
                }
                _ => ctx.matrix.record(
                    &op.id,
                    403,
                    "a key without the operation's scope",
                    vec!["the operation declares no required scope (`x-required-scopes`)".into()],
                ),
            }
        }
        if op.documents(413) {
            let path = Ctx::path(op, |p| {
                if p.contains("phone") {
                    ctx.number(numbers::NOBODY_WITH_BODY)
                } else {
                    ctx.uuid().to_string()
                }
            });
            let big = format!("{{\"padding\": \"{}\"}}", "x".repeat(OVERSIZED_BYTES));
            ctx.expect(
                "a 70 KiB body",
                &op.id,
                413,
                Request::new(&op.method, &path).raw(Some("application/json"), big),
                code_is("PAYLOAD_TOO_LARGE"),
            );
        }
        if op.test_mode_only {
            if ctx.test_mode {
                if op.documents(404) {
                    ctx.matrix.not_applicable(
                        &op.id,
                        404,
                        "only a live key gets 404 here; run the suite with a live key too".into(),
                    );
                }
            } else {
                let r = with_body(Request::new(&op.method, &any_path));
                ctx.expect("a live key", &op.id, 404, r, code_is("NOT_FOUND"));
                for status in [201, 400, 415, 422] {
                    if op.documents(status) {
                        ctx.matrix.not_applicable(
                            &op.id,
                            status,
                            "test keys only: run the suite with a test key (am_test_…)".into(),
                        );
                    }
                }
                continue;
            }
        }
        if op.has_body {
            let path = Ctx::path(op, |p| {
                if p.contains("phone") {
                    ctx.number(numbers::NOBODY_WITH_BODY)
                } else {
                    ctx.uuid().to_string()
                }
            });
            let Some(auth) = ctx.auth_for(op) else {
                for status in [400, 415, 422] {
                    if op.documents(status) {
                        ctx.needs_carrier_secret(&op.id, status);
                    }
                }
                continue;
            };
            let request = || Request::new(&op.method, &path).auth(auth.clone());
            // Sent together after the loop (a deployment that leaves malformed bodies
            // unanswered costs one request timeout, not one per operation).
            if op.documents(415) {
                bodies.push(Expectation::new(
                    "a text/plain body",
                    &op.id,
                    415,
                    request().raw(Some("text/plain"), "hello"),
                    code_is("UNSUPPORTED_MEDIA_TYPE"),
                ));
            }
            if op.documents(400) {
                bodies.push(Expectation::new(
                    "malformed JSON",
                    &op.id,
                    400,
                    request().raw(Some("application/json"), "{\"oops\": "),
                    code_is("BAD_REQUEST"),
                ));
                bodies.push(Expectation::new(
                    "a JSON array body",
                    &op.id,
                    400,
                    request().raw(Some("application/json"), "[1, 2]"),
                    code_is("BAD_REQUEST"),
                ));
            }
            if op.documents(422) {
                bodies.push(Expectation::new(
                    "an unknown field",
                    &op.id,
                    422,
                    request().json(json!({"conformance_unknown_field": true})),
                    details_name("conformance_unknown_field"),
                ));
            }
        } else if op
            .responses
            .get(&422)
            .is_some_and(|d| d.codes.iter().any(|c| c == "VALIDATION_FAILED"))
            && !op.path_params.is_empty()
        {
            let path = Ctx::path(op, |_| "12345".to_owned());
            let param = op.path_params[0].clone();
            ctx.expect(
                "a malformed path value",
                &op.id,
                422,
                Request::new(&op.method, &path),
                details_name(&param),
            );
        }
        if op.documents(404) && !op.path_params.is_empty() {
            // With the body's example when it has one, so that only the id is wrong.
            let request = |path: &str| match &op.body_example {
                Some(example) => Request::new(&op.method, path).json(example.clone()),
                None => Request::new(&op.method, path),
            };
            let path = Ctx::path(op, |p| ctx.absent_value(p));
            ctx.expect(
                "a resource that does not exist",
                &op.id,
                404,
                request(&path),
                code_is("NOT_FOUND"),
            );
            // A path value the operation validates (a phone number) is 422 when malformed, above;
            // an id that names nothing is simply not found.
            let validates_path = op
                .responses
                .get(&422)
                .is_some_and(|d| d.codes.iter().any(|c| c == "VALIDATION_FAILED"));
            if !validates_path {
                let path = Ctx::path(op, |_| "not-an-id".to_owned());
                ctx.expect(
                    "a malformed id",
                    &op.id,
                    404,
                    request(&path),
                    code_is("NOT_FOUND"),
                );
            }
        }
    }
    ctx.expect_all(bodies);
}
