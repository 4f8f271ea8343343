//! The checked-in spec is what the code generates, and tells the truth about its shapes.

use serde_json::Value;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
}

#[test]
fn the_checked_in_spec_matches_the_code() {
    let json = agentmessage::spec_json();
    let yaml = agentmessage::spec_yaml();
    let current = repo_file("openapi/openapi.json").trim_end() == json
        && repo_file("openapi/openapi.yaml") == yaml;
    if !current && std::env::var("AGENTMESSAGE_UPDATE_SPEC").is_ok() {
        std::fs::write(
            format!("{}/openapi/openapi.json", env!("CARGO_MANIFEST_DIR")),
            format!("{json}\n"),
        )
        .unwrap();
        std::fs::write(
            format!("{}/openapi/openapi.yaml", env!("CARGO_MANIFEST_DIR")),
            &yaml,
        )
        .unwrap();
        // Rewriting is not passing: the run that changed the files fails, so that a drift is
        // never green; review the change, commit openapi/ and run again.
        panic!("openapi/ was out of date and has been rewritten: review it (git diff openapi/), commit it and run the tests again");
    }
    assert!(
        current,
        "openapi/ is out of date: run `AGENTMESSAGE_UPDATE_SPEC=1 cargo test --test http spec`, review and commit openapi/"
    );
}

fn spec() -> Value {
    serde_json::from_str(&agentmessage::spec_json()).unwrap()
}

#[test]
fn every_operation_has_an_id_summary_description_one_tag_and_json_media_but_two() {
    let spec = spec();
    let mut ids = std::collections::HashSet::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "{id} repeats");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{id} summary"
            );
            assert!(
                op["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{id} description"
            );
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{id} tags");
            for (status, response) in op["responses"].as_object().unwrap() {
                let content = response["content"].as_object().unwrap();
                // Two answers are not JSON, by their nature: the MMS centre's SOAP, and an
                // inbound MMS's media bytes.
                let media = match (id, status.as_str()) {
                    ("carrier_mm7_create", "200" | "400" | "401" | "503") => "text/xml",
                    ("messages_media_view", "200") => "application/octet-stream",
                    _ => "application/json",
                };
                assert_eq!(content.keys().collect::<Vec<_>>(), [media], "{id} {status}");
                if media != "application/json" {
                    continue;
                }
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        content["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{id} {status}"
                    );
                }
            }
        }
    }
    assert!(ids.contains("messages_create"));
}

#[test]
fn an_api_key_is_required_unless_an_operation_says_otherwise_and_samples_carry_it() {
    let spec = spec();
    assert_eq!(spec["security"], serde_json::json!([{"ApiKeyAuth": []}]));
    assert_eq!(
        spec["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([])
    );
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let keyed = op["security"] == serde_json::json!([{"ApiKeyAuth": []}]);
            let sample = op["x-codeSamples"][0]["source"].as_str();
            assert_eq!(
                keyed,
                sample.is_some(),
                "{method} {path}: a sample exactly where a key is needed"
            );
            let Some(sample) = sample else { continue };
            assert!(
                sample.contains("-H \"Authorization: Bearer am_"),
                "{method} {path}: {sample}"
            );
            let idempotent = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "Idempotency-Key");
            assert_eq!(
                idempotent,
                sample.contains("-H \"Idempotency-Key: "),
                "{method} {path}: {sample}"
            );
            assert_eq!(
                op.get("requestBody").is_some(),
                sample.contains("  -d '"),
                "{method} {path}: {sample}"
            );
        }
    }
}

#[test]
fn every_schema_property_is_described_and_every_object_has_an_example() {
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        assert!(
            schema.get("description").is_some(),
            "schema {name} has no description"
        );
        if schema["type"] == "object" && !name.ends_with("Envelope") && !name.ends_with("List") {
            assert!(
                schema.get("example").is_some(),
                "schema {name} has no example"
            );
        }
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                property.get("description").is_some(),
                "{name}.{field} has no description"
            );
        }
    }
}

#[test]
fn request_schemas_forbid_unknown_fields_and_nullable_fields_are_required() {
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        if name.ends_with("Request") {
            assert_eq!(schema["additionalProperties"], Value::Bool(false), "{name}");
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if property["nullable"] == Value::Bool(true) {
                assert!(
                    required.contains(&field.as_str()),
                    "{name}.{field} is nullable but not required"
                );
            }
        }
    }
}

