//! The HTTP API: poem-openapi operations, one file per resource, plus the envelope, the error
//! catalogue, authentication and the outer middleware that keeps every answer in the envelope.

use std::sync::{Arc, OnceLock};

use poem::{
    endpoint::{make_sync, BoxEndpoint},
    web::Html,
    Endpoint, EndpointExt, IntoResponse, Response, Route,
};
use poem_openapi::{
    types::{ToJSON, Type},
    ExtraHeader, OpenApiService, Tags,
};
use serde_json::{json, Value};

pub mod api_keys;
pub mod auth;
pub mod body;
pub mod carrier;
pub mod consents;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod health;
pub mod idempotency;
pub mod lookups;
pub mod messages;
pub mod middleware;
pub mod mm7;
pub mod numbers;
pub mod operations;
pub mod path;
pub mod query;
pub mod reply;
pub mod request_id;
pub mod test_helpers;
pub mod types;
pub mod webhooks;

use crate::service::Services;
use envelope::ErrorCode;

/// One tag per resource.
#[derive(Tags)]
pub enum ApiTags {
    /// Send messages and read them back.
    Messages,
    /// Record recipients' opt-ins and opt-outs.
    Consents,
    /// Classify numbers' line types.
    Lookups,
    /// The numbers your organization owns.
    Numbers,
    /// Make, list and revoke API keys.
    ApiKeys,
    /// Receive signed events, and see how each was delivered.
    Webhooks,
    /// The carrier's callbacks: delivery receipts and inbound messages.
    Carrier,
    /// Test mode's stand-ins for the outside world (test keys only).
    TestHelpers,
    /// Liveness.
    Health,
}

/// Every resource's operations.
pub type Api = (
    messages::MessagesApi,
    consents::ConsentsApi,
    lookups::LookupsApi,
    numbers::NumbersApi,
    api_keys::ApiKeysApi,
    webhooks::WebhooksApi,
    carrier::CarrierApi,
    mm7::Mm7Api,
    test_helpers::TestHelpersApi,
    health::HealthApi,
);

const DESCRIPTION: &str = "\
AgentMessage sends SMS and MMS from numbers your organization owns to recipients who opted in.

Every response is JSON. A success is `{\"success\": true, \"data\": …}` (lists add `has_more` and \
`next_cursor`); an error is `{\"success\": false, \"error\": {\"code\", \"message\", \
\"request_id\", \"details\"?}}`. Every response carries `X-Request-Id`, equal to \
`error.request_id` on errors.

Besides the statuses each operation lists, any request can be answered with:

- 404 `NOT_FOUND` for an unknown path, and 405 `METHOD_NOT_ALLOWED` (with an `Allow` header) for \
a known path with another method;
- 414 `URI_TOO_LONG` for a request target over 8 KiB, 431 `HEADERS_TOO_LARGE` for headers over \
32 KiB, and 408 `REQUEST_TIMEOUT` for a body that does not arrive in time (each closes the \
connection); past the HTTP layer's own limits (a target near 64 KiB, a head over 128 KiB) the \
answer is a bare 414 or 431 and the connection is closed;
- 500 `INTERNAL_ERROR` on an unexpected fault (the server log holds the cause under the request \
id) and 503 `SERVICE_UNAVAILABLE` with `Retry-After` when the database cannot be reached.

Checks run in this order: route, size, API key (401), scope (403), content type (415), JSON \
syntax (400), the `Idempotency-Key` header where an operation takes one (400), fields (422, every \
failing field at once), then the operation's own rules.

Status 453 is not a registered HTTP status: it is sent as `453 Consent Required`, and some \
generated clients cannot represent it, so read the numeric status and `error.code`.

Limits, patterns and value sets are the named schemas (`PhoneNumber`, `MessageText`, `Tag`, …): \
the server checks exactly what they say.

The TypeScript definitions of every request and response body are served at \
[`/openapi.d.ts`](/openapi.d.ts); an interactive reference is at [`/reference`](/reference) and \
Swagger UI at [`/docs`](/docs).";

