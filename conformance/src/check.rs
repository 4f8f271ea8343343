//! The checks every response gets: status documented, content type, body against the documented
//! schema, the envelope rules and the documented headers.

use serde_json::Value;

use crate::{
    client::Response,
    schema::Schemas,
    spec::{Documented, Operation, Spec},
};

/// The problems a response to `op` has against the spec (empty when it keeps the contract).
pub fn check_response(
    spec: &Spec,
    schemas: &Schemas,
    op: Option<&Operation>,
    response: &Response,
) -> Vec<String> {
    let documented = op
        .and_then(|op| op.responses.get(&response.status))
        .or_else(|| spec.global.get(&response.status));
    let Some(documented) = documented else {
        return vec![format!(
            "answered {}, which the spec does not document for {}",
            response.status,
            op.map_or("this request", |op| op.id.as_str())
        )];
    };
    check_against(spec, schemas, documented, response)
}

/// The problems a response has against one documented response.
pub fn check_against(
    spec: &Spec,
    schemas: &Schemas,
    documented: &Documented,
    response: &Response,
) -> Vec<String> {
    let mut problems = Vec::new();
    let request_id = response.header("x-request-id");
    if request_id.is_none_or(str::is_empty) {
        problems.push("no X-Request-Id header".to_owned());
    }
    if let Some(media) = &documented.media_type {
        let content_type = response.header("content-type").unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        // Documented as octet-stream, bytes come with the type they were stored with.
        let any_type = media == "application/octet-stream" && !essence.is_empty();
        if !any_type && !essence.eq_ignore_ascii_case(media) {
            problems.push(format!(
                "Content-Type is {content_type:?}, the spec says {media}"
            ));
        }
    }
    for header in &documented.required_headers {
        match response.header(header) {
            None => problems.push(format!("documented header {header} is missing")),
            Some(value) if header == "retry-after" => {
                if !value.parse::<u64>().is_ok_and(|s| s >= 1) {
                    problems.push(format!(
                        "Retry-After is {value:?}, not whole seconds of at least 1"
                    ));
                }
            }
            Some(_) => {}
        }
    }
    // The answers that are not JSON (the MMS centre's SOAP, media bytes) have no envelope: a
    // SOAP answer must be a SOAP envelope.
    match documented.media_type.as_deref() {
        Some(media) if !media.ends_with("json") => {
            if media == "text/xml" && !response.text.contains("Envelope") {
                problems.push(format!(
                    "the body is not a SOAP envelope: {:?}",
                    truncate(&response.text)
                ));
            }
            return problems;
        }
        _ => {}
    }
    let Some(body) = &response.json else {
        if documented.schema.is_some() {
            problems.push(format!(
                "the body is not JSON: {:?}",
                truncate(&response.text)
            ));
        }
        return problems;
    };
    if let Some(schema) = &documented.schema {
        problems.extend(schemas.validate(schema, body));
    }
    let is_success = (200..300).contains(&response.status);
    match body.get("success") {
        Some(Value::Bool(flag)) if *flag == is_success => {}
        other => problems.push(format!(
            "`success` is {other:?} on a {} response",
            response.status
        )),
    }
    if !is_success {
        let error = &body["error"];
        let code = error["code"].as_str().unwrap_or_default();
        if !spec.error_codes().iter().any(|c| c == code) {
            problems.push(format!("error.code {code:?} is not in the catalogue"));
        } else if !documented.codes.is_empty() && !documented.codes.iter().any(|c| c == code) {
            problems.push(format!(
                "error.code {code} is not one the spec gives for status {} ({})",
                response.status,
                documented.codes.join(", ")
            ));
        }
        if error["request_id"].as_str() != request_id {
            problems.push(format!(
                "error.request_id {} differs from X-Request-Id {:?}",
                error["request_id"], request_id
            ));
        }
    }
    problems
}

fn truncate(text: &str) -> String {
    text.chars().take(120).collect()
}