/// Keywords that limit a value.
const CONSTRAINTS: [&str; 11] = [
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

fn constrained_nodes(value: &Value, path: String, found: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            if CONSTRAINTS.iter().any(|k| map.contains_key(*k)) {
                found.push((path.clone(), value.clone()));
            }
            for (key, child) in map {
                constrained_nodes(child, format!("{path}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                constrained_nodes(child, format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The constraint keywords a domain rule publishes, by the schema name it is published under.
fn domain_rules() -> std::collections::BTreeMap<&'static str, Value> {
    use agentmessage::domain::rules::{LIST_RULES, RANGE_RULES, TEXT_RULES};
    let mut rules = std::collections::BTreeMap::new();
    for r in TEXT_RULES {
        let mut c = serde_json::Map::new();
        c.insert("pattern".into(), r.pattern.into());
        if r.min_chars > 0 {
            c.insert("minLength".into(), r.min_chars.into());
        }
        if let Some(max) = r.max_chars {
            c.insert("maxLength".into(), max.into());
        }
        rules.insert(r.name, Value::Object(c));
    }
    for r in LIST_RULES {
        let mut c = serde_json::Map::new();
        c.insert("minItems".into(), r.min_items.into());
        c.insert("maxItems".into(), r.max_items.into());
        if r.unique {
            c.insert("uniqueItems".into(), true.into());
        }
        rules.insert(r.name, Value::Object(c));
    }
    for r in RANGE_RULES {
        let mut c = serde_json::Map::new();
        c.insert("minimum".into(), (r.minimum as f64).into());
        if let Some(max) = r.maximum {
            c.insert("maximum".into(), (max as f64).into());
        }
        rules.insert(r.name, Value::Object(c));
    }
    rules
}

#[test]
fn every_limit_and_pattern_in_the_spec_is_a_domain_rule() {
    let spec = spec();
    let rules = domain_rules();
    let mut found = Vec::new();
    constrained_nodes(&spec, String::new(), &mut found);
    assert!(
        found.len() >= rules.len(),
        "the walk found too little: {found:?}"
    );
    let mut problems = Vec::new();
    for (path, node) in &found {
        let Some(name) = path
            .strip_prefix("/components/schemas/")
            .filter(|n| !n.contains('/'))
        else {
            problems.push(format!(
                "{path}: a limit or pattern outside a named rule schema"
            ));
            continue;
        };
        let Some(rule) = rules.get(name) else {
            problems.push(format!("{path}: no domain rule is named {name}"));
            continue;
        };
        let published: serde_json::Map<String, Value> = node
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| CONSTRAINTS.contains(&k.as_str()))
            .map(|(k, v)| {
                // Numbers compare as numbers, whatever their JSON spelling.
                let v = v
                    .as_f64()
                    .filter(|_| k.starts_with("min") || k.starts_with("max"))
                    .map_or(v.clone(), |f| {
                        if k == "minimum" || k == "maximum" {
                            Value::from(f)
                        } else {
                            Value::from(f as u64)
                        }
                    });
                (k.clone(), v)
            })
            .collect();
        if &Value::Object(published.clone()) != rule {
            problems.push(format!(
                "{path}: publishes {published:?}, the domain rule says {rule}"
            ));
        }
    }
    for name in rules.keys() {
        if spec["components"]["schemas"].get(*name).is_none() {
            problems.push(format!("the rule {name} is not published"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn integers_use_standard_formats() {
    let text = agentmessage::spec_json();
    for bad in ["uint32", "uint64", "int8", "uint8", "int16"] {
        assert!(
            !text.contains(&format!("\"{bad}\"")),
            "format {bad} is in the spec"
        );
    }
}

/// The checked-in spec passes redocly's `recommended` rules and spectral's `spectral:oas` with no
/// error and no warning (the linters pinned in tests/tools).
#[test]
fn the_spec_passes_redocly_and_spectral_without_a_warning() {
    use crate::tools::{repo, run, tool_dir};
    let bin = tool_dir("node");
    let quiet = [
        ("REDOCLY_TELEMETRY", "off"),
        ("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true"),
        ("NO_COLOR", "1"),
    ];
    let out = run(
        &bin.join("redocly"),
        &[
            "lint",
            "--extends=recommended",
            "--format=json",
            "openapi/openapi.json",
        ],
        repo(),
        &quiet,
    );
    let start = out.find('{').expect("redocly prints JSON");
    let report: Value = serde_json::from_str(&out[start..]).expect("redocly's JSON report");
    assert_eq!(
        (
            report["totals"]["errors"].as_u64(),
            report["totals"]["warnings"].as_u64()
        ),
        (Some(0), Some(0)),
        "redocly: {:#}",
        report["problems"]
    );
    let out = run(
        &bin.join("spectral"),
        &[
            "lint",
            "--ruleset",
            "tests/tools/.spectral.yaml",
            "--fail-severity=hint",
            "--format=json",
            "openapi/openapi.json",
        ],
        repo(),
        &quiet,
    );
    let start = out.find('[').unwrap_or(out.len());
    let problems = serde_json::Deserializer::from_str(&out[start..])
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or(Value::Null);
    assert_eq!(problems, Value::Array(vec![]), "spectral: {out}");
}

/// The layers depend one way: api → service → store → entity, with domain under all. The API
/// never names a row or the store, and the services re-export neither.
#[test]
fn the_api_never_touches_rows_or_the_store_and_services_re_export_neither() {
    let read_dir = |dir: &str| -> Vec<(String, String)> {
        std::fs::read_dir(crate::tools::repo().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect()
    };
    let api = read_dir("src/api");
    assert!(api.len() > 10, "src/api was not found");
    for (file, text) in &api {
        for forbidden in ["entity::", "use entity", "crate::store", "store::"] {
            assert!(!text.contains(forbidden), "{file} names {forbidden}");
        }
    }
    for (file, text) in read_dir("src/service") {
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("pub use"))
        {
            assert!(
                !line.contains("entity") && !line.contains("store"),
                "{file} re-exports: {line}"
            );
        }
        assert!(!text.contains("pub store"), "{file} exposes the store");
    }
}

/// Every operation that makes a resource links to the operations that read, change or delete
/// it (OpenAPI `links`, which clients and stateful testers walk); every link names an operation
/// of the spec and fills each of its path parameters.
#[test]
fn creating_operations_link_to_what_reads_changes_or_deletes_what_they_made() {
    let spec = spec();
    let mut operations = std::collections::HashMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for op in item.as_object().unwrap().values() {
            operations.insert(
                op["operationId"].as_str().unwrap().to_owned(),
                (path.clone(), op.clone()),
            );
        }
    }
    let links_of = |id: &str, status: &str| -> Vec<String> {
        let (_, op) = &operations[id];
        op["responses"][status]["links"]
            .as_object()
            .map(|l| {
                l.values()
                    .map(|v| v["operationId"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut targets = links_of("messages_create", "202");
    targets.sort();
    assert_eq!(
        targets,
        ["messages_cancel", "messages_events_list", "messages_view"]
    );
    let mut targets = links_of("webhook_endpoints_create", "201");
    targets.sort();
    assert_eq!(
        targets,
        [
            "webhook_deliveries_list",
            "webhook_endpoints_delete",
            "webhook_endpoints_get",
            "webhook_endpoints_rotate_secret",
            "webhook_endpoints_test",
            "webhook_endpoints_update"
        ]
    );
    assert_eq!(links_of("api_keys_create", "201"), ["api_keys_delete"]);
    assert_eq!(
        links_of("webhook_deliveries_list", "200"),
        ["webhook_deliveries_retry"]
    );
    let mut linked = 0;
    for (_, op) in operations.values() {
        for response in op["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, l)| l)
            {
                linked += 1;
                let target = link["operationId"].as_str().unwrap();
                let (path, _) = operations
                    .get(target)
                    .unwrap_or_else(|| panic!("no {target}"));
                assert!(link["description"].as_str().is_some_and(|d| !d.is_empty()));
                let params: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .collect();
                for p in params {
                    let expression = link["parameters"][p].as_str().unwrap_or_default();
                    assert!(
                        expression.starts_with("$response.body#/data/")
                            || expression.starts_with("$request.path."),
                        "{target}: {p} is filled by {expression:?}"
                    );
                }
            }
        }
    }
    assert_eq!(linked, 15);
}