/// The poem-openapi service; building it needs no database.
pub fn api_service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            messages::MessagesApi,
            consents::ConsentsApi,
            lookups::LookupsApi,
            numbers::NumbersApi,
            api_keys::ApiKeysApi,
            webhooks::WebhooksApi,
            carrier::CarrierApi,
            mm7::Mm7Api,
            test_helpers::TestHelpersApi,
            health::HealthApi,
        ),
        "AgentMessage",
        "1.0.0",
    )
    .description(DESCRIPTION)
    .extra_response_header::<String, _>(
        ExtraHeader::new(request_id::HEADER_NAME)
            .description("The request's id (a ULID); on errors equal to `error.request_id`."),
    )
}

/// The published spec as a JSON value: poem-openapi's document with the corrections it cannot
/// express itself (see [`finish_spec`]).
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec: Value =
            serde_json::from_str(&api_service().spec()).expect("poem-openapi writes JSON");
        finish_spec(&mut spec);
        spec
    })
}

/// The published spec as pretty JSON (what `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    serde_json::to_string_pretty(spec()).expect("a JSON value serializes")
}

/// The published spec as YAML (what `openapi/openapi.yaml` holds).
pub fn spec_yaml() -> String {
    serde_yaml::to_string(spec()).expect("a JSON value serializes as YAML")
}

