//! The published spec, read into what the suite needs: each operation with the statuses it
//! documents, their schemas, error codes and headers.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use regex::Regex;
use serde_json::Value;

/// One documented response of an operation.
#[derive(Debug, Clone)]
pub struct Documented {
    /// The error codes the description names for this status (`` `CODE`: … ``).
    pub codes: Vec<String>,
    /// The media type and its schema.
    pub media_type: Option<String>,
    pub schema: Option<Value>,
    /// Header names (lower case) the response must carry.
    pub required_headers: Vec<String>,
    /// The response's description, first line.
    pub description: String,
}

/// One operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub path: String,
    pub responses: BTreeMap<u16, Documented>,
    pub has_body: bool,
    /// The request body may be JSON (`application/json` is among its media types).
    pub json_body: bool,
    /// The request body's example (from its schema), when it has one.
    pub body_example: Option<Value>,
    pub secured: bool,
    /// The name of the operation's security scheme (`ApiKeyAuth`, `CarrierAuth`), if any.
    pub security_scheme: Option<String>,
    /// The scope the operation declares in `x-required-scopes` (the first; AgentMessage's
    /// operations each require one).
    pub required_scope: Option<String>,
    pub path_params: Vec<String>,
    /// Answers test keys only (`x-test-mode-only`); a live key gets 404.
    pub test_mode_only: bool,
    /// The operation's first tag (its resource, for grouping reports).
    pub tag: Option<String>,
    /// The operation's summary.
    pub summary: String,
}

impl Operation {
    pub fn documents(&self, status: u16) -> bool {
        self.responses.contains_key(&status)
    }
}

/// The whole spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub doc: Value,
    pub operations: Vec<Operation>,
    /// Responses any request may get (the root extension `x-common-responses`), by status.
    pub global: BTreeMap<u16, Documented>,
    /// The webhook event types the spec documents (the root extension `x-webhooks`).
    pub webhook_events: Vec<String>,
    /// `sha256:` and the hex SHA-256 of the spec's JSON as parsed (key order kept).
    pub digest: String,
}

fn codes_in(description: &str) -> Vec<String> {
    let re = Regex::new(r"`([A-Z][A-Z_]+)`:").expect("a valid pattern");
    re.captures_iter(description)
        .map(|c| c[1].to_owned())
        .collect()
}

