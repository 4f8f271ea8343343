//! API keys: listed without their secrets; the organization's limit on them. (Minting and
//! revoking are the run's setup and cleanup.)

use serde_json::json;

use crate::{cases::limits::limit_reached, client::Request, ctx::Ctx};

/// The keys the run minted are listed, none with its secret.
pub fn cases(ctx: &mut Ctx) {
    let secrets: Vec<String> = ctx.restricted.iter().map(|(_, k, _)| k.clone()).collect();
    let ids: Vec<String> = ctx.restricted.iter().map(|(id, _, _)| id.clone()).collect();
    ctx.expect(
        "list keys",
        "api_keys_list",
        200,
        Request::new("GET", "/v1/api_keys"),
        move |r| {
            let mut problems = vec![];
            if secrets.iter().any(|s| r.text.contains(s.as_str())) {
                problems.push("a listed key shows its secret".to_owned());
            }
            for id in &ids {
                if !r.text.contains(id.as_str()) {
                    problems.push(format!("key {id} is not listed"));
                }
            }
            problems
        },
    );
}

/// The organization's limit on API keys: keys are added until 409, then revoked.
pub fn key_limit(ctx: &mut Ctx) {
    limit_reached(
        ctx,
        "api_keys_create",
        "API key",
        || {
            Request::new("POST", "/v1/api_keys")
                .json(json!({"name": "conformance (limit)", "scopes": ["numbers:read"]}))
        },
        |id| Request::new("DELETE", format!("/v1/api_keys/{id}")),
    );
}