/// Corrections to the generated document:
/// - request schemas (`*Request`) forbid unknown fields (`additionalProperties: false`), as the
///   server does;
/// - a nullable response field is always present, so it is listed as required;
/// - media types are plain `application/json`, and tags come in reading order;
/// - the answers any request can get besides its operation's (404, 405, 500, 503) are described
///   once, under the
///   root extension `x-common-responses` (OpenAPI 3.0 has no place for responses shared by every
///   operation, and a component that nothing references is a linter's warning);
/// - each error response shows an example of each of its own codes;
/// - a property's description sits beside a single-item `allOf`, as every generator reads it;
/// - `servers`, licence and contact; `security: []` on operations that need no credential;
///   response headers spelled as they are sent.
fn finish_spec(spec: &mut Value) {
    // The webhook events' bodies: no operation references them, so they are registered here
    // and referenced from `x-webhooks` (the OpenAPI 3.0 extension; `webhooks` is 3.1's).
    let mut events = poem_openapi::registry::Registry::new();
    webhooks::MessageWebhookEvent::register(&mut events);
    webhooks::ConsentWebhookEvent::register(&mut events);
    webhooks::TestWebhookEvent::register(&mut events);
    for (name, schema) in events.schemas {
        if spec["components"]["schemas"].get(&name).is_none() {
            spec["components"]["schemas"][name] =
                serde_json::to_value(schema).expect("a schema serializes");
        }
    }
    spec["x-webhooks"] = webhooks::spec_section();
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if name.ends_with("Request") {
                schema["additionalProperties"] = Value::Bool(false);
            }
            let nullable: Vec<String> = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .filter(|(_, p)| p.get("nullable") == Some(&Value::Bool(true)))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            if !nullable.is_empty() {
                let required = schema
                    .as_object_mut()
                    .expect("a schema is an object")
                    .entry("required")
                    .or_insert_with(|| json!([]));
                if let Some(list) = required.as_array_mut() {
                    for field in nullable {
                        if !list.contains(&Value::String(field.clone())) {
                            list.push(Value::String(field));
                        }
                    }
                }
            }
        }
    }
    rename_media_types(spec);
    tidy_schemas(spec);
    inline_nullable_enums(spec);
    drop_unreferenced_schemas(spec);
    // poem-openapi keeps only the schemas that bodies and parameters reference; headers'
    // schemas are added here.
    let mut registry = poem_openapi::registry::Registry::new();
    types::RetryAfter::register(&mut registry);
    for (name, schema) in registry.schemas {
        spec["components"]["schemas"][name] =
            serde_json::to_value(schema).expect("a schema serializes");
    }
    // Every operation needs an API key unless it says otherwise (health, the carrier's own
    // operations): documentation tools show it as required and put it in their samples.
    spec["security"] = json!([{"ApiKeyAuth": []}]);
    spec["servers"] = json!([{"url": "/", "description": "The server that serves this document."}]);
    spec["info"]["license"] =
        json!({"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"});
    spec["info"]["contact"] = json!({"name": "AgentMessage"});
    for_each_operation(spec, |op| {
        if op.get("security").is_none() {
            op["security"] = json!([]);
        }
        // Operations that answer test keys only (a live key gets 404): tools and the
        // conformance suite read this mark.
        if op["tags"][0] == "TestHelpers" {
            op["x-test-mode-only"] = json!(true);
        }
        // The required scope, from the operation's own data: an extension tools read, and the
        // sentence that ends its description.
        let scope = op["operationId"]
            .as_str()
            .and_then(operations::Operation::of)
            .map(|o| o.scope().as_str().to_owned());
        if let Some(scope) = &scope {
            op["x-required-scopes"] = json!([scope]);
            let sentence = format!("Requires the `{scope}` scope.");
            let description = op["description"].as_str().unwrap_or_default();
            op["description"] = json!(if description.is_empty() {
                sentence
            } else {
                format!("{description}\n\n{sentence}")
            });
        }
        let spends = op["operationId"]
            .as_str()
            .and_then(operations::Operation::of)
            .is_some_and(|o| o.spends_rate_limit());
        let idempotent = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == idempotency::HEADER));
        for (status, response) in op["responses"].as_object_mut().into_iter().flatten() {
            // The answers an Idempotency-Key records (success, 422, 453) can come back replayed.
            if idempotent && (status.starts_with('2') || status == "422" || status == "453") {
                response["headers"][idempotency::REPLAYED_HEADER] = json!({
                    "description": "`true` when this is the answer recorded for the request's `Idempotency-Key`, sent again: the same status and body byte for byte, and the first request's `X-Request-Id`. Absent otherwise.",
                    "required": false,
                    "schema": {"type": "string", "enum": ["true"], "example": "true"},
                });
            }
            // Answers given after the API key was read carry the organization's policy (401
            // and 413 come before it; a 404 for a path that names no route, such as an empty
            // segment, too).
            if scope.is_some() && status != "401" && status != "413" {
                response["headers"]["RateLimit-Policy"] = json!({
                    "description": "The organization's rate limit on sends and lookups (IETF httpapi RateLimit header fields draft): `\"organization\";q=<burst>;w=<seconds>`, a quota of `q` requests refilled over `w` seconds. Sends and lookups share it, per key mode. On every answer given after the API key was accepted.",
                    "required": status != "404",
                    "schema": {"type": "string", "example": "\"organization\";q=20;w=2"},
                });
            }
            if spends
                && (status.starts_with('2') || ["422", "429", "453"].contains(&status.as_str()))
            {
                response["headers"]["RateLimit"] = json!({
                    "description": "What is left of the organization's rate limit after this request (IETF httpapi draft): `\"organization\";r=<requests left>;t=<seconds until full>`. Sent when the request reached the rate limit (it spent a token, or was refused for want of one: then `r=0`); not on an answer replayed for an `Idempotency-Key`, which spends nothing. On PostgreSQL, with several API processes sharing the allowance, `r` is approximate.",
                    "required": false,
                    "schema": {"type": "string", "example": "\"organization\";r=19;t=1"},
                });
            }
            if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
                if let Some(header) = headers.remove("X-REQUEST-ID") {
                    headers.insert(request_id::HEADER_NAME.into(), header);
                }
            }
            if status.starts_with('4') || status.starts_with('5') {
                add_error_examples(response, scope.as_deref());
            }
        }
    });
    add_code_samples(spec);
    add_links(spec);
    // Tags in the order people look for them (poem-openapi sorts them by name).
    const TAG_ORDER: [&str; 9] = [
        "Messages",
        "Consents",
        "Lookups",
        "Numbers",
        "ApiKeys",
        "Webhooks",
        "Carrier",
        "TestHelpers",
        "Health",
    ];
    if let Some(tags) = spec.get_mut("tags").and_then(Value::as_array_mut) {
        tags.sort_by_key(|t| {
            TAG_ORDER
                .iter()
                .position(|n| t["name"] == *n)
                .unwrap_or(TAG_ORDER.len())
        });
    }
    let error_response = |description: &str, retry_after: bool| {
        let mut response = json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
            "headers": {request_id::HEADER_NAME: {"description": "The request's id (a ULID); on errors equal to `error.request_id`.", "required": true, "deprecated": false, "schema": {"type": "string"}}}
        });
        add_error_examples(&mut response, None);
        if retry_after {
            response["headers"]["Retry-After"] =
                serde_json::to_value(reply::retry_after_header(true)).expect("a header serializes");
        }
        response
    };
    spec["x-common-responses"] = json!({
        "InternalError": error_response("`INTERNAL_ERROR`: an unexpected fault; the server log holds its cause under the request id. Any operation can answer it.", false),
        "ServiceUnavailable": error_response("`SERVICE_UNAVAILABLE`: the database cannot be reached, is locked by another process, or has no free connection in time; retry after `Retry-After` seconds. Any operation that reads or writes data can answer it.", true),
        "NotFound": error_response("`NOT_FOUND`: no route has this path.", false),
        "MethodNotAllowed": error_response("`METHOD_NOT_ALLOWED`: the path exists with other methods, listed in the `Allow` header.", false),
        "RequestTimeout": error_response("`REQUEST_TIMEOUT`: the request body did not arrive within the server's body timeout (30 seconds by default); the connection is closed.", false),
        "UriTooLong": error_response("`URI_TOO_LONG`: the request target (path and query) is longer than 8 KiB; the connection is closed. Past the HTTP layer's own limit (a target near 64 KiB) the answer is a bare 414 and the connection is closed.", false),
        "HeadersTooLarge": error_response("`HEADERS_TOO_LARGE`: the request's headers are larger than 32 KiB; the connection is closed. Past 128 KiB of request head the server answers a bare 431 and closes the connection.", false),
    });
}