fn documented(response: &Value, doc: &Value) -> Documented {
    let response = resolve(response, doc);
    let description = response["description"].as_str().unwrap_or_default();
    let content = response["content"].as_object();
    let (media_type, schema) = content
        .and_then(|c| c.iter().next())
        .map(|(media, body)| (Some(media.clone()), body.get("schema").cloned()))
        .unwrap_or((None, None));
    let required_headers = response["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter(|(_, header)| header["required"] == Value::Bool(true))
                .map(|(name, _)| name.to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    Documented {
        codes: codes_in(description),
        media_type,
        schema,
        required_headers,
        description: description.lines().next().unwrap_or_default().to_owned(),
    }
}

/// Follows a local `$ref` to a component.
fn resolve<'a>(value: &'a Value, doc: &'a Value) -> &'a Value {
    match value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        Some(pointer) => doc.pointer(pointer).unwrap_or(value),
        None => value,
    }
}

impl Spec {
    /// Reads a spec from a file path or an http(s) URL.
    pub fn load(source: &str, http: &reqwest::blocking::Client) -> anyhow::Result<Spec> {
        let text = if source.starts_with("http://") || source.starts_with("https://") {
            http.get(source)
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.text())
                .with_context(|| format!("fetching the spec from {source}"))?
        } else {
            std::fs::read_to_string(source).with_context(|| format!("reading the spec {source}"))?
        };
        let doc: Value = serde_json::from_str(&text).context("the spec is not JSON")?;
        Spec::parse(doc)
    }

    pub fn parse(doc: Value) -> anyhow::Result<Spec> {
        let mut operations = Vec::new();
        let paths = doc["paths"]
            .as_object()
            .ok_or_else(|| anyhow!("the spec has no paths"))?;
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let id = op["operationId"]
                    .as_str()
                    .ok_or_else(|| anyhow!("{method} {path} has no operationId"))?;
                let mut responses = BTreeMap::new();
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    let status: u16 = status
                        .parse()
                        .with_context(|| format!("{id}: status {status}"))?;
                    responses.insert(status, documented(response, &doc));
                }
                let path_params = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect();
                operations.push(Operation {
                    id: id.to_owned(),
                    method: method.to_uppercase(),
                    path: path.clone(),
                    responses,
                    has_body: op.get("requestBody").is_some(),
                    json_body: op["requestBody"]["content"]
                        .get("application/json")
                        .is_some(),
                    body_example: op["requestBody"]["content"]
                        .as_object()
                        .and_then(|c| c.values().next())
                        .map(|media| resolve(&media["schema"], &doc))
                        .and_then(|schema| schema.get("example").cloned()),
                    secured: op["security"].as_array().is_some_and(|s| !s.is_empty()),
                    security_scheme: op["security"][0]
                        .as_object()
                        .and_then(|s| s.keys().next().cloned()),
                    required_scope: op["x-required-scopes"][0].as_str().map(str::to_owned),
                    path_params,
                    test_mode_only: op["x-test-mode-only"] == Value::Bool(true),
                    tag: op["tags"][0].as_str().map(str::to_owned),
                    summary: op["summary"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        let mut global = BTreeMap::new();
        for (_, response) in doc["x-common-responses"].as_object().into_iter().flatten() {
            let found = documented(response, &doc);
            let status = found
                .codes
                .first()
                .and_then(|code| status_of_code(&doc, code));
            if let Some(status) = status {
                global.insert(status, found);
            }
        }
        let webhook_events = doc["x-webhooks"]
            .as_object()
            .map(|events| events.keys().cloned().collect())
            .unwrap_or_default();
        let digest = {
            use sha2::Digest;
            let hash = sha2::Sha256::digest(doc.to_string().as_bytes());
            format!(
                "sha256:{}",
                hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )
        };
        Ok(Spec {
            doc,
            operations,
            global,
            webhook_events,
            digest,
        })
    }

    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|op| op.id == id)
    }

    /// The schema of `property` of the component schema `schema`, with `allOf` wrappers and
    /// `$ref`s followed to the schema that holds its keywords.
    pub fn property(&self, schema: &str, property: &str) -> Value {
        self.resolve_schema(&self.doc["components"]["schemas"][schema]["properties"][property])
    }

    /// `schema` with `allOf` wrappers and `$ref`s followed to the schema that holds its keywords.
    pub fn resolve_schema(&self, schema: &Value) -> Value {
        let mut at = schema.clone();
        for _ in 0..8 {
            if let Some(first) = at["allOf"].get(0).cloned() {
                at = first;
            } else if at.get("$ref").is_some() {
                at = resolve(&at, &self.doc).clone();
            } else {
                break;
            }
        }
        at
    }

    /// A numeric keyword (`maxLength`, `minItems`, …) of a property, read from the spec.
    pub fn limit(&self, schema: &str, property: &str, keyword: &str) -> Option<u64> {
        self.property(schema, property)[keyword]
            .as_f64()
            .map(|n| n as u64)
    }

    /// Every error code the spec's `ErrorCode` schema lists.
    pub fn error_codes(&self) -> Vec<String> {
        self.doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    }

    /// The methods a path template has, as `Allow` should list them.
    pub fn methods_of(&self, path: &str) -> Vec<String> {
        let mut methods: Vec<String> = self
            .operations
            .iter()
            .filter(|op| op.path == path)
            .map(|op| op.method.clone())
            .collect();
        if methods.iter().any(|m| m == "GET") {
            methods.push("HEAD".into());
        }
        methods.sort();
        methods.dedup();
        methods
    }
}

/// The status an operation documents for `code`, found by searching every operation.
fn status_of_code(doc: &Value, code: &str) -> Option<u16> {
    let from_ops = doc["paths"]
        .as_object()?
        .values()
        .flat_map(|item| item.as_object().into_iter().flatten())
        .find_map(|(_, op)| {
            op["responses"]
                .as_object()?
                .iter()
                .find_map(|(status, response)| {
                    let description = resolve(response, doc)["description"].as_str()?;
                    codes_in(description)
                        .iter()
                        .any(|c| c == code)
                        .then(|| status.parse().ok())
                        .flatten()
                })
        });
    from_ops.or(match code {
        "INTERNAL_ERROR" => Some(500),
        "SERVICE_UNAVAILABLE" => Some(503),
        "NOT_FOUND" => Some(404),
        "METHOD_NOT_ALLOWED" => Some(405),
        "PAYLOAD_TOO_LARGE" => Some(413),
        "REQUEST_TIMEOUT" => Some(408),
        "URI_TOO_LONG" => Some(414),
        "HEADERS_TOO_LARGE" => Some(431),
        _ => None,
    })
}
