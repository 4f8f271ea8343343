//! JSON Schema validation of response bodies against the spec's schemas, `$ref`s resolved.
//!
//! OpenAPI 3.0 schemas are not quite JSON Schema: `nullable: true` is turned into
//! `anyOf: [{"type": "null"}, …]` before validation.

use std::{collections::HashMap, sync::Mutex};

use serde_json::{json, Map, Value};

/// OpenAPI 3.0 schema → JSON Schema (2020-12).
pub fn to_json_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            let nullable = map.get("nullable") == Some(&Value::Bool(true));
            for (key, v) in map {
                match key.as_str() {
                    "nullable" | "example" | "discriminator" | "xml" | "externalDocs" => {}
                    "properties" | "patternProperties" => {
                        let props = v.as_object().map(|p| {
                            p.iter()
                                .map(|(k, s)| (k.clone(), to_json_schema(s)))
                                .collect::<Map<_, _>>()
                        });
                        out.insert(
                            key.clone(),
                            props.map(Value::Object).unwrap_or_else(|| v.clone()),
                        );
                    }
                    _ => {
                        out.insert(key.clone(), to_json_schema(v));
                    }
                }
            }
            if nullable {
                json!({"anyOf": [{"type": "null"}, Value::Object(out)]})
            } else {
                Value::Object(out)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Validators for the spec's schemas, compiled on first use.
pub struct Schemas {
    components: Value,
    compiled: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

impl Schemas {
    pub fn new(spec: &Value) -> Schemas {
        let components = to_json_schema(&spec["components"]);
        Schemas {
            components,
            compiled: Mutex::default(),
        }
    }

    /// The problems `instance` has against `schema` (a spec schema, usually a `$ref`).
    pub fn validate(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let key = schema.to_string();
        let validator = {
            let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = compiled.get(&key) {
                v.clone()
            } else {
                let mut root = to_json_schema(schema);
                if let Value::Object(map) = &mut root {
                    map.insert(
                        "$schema".into(),
                        json!("https://json-schema.org/draft/2020-12/schema"),
                    );
                    map.insert("components".into(), self.components.clone());
                }
                match jsonschema::options()
                    .should_validate_formats(true)
                    .build(&root)
                {
                    Ok(v) => {
                        let v = std::sync::Arc::new(v);
                        compiled.insert(key, v.clone());
                        v
                    }
                    Err(err) => return vec![format!("the spec's schema does not compile: {err}")],
                }
            }
        };
        validator
            .iter_errors(instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!(
                    "body{} {}",
                    if at.is_empty() { String::new() } else { at },
                    e
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_a_null_alternative() {
        let spec = json!({"components": {"schemas": {"A": {"type": "object", "required": ["tag"], "properties": {"tag": {"type": "string", "nullable": true, "maxLength": 3}}}}}});
        let schemas = Schemas::new(&spec);
        let a = json!({"$ref": "#/components/schemas/A"});
        assert!(schemas.validate(&a, &json!({"tag": null})).is_empty());
        assert!(schemas.validate(&a, &json!({"tag": "abc"})).is_empty());
        assert_eq!(schemas.validate(&a, &json!({"tag": "abcd"})).len(), 1);
        assert_eq!(schemas.validate(&a, &json!({})).len(), 1);
    }
}