/// Calls `f` on every operation of the spec.
fn for_each_operation(spec: &mut Value, mut f: impl FnMut(&mut Value)) {
    for item in spec["paths"].as_object_mut().into_iter().flatten() {
        for op in item.1.as_object_mut().into_iter().flatten() {
            f(op.1);
        }
    }
}

/// The codes an error response documents: its description lists them as "`CODE`: …".
fn documented_codes(response: &Value) -> Vec<ErrorCode> {
    let description = response["description"].as_str().unwrap_or_default();
    description
        .split("\n\n")
        .filter_map(|paragraph| {
            let name = paragraph.strip_prefix('`')?.split('`').next()?;
            ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
        })
        .collect()
}

/// OpenAPI `links` from each operation that makes (or returns) a resource to the operations that
/// read, change or delete it, so that a client or a stateful tester can walk from one to the
/// next: (the operation, its success status, the link's name, the operation it leads to, the
/// target's parameters and the runtime expressions that fill them).
const LINKS: &[Link] = &[
    (
        "messages_create",
        "202",
        "view",
        "messages_view",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "messages_create",
        "202",
        "events",
        "messages_events_list",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "messages_create",
        "202",
        "cancel",
        "messages_cancel",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "messages_view",
        "200",
        "events",
        "messages_events_list",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "consents_update",
        "200",
        "view",
        "consents_view",
        &[("phone_number", "$response.body#/data/phone_number")],
    ),
    (
        "consents_update",
        "200",
        "opt_out",
        "consents_delete",
        &[("phone_number", "$response.body#/data/phone_number")],
    ),
    (
        "lookups_create",
        "201",
        "view",
        "lookups_view",
        &[("phone_number", "$response.body#/data/phone_number")],
    ),
    (
        "api_keys_create",
        "201",
        "revoke",
        "api_keys_delete",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_endpoints_create",
        "201",
        "get",
        "webhook_endpoints_get",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_endpoints_create",
        "201",
        "update",
        "webhook_endpoints_update",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_endpoints_create",
        "201",
        "rotate_secret",
        "webhook_endpoints_rotate_secret",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_endpoints_create",
        "201",
        "deliveries",
        "webhook_deliveries_list",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_endpoints_create",
        "201",
        "test",
        "webhook_endpoints_test",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_endpoints_create",
        "201",
        "delete",
        "webhook_endpoints_delete",
        &[("id", "$response.body#/data/id")],
    ),
    (
        "webhook_deliveries_list",
        "200",
        "retry",
        "webhook_deliveries_retry",
        &[
            ("id", "$request.path.id"),
            ("delivery_id", "$response.body#/data/0/id"),
        ],
    ),
];

