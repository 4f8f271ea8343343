//! openapi-python-client, with AgentMessage's one-line template override (453 parses as an error
//! envelope) and its configuration (the MMS centre's SOAP operation, in `multipart/related` and
//! `text/xml`, taken as raw bytes), generating a warning-free client that runs
//! `python/exercise.py`.

use std::path::Path;

use crate::{
    tools::{repo, run, tool_dir},
    Fixture,
};

#[test]
fn the_python_client_sends_reads_walks_pages_and_gets_typed_errors() {
    let bin = tool_dir("python");
    let python = bin.join("python");
    let work = tempfile::tempdir().unwrap();
    // The override includes the generator's own template from `upstream/`.
    let upstream = run(
        &python,
        &[
            "-c",
            "import openapi_python_client, os; print(os.path.join(os.path.dirname(openapi_python_client.__file__), 'templates'))",
        ],
        work.path(),
        &[],
    );
    let templates = work.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    let ours = repo().join("tests/clients/python/templates");
    for entry in std::fs::read_dir(&ours).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), templates.join(entry.file_name())).unwrap();
    }
    std::os::unix::fs::symlink(upstream.trim(), templates.join("upstream")).unwrap();

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let generated = work.path().join("generated");
    let spec = repo().join("openapi/openapi.json");
    let output = std::process::Command::new(bin.join("openapi-python-client"))
        .args(["generate", "--overwrite", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(&generated)
        .arg("--custom-template-path")
        .arg(&templates)
        .arg("--config")
        .arg(repo().join("tests/clients/python/config.yaml"))
        .env("PATH", &path)
        .current_dir(work.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the generator failed:\n{said}");
    assert!(
        !said.to_lowercase().contains("warning"),
        "the generator warned:\n{said}"
    );
    assert_generated_every_operation(&generated);

    let fixture = Fixture::start();
    let mut env: Vec<(&str, String)> = fixture.env();
    env.push(("PYTHONPATH", generated.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(
        &python,
        &[repo()
            .join("tests/clients/python/exercise.py")
            .to_str()
            .unwrap()],
        work.path(),
        &env,
    );
    assert!(out.contains("every check passed"), "{out}");
}

/// Every operation of the spec has its module in the generated client.
fn assert_generated_every_operation(generated: &Path) {
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("openapi/openapi.json")).unwrap(),
    )
    .unwrap();
    let mut missing = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            let tag = op["tags"][0].as_str().unwrap();
            let module = generated
                .join("agent_message_client/api")
                .join(snake(tag))
                .join(format!("{id}.py"));
            if !module.exists() {
                missing.push(module.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "not generated: {missing:?}");
}

/// `ApiKeys` → `api_keys`, as the generator names tag folders.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}
