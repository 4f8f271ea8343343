//! The run's set-up — the number to send from, the restricted keys the 403 cases use — and its
//! clean-up: the keys revoked, a revoked key refused.

use serde_json::json;

use crate::{
    client::{Auth, Request},
    ctx::{code_is, data_of, no_extra, Ctx},
};

/// Finds the number to send from and mints the restricted keys.
pub fn setup(ctx: &mut Ctx) -> anyhow::Result<()> {
    let numbers = ctx.expect(
        "discover an owned number",
        "numbers_list",
        200,
        Request::new("GET", "/v1/numbers"),
        no_extra,
    );
    let from = numbers.and_then(|r| r.json).and_then(|b| {
        b["data"]
            .as_array()
            .and_then(|d| d.first())
            .and_then(|n| n["phone_number"].as_str().map(str::to_owned))
    });
    ctx.from = from.ok_or_else(|| {
        anyhow::anyhow!("the API key's organization owns no phone number (GET /v1/numbers is empty); give it one first")
    })?;
    for scopes in [vec!["numbers:read"], vec!["messages:read"]] {
        let request = Request::new("POST", "/v1/api_keys")
            .json(json!({"name": "conformance (restricted)", "scopes": scopes}));
        let expected: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let wanted = expected.clone();
        let response = ctx.expect(
            "mint a restricted key",
            "api_keys_create",
            201,
            request,
            move |r| {
                let data = &data_of(r);
                let mut problems = vec![];
                if data["key"].as_str().is_none_or(str::is_empty) {
                    problems.push("the new key's secret is not shown".to_owned());
                }
                if data["scopes"] != json!(wanted) {
                    problems.push(format!(
                        "scopes are {}, asked for {:?}",
                        data["scopes"], wanted
                    ));
                }
                problems
            },
        );
        let data = response
            .and_then(|r| r.json)
            .map(|b| b["data"].clone())
            .unwrap_or_default();
        match (data["id"].as_str(), data["key"].as_str()) {
            (Some(id), Some(key)) => ctx
                .restricted
                .push((id.to_owned(), key.to_owned(), expected)),
            _ => anyhow::bail!("could not mint a restricted key through POST /v1/api_keys"),
        }
    }
    Ok(())
}

/// Revokes the restricted keys; a revoked key then answers 401.
pub fn cleanup(ctx: &mut Ctx) {
    let keys = std::mem::take(&mut ctx.restricted);
    for (id, key, _) in keys {
        ctx.expect(
            "revoke a key",
            "api_keys_delete",
            200,
            Request::new("DELETE", format!("/v1/api_keys/{id}")),
            |r| {
                let data = data_of(r);
                if data["revoked_at"].is_string() {
                    vec![]
                } else {
                    vec!["revoked_at is not set".to_owned()]
                }
            },
        );
        ctx.expect(
            "a revoked key",
            "numbers_list",
            401,
            Request::new("GET", "/v1/numbers").auth(Auth::Key(key)),
            code_is("UNAUTHORIZED"),
        );
    }
}