/// One link: from operation, its status, the link's name, the target operation, and the
/// target's parameters with their runtime expressions.
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn add_links(spec: &mut Value) {
    let mut operations = std::collections::HashMap::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op["operationId"].as_str() {
                    operations.insert(id.to_owned(), (path.clone(), method.clone()));
                }
            }
        }
    }
    for (from, status, name, to, parameters) in LINKS {
        let (Some((path, method)), true) = (operations.get(*from), operations.contains_key(*to))
        else {
            panic!("a link names an operation the spec does not have: {from} -> {to}");
        };
        let summary = spec["paths"][path.as_str()][method.as_str()].clone();
        let target = operations[*to].clone();
        let target_summary = spec["paths"][target.0.as_str()][target.1.as_str()]["summary"]
            .as_str()
            .unwrap_or(to)
            .to_owned();
        let response = &mut spec["paths"][path.as_str()][method.as_str()]["responses"][*status];
        assert!(
            response.is_object(),
            "{from} documents no {status} to link from ({summary})"
        );
        let parameters: serde_json::Map<String, Value> = parameters
            .iter()
            .map(|(p, e)| ((*p).to_owned(), Value::from(*e)))
            .collect();
        response["links"][*name] = serde_json::json!({
            "operationId": to,
            "parameters": parameters,
            "description": target_summary,
        });
    }
}

/// The address the code samples call: `serve`'s default listener, as in the README.
pub const SAMPLE_BASE_URL: &str = "http://127.0.0.1:8080";

/// A curl sample on every operation that takes an organization's API key (`x-codeSamples`, which
/// the reference shows first): the key's placeholder (`am_live_…`, or `am_test_…` where only test
/// keys are answered), an `Idempotency-Key` where the operation takes one, and the request body's
/// example. Built from the spec itself, so a sample cannot drift from what it documents.
fn add_code_samples(spec: &mut Value) {
    let schemas = spec["components"]["schemas"].clone();
    let example_of = |schema: &Value| -> Option<Value> {
        let schema = match schema["$ref"].as_str() {
            Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
            None => schema,
        };
        schema.get("example").cloned()
    };
    let paths: Vec<String> = spec["paths"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for path in paths {
        let Some(item) = spec["paths"][&path].as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let keyed = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("ApiKeyAuth").is_some()));
            if !keyed {
                continue;
            }
            let mut url = format!("{SAMPLE_BASE_URL}{path}");
            let mut headers = Vec::new();
            let key = if op["x-test-mode-only"] == json!(true) {
                "am_test_…"
            } else {
                "am_live_…"
            };
            headers.push(format!("Authorization: Bearer {key}"));
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().unwrap_or_default();
                let example = example_of(&param["schema"])
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| match name {
                        "phone_number" => "+15554443333".into(),
                        _ => "0196f1a2-3b4c-7d5e-8f60-718293a4b5c6".into(),
                    });
                match param["in"].as_str() {
                    Some("path") => url = url.replace(&format!("{{{name}}}"), &example),
                    Some("header") => headers.push(format!("{name}: {example}")),
                    _ => {}
                }
            }
            let body = op
                .pointer("/requestBody/content/application~1json/schema")
                .and_then(&example_of);
            let mut lines = vec![format!("curl -X {} \"{url}\"", method.to_ascii_uppercase())];
            lines.extend(headers.iter().map(|h| format!("  -H \"{h}\"")));
            if let Some(body) = body {
                lines.push("  -H \"Content-Type: application/json\"".into());
                let json = one_line(&body).replace('\'', "'\\''");
                lines.push(format!("  -d '{json}'"));
            }
            op["x-codeSamples"] =
                json!([{"lang": "shell", "label": "curl", "source": lines.join(" \\\n")}]);
        }
    }
}

