//! Generates the client from the checked-in `openapi/openapi.json` with progenitor, as an
//! integrator would, leaving out the operations an API client never calls and progenitor cannot
//! generate: those whose request body is not JSON (the MMS centre's `POST /v1/carrier/mm7`,
//! SOAP in `multipart/related`). Every other operation is generated as the spec has it.

use std::{env, fs, path::PathBuf};

fn main() {
    let spec_path = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../../openapi/openapi.json");
    println!("cargo:rerun-if-changed={}", spec_path.display());
    let mut spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&spec_path).expect("the checked-in spec"))
            .expect("the spec is JSON");
    let paths = spec["paths"].as_object_mut().expect("paths");
    for item in paths.values_mut() {
        let item = item.as_object_mut().expect("a path item");
        item.retain(|_, operation| {
            let content = &operation["requestBody"]["content"];
            content.is_null() || content.get("application/json").is_some()
        });
    }
    paths.retain(|_, item| !item.as_object().is_some_and(|i| i.is_empty()));
    let spec: openapiv3::OpenAPI = serde_json::from_value(spec).expect("an OpenAPI 3.0 spec");
    let mut settings = progenitor::GenerationSettings::new();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Separate);
    let tokens = progenitor::Generator::new(&settings)
        .generate_tokens(&spec)
        .expect("progenitor generates the client");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("client.rs");
    fs::write(out, tokens.to_string()).expect("the generated client is written");
}
