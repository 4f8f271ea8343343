//! The checked-in spec is what the code generates, and tells the truth about its shapes.

use serde_json::Value;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
}

#[test]
fn the_checked_in_spec_matches_the_code() {
    let json = agentmessage::spec_json();
    let yaml = agentmessage::spec_yaml();
    if std::env::var("AGENTMESSAGE_UPDATE_SPEC").is_ok() {
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
    }
    assert!(
        repo_file("openapi/openapi.json").trim_end() == json && repo_file("openapi/openapi.yaml") == yaml,
        "openapi/ is out of date: run `AGENTMESSAGE_UPDATE_SPEC=1 cargo test --test http spec` and commit openapi/"
    );
}

fn spec() -> Value {
    serde_json::from_str(&agentmessage::spec_json()).unwrap()
}

#[test]
fn every_operation_has_an_id_summary_description_one_tag_and_json_media() {
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
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/json"],
                    "{id} {status}"
                );
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
    let send = &spec["components"]["schemas"]["SendMessageRequest"];
    assert_eq!(
        send["properties"]["to"]["pattern"],
        agentmessage::domain::phone::E164_PATTERN
    );
    assert_eq!(send["properties"]["text"]["maxLength"], 1600);
    let no_nul = agentmessage::domain::text::NO_NUL_PATTERN;
    for (schema, field) in [
        ("SendMessageRequest", "text"),
        ("SendMessageRequest", "tag"),
        ("OptInRequest", "evidence"),
        ("CreateApiKeyRequest", "name"),
    ] {
        assert_eq!(
            spec["components"]["schemas"][schema]["properties"][field]["pattern"], no_nul,
            "{schema}.{field}"
        );
    }
    assert_eq!(
        send["properties"]["media_urls"]["items"]["pattern"],
        agentmessage::domain::message::MEDIA_URL_PATTERN
    );
}