/// JSON on one line, spaced as people write it: `{"a": 1, "b": [2, 3]}`.
fn one_line(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), one_line(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(one_line).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Shows an example envelope of each code the response documents: `example` for one code,
/// `examples` keyed by code for several.
fn add_error_examples(response: &mut Value, scope: Option<&str>) {
    let codes = documented_codes(response);
    let Some(media) = response.pointer_mut("/content/application~1json") else {
        return;
    };
    let example = |code: ErrorCode| {
        envelope::ErrorEnvelope::example_of(code, scope)
            .to_json()
            .expect("an envelope is JSON")
    };
    match codes.as_slice() {
        [] => {}
        [code] => media["example"] = example(*code),
        codes => {
            media["examples"] = codes
                .iter()
                .map(|code| {
                    (
                        code.as_str().to_owned(),
                        json!({"summary": code.as_str(), "value": example(*code)}),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
    }
}

/// A property's description beside a single-item `allOf` (poem-openapi repeats it in a second
/// item, which several generators cannot read).
fn tidy_schemas(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(mut all_of)) = map.remove("allOf") {
                // poem-openapi repeats the property's own keywords (description, nullable,
                // default) in a second item; they already stand beside the `allOf`.
                all_of.retain(|item| {
                    !item.as_object().is_some_and(|o| {
                        !o.contains_key("$ref") && o.iter().all(|(k, v)| map.get(k) == Some(v))
                    })
                });
                map.insert("allOf".into(), Value::Array(all_of));
            }
            map.values_mut().for_each(tidy_schemas);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_schemas),
        _ => {}
    }
}

/// A nullable property whose values are a named set is written as the set itself, with `type`,
/// `nullable` and `null` among its values: OpenAPI 3.0 lets `nullable` act only beside `type`,
/// and a `$ref`'d enum would refuse `null`.
fn inline_nullable_enums(spec: &mut Value) {
    let schemas = spec["components"]["schemas"].clone();
    let Some(all) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in all.values_mut() {
        for property in schema
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|p| p.values_mut())
        {
            if property.get("nullable") != Some(&Value::Bool(true)) {
                continue;
            }
            let target = property["allOf"][0]["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(|name| &schemas[name]);
            let Some(values) = target.and_then(|t| t["enum"].as_array()) else {
                continue;
            };
            let mut values = values.clone();
            values.push(Value::Null);
            let object = property.as_object_mut().expect("a property is an object");
            object.remove("allOf");
            object.insert("type".into(), json!("string"));
            object.insert("enum".into(), Value::Array(values));
        }
    }
}

/// Removes component schemas nothing refers to any more (a set written inline by
/// [`inline_nullable_enums`]), so that the published document has no unused component.
fn drop_unreferenced_schemas(spec: &mut Value) {
    fn refs(value: &Value, skip: &str, found: &mut std::collections::HashSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "$ref" {
                        if let Some(name) = child
                            .as_str()
                            .and_then(|r| r.strip_prefix("#/components/schemas/"))
                        {
                            if name != skip {
                                found.insert(name.to_owned());
                            }
                        }
                    } else {
                        refs(child, skip, found);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, skip, found)),
            _ => {}
        }
    }
    loop {
        let names: Vec<String> = spec["components"]["schemas"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut used = std::collections::HashSet::new();
        for (key, child) in spec.as_object().into_iter().flatten() {
            if key != "components" {
                refs(child, "", &mut used);
            }
        }
        for name in &names {
            refs(&spec["components"]["schemas"][name], name, &mut used);
        }
        let unused: Vec<&String> = names.iter().filter(|n| !used.contains(*n)).collect();
        if unused.is_empty() {
            return;
        }
        let schemas = spec["components"]["schemas"]
            .as_object_mut()
            .expect("schemas is an object");
        for name in unused {
            schemas.remove(name);
        }
    }
}

fn rename_media_types(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(content) = map.get_mut("content").and_then(Value::as_object_mut) {
                if let Some(media) = content.remove("application/json; charset=utf-8") {
                    content.insert("application/json".into(), media);
                }
            }
            map.values_mut().for_each(rename_media_types);
        }
        Value::Array(items) => items.iter_mut().for_each(rename_media_types),
        _ => {}
    }
}

/// Lets the store render webhook events' `data` as the API shows the resources; every process
/// that changes messages or consent (API, worker) installs it.
pub fn install_renderer(services: &Services) {
    services.install_renderer(Arc::new(webhooks::ApiRender));
}

