//! Answers any request can get: 414, 431, 408, an unknown path, a method a path does not have.

use serde_json::json;

use crate::{
    check::check_response,
    client::Request,
    ctx::{code_is, Ctx},
    matrix::SERVER_WIDE,
};

/// Answers any request can get: unknown path, wrong method, oversized body.
pub fn cases(ctx: &mut Ctx) {
    if ctx.spec.global.contains_key(&414) {
        ctx.expect(
            "a 9 KiB request target",
            SERVER_WIDE,
            414,
            Request::new("GET", format!("/v1/messages?tag={}", "t".repeat(9 * 1024))),
            code_is("URI_TOO_LONG"),
        );
    }
    if ctx.spec.global.contains_key(&431) {
        ctx.expect(
            "33 KiB of headers",
            SERVER_WIDE,
            431,
            Request::new("GET", "/v1/numbers").header("x-padding", "p".repeat(33 * 1024)),
            code_is("HEADERS_TOO_LARGE"),
        );
    }
    if ctx.spec.global.contains_key(&408) {
        match ctx.options.body_timeout {
            Some(timeout) if !ctx.past_deadline() => {
                let wait = timeout + ctx.options.request_timeout;
                let mark = ctx.target.mark();
                let problems = match ctx.target.send_stalled_body("/v1/messages", wait) {
                    Ok(r) => {
                        let mut problems = check_response(ctx.spec, ctx.schemas, None, &r);
                        if r.status != 408 {
                            problems.push(format!("a stalled body answered {}", r.status));
                        }
                        problems.extend(code_is("REQUEST_TIMEOUT")(&r));
                        if problems.is_empty() {
                            if let Some(body) = r.json.clone() {
                                ctx.observations
                                    .entry((SERVER_WIDE.into(), 408))
                                    .or_insert(body);
                            }
                        }
                        problems
                    }
                    Err(err) => vec![format!("a stalled body: {err:#}")],
                };
                ctx.record(
                    SERVER_WIDE,
                    408,
                    "a body that stops half-way",
                    problems,
                    mark,
                );
            }
            _ => ctx.matrix.not_provable(
                SERVER_WIDE,
                408,
                "the deployment's body timeout was not given (--body-timeout)".into(),
            ),
        }
    }
    ctx.expect(
        "an unknown path",
        SERVER_WIDE,
        404,
        Request::new("GET", "/conformance/no-such-path"),
        code_is("NOT_FOUND"),
    );
    ctx.expect(
        "an unknown path with a body",
        SERVER_WIDE,
        404,
        Request::new("POST", "/v1/conformance-nothing").json(json!({})),
        code_is("NOT_FOUND"),
    );
    let mut paths: Vec<String> = ctx
        .spec
        .operations
        .iter()
        .map(|op| op.path.clone())
        .collect();
    paths.dedup();
    for template in paths {
        let allowed = ctx.spec.methods_of(&template);
        let Some(method) = ["PATCH", "PUT", "DELETE", "POST"]
            .into_iter()
            .find(|m| !allowed.iter().any(|a| a == m))
        else {
            continue;
        };
        let path = template.replace(['{', '}'], "");
        let expected_allow = allowed.clone();
        ctx.expect(
            &format!("{method} {template}"),
            SERVER_WIDE,
            405,
            Request::new(method, path),
            move |r| {
                let mut got: Vec<String> = r
                    .header("allow")
                    .unwrap_or_default()
                    .split(',')
                    .map(|m| m.trim().to_uppercase())
                    .filter(|m| !m.is_empty())
                    .collect();
                got.sort();
                if got == expected_allow {
                    vec![]
                } else {
                    vec![format!(
                        "Allow is {got:?}, the spec's methods are {expected_allow:?}"
                    )]
                }
            },
        );
    }
}