/// The whole server: the API, the spec, Swagger UI at `/docs`, inside the middleware that keeps
/// every answer in the envelope.
pub fn app(services: Services) -> impl Endpoint<Output = Response> {
    install_renderer(&services);
    let body_read_timeout = services.settings.body_read_timeout;
    let mms_max_bytes = services.settings.media.max_bytes;
    let service = api_service();
    let raw_spec = service.spec();
    let json_spec = Arc::new(spec_json());
    let yaml_spec = Arc::new(spec_yaml());
    let docs = swagger_page(&service.swagger_ui_html().replace(&raw_spec, &json_spec));
    let reference = reference_page(&service.scalar_html().replace(&raw_spec, &json_spec));
    let pages = Route::new()
        .at(
            "/openapi.json",
            make_sync(move |_| json_response(&json_spec, "application/json")),
        )
        .at(
            "/openapi.yaml",
            make_sync(move |_| json_response(&yaml_spec, "application/yaml")),
        )
        .at(
            "/openapi.d.ts",
            make_sync(|_| json_response(TYPESCRIPT_DEFINITIONS, "text/plain; charset=utf-8")),
        )
        .at("/docs", make_sync(move |_| Html(docs.clone())))
        .at("/reference", make_sync(move |_| Html(reference.clone())));
    let watched = services.clone();
    let gone: middleware::Gone = std::sync::Arc::new(move || watched.database_gone());
    let site = Site {
        api: service.data(services).map_to_response().boxed(),
        pages: pages.map_to_response().boxed(),
    };
    middleware::Guard::new(
        site,
        middleware::RouteTable::from_spec(spec()),
        body_read_timeout,
        middleware::mm7_body_bytes(mms_max_bytes),
        gone,
    )
}

/// The TypeScript definitions of every request and response body, generated from the spec by
/// openapi-typescript (`openapi/agentmessage.d.ts`; a test keeps it in step with the spec).
pub const TYPESCRIPT_DEFINITIONS: &str = include_str!("../../openapi/agentmessage.d.ts");

/// Scalar's API reference as poem-openapi bundles it, titled for AgentMessage and configured to
/// load nothing from outside the server: no web fonts from a CDN, no request proxy, no telemetry.
fn reference_page(scalar: &str) -> String {
    const CONFIGURATION: &str = r#"{"withDefaultFonts":false,"hideClientButton":true,"proxyUrl":"","telemetry":false,"metaData":{"title":"AgentMessage API reference"},"authentication":{"preferredSecurityScheme":"ApiKeyAuth","http":{"bearer":{"token":"am_live_…"}}}}"#;
    scalar
        .replacen(
            "<title>Scalar</title>",
            "<title>AgentMessage API reference</title>",
            1,
        )
        .replacen(
            r#"id="api-reference""#,
            &format!(r#"id="api-reference" data-configuration='{CONFIGURATION}'"#),
            1,
        )
}

/// Swagger UI as poem-openapi bundles it, titled for AgentMessage, with the API key's placeholder
/// filled in so that its curl samples carry `Authorization: Bearer am_live_…` (Authorize replaces
/// it with a real key).
fn swagger_page(swagger: &str) -> String {
    swagger
        .replacen(
            "<title>Swagger UI</title>",
            "<title>AgentMessage API (Swagger UI)</title>",
            1,
        )
        .replacen("SwaggerUIBundle({", "const ui = SwaggerUIBundle({", 1)
        .replacen(
            "deepLinking: true,",
            r#"deepLinking: true,
        onComplete: function () { ui.preauthorizeApiKey("ApiKeyAuth", "am_live_…"); },"#,
            1,
        )
}

/// Sends the spec and docs pages to their routes and everything else to the API. (The API is not
/// nested under a `Route`, whose catch-all parameter refuses paths that do not percent-decode.)
struct Site {
    api: BoxEndpoint<'static, Response>,
    pages: BoxEndpoint<'static, Response>,
}

impl Endpoint for Site {
    type Output = Response;

    async fn call(&self, req: poem::Request) -> poem::Result<Response> {
        if middleware::EXTRA_ROUTES.contains(&req.uri().path()) {
            self.pages.call(req).await
        } else {
            self.api.call(req).await
        }
    }
}

fn json_response(body: &str, content_type: &str) -> Response {
    Response::builder()
        .content_type(content_type)
        .body(body.to_owned())
        .into_response()
}
