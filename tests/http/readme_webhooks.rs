//! The README's examples of verifying a webhook, in Python, TypeScript and Rust, each run with
//! its language's Standard Webhooks library (pinned in tests/tools) against a real delivery of
//! the server: they accept it, and refuse a changed body and another secret.

use std::{io::Write, process::Stdio, time::Duration};

use reqwest::Method;
use serde_json::{json, Value};

use crate::receiver::{Answer, Receiver};
use crate::support::{Backend, TestApp};
use crate::tools::{repo, run, tool_dir};

// README: rust begin
use standardwebhooks::Webhook;

/// Whether AgentMessage sent `body` with these headers.
pub fn verify_agentmessage(secret: &str, body: &[u8], headers: &http::HeaderMap) -> bool {
    Webhook::new(secret)
        .and_then(|webhook| webhook.verify(body, headers))
        .is_ok()
}
// README: rust end

/// The README's code block of `language` in the part about verifying deliveries.
fn readme_example(language: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let part = readme
        .split("**Verifying a delivery.**")
        .nth(1)
        .expect("the README explains verifying a delivery");
    let start = part
        .find(&format!("```{language}\n"))
        .unwrap_or_else(|| panic!("a {language} example"))
        + language.len()
        + 4;
    let length = part[start..].find("```").unwrap();
    part[start..start + length].to_owned()
}

/// A real delivery: the secret, the body and the headers as the receiver got them.
async fn a_delivery() -> (String, String, Value) {
    let app = TestApp::start_with(Backend::Sqlite, crate::webhooks::settings(true)).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let org = app.sender("+15551112222", "+12125550100").await;
    let (_, secret) =
        crate::webhooks::register(&app, &org.key, &receiver.url, &["message.sent"]).await;
    let _worker = crate::webhooks::run_worker(&app, true);
    app.call(
        Method::POST,
        "/v1/messages",
        Some(&org.key),
        Some(json!({"from": "+15551112222", "to": "+12125550100", "text": "verify me ✓"})),
    )
    .await
    .assert_success(202);
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    let headers = json!({
        "webhook-id": got[0].id,
        "webhook-timestamp": got[0].timestamp,
        "webhook-signature": got[0].signature,
    });
    (secret, got[0].body.clone(), headers)
}

/// The real delivery, the same with a changed body, and the same under another secret.
fn cases(secret: &str, body: &str, headers: &Value) -> Value {
    let other = agentmessage::domain::webhooks::new_secret();
    json!([
        {"secret": secret, "body": body, "headers": headers},
        {"secret": secret, "body": body.replace("verify me", "verify m3"), "headers": headers},
        {"secret": other, "body": body, "headers": headers},
    ])
}

/// Runs `program` with the cases on its standard input; its output, a JSON list of verdicts.
fn verdicts(
    program: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    cases: &Value,
) -> Value {
    let mut child = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_python_typescript_and_rust_examples_verify_a_real_delivery() {
    let (secret, body, headers) = a_delivery().await;
    let cases = cases(&secret, &body, &headers);
    let expected = json!([true, false, false]);

    // Python, with the PyPI package.
    let work = tempfile::tempdir().unwrap();
    let python = format!(
        "{}\n\nimport json, sys\nverdicts = []\nfor case in json.load(sys.stdin):\n    try:\n        verify_agentmessage(case['secret'], case['body'].encode(), case['headers'])\n        verdicts.append(True)\n    except Exception:\n        verdicts.append(False)\nprint(json.dumps(verdicts))\n",
        readme_example("python")
    );
    std::fs::write(work.path().join("verify.py"), python).unwrap();
    let bin = tool_dir("python");
    assert_eq!(
        verdicts(&bin.join("python"), &["verify.py"], work.path(), &cases),
        expected,
        "python"
    );

    // TypeScript, with the npm package, compiled by tsc --strict.
    let node = tool_dir("node");
    let dir = work.path();
    std::fs::write(dir.join("verify.ts"), readme_example("ts")).unwrap();
    std::fs::write(
        dir.join("main.ts"),
        "import { verifyAgentMessage } from \"./verify\";\n\
         let input = \"\";\n\
         process.stdin.on(\"data\", (d) => (input += d));\n\
         process.stdin.on(\"end\", () => {\n\
           const verdicts = JSON.parse(input).map((c: { secret: string; body: string; headers: Record<string, string> }) => {\n\
             try { verifyAgentMessage(c.secret, c.body, c.headers); return true; } catch { return false; }\n\
           });\n\
           process.stdout.write(JSON.stringify(verdicts));\n\
         });\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tsconfig.json"),
        r#"{"compilerOptions": {"strict": true, "module": "commonjs", "target": "es2022", "esModuleInterop": true, "types": ["node"], "outDir": "out"}, "files": ["main.ts", "verify.ts"]}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(
        repo().join("tests/tools/node_modules"),
        dir.join("node_modules"),
    )
    .unwrap();
    run(&node.join("tsc"), &["-p", "."], dir, &[]);
    assert_eq!(
        verdicts(std::path::Path::new("node"), &["out/main.js"], dir, &cases),
        expected,
        "typescript"
    );

    // Rust, with the crate: the function above is the README's, character for character.
    let source = std::fs::read_to_string(repo().join("tests/http/readme_webhooks.rs")).unwrap();
    let ours = source
        .split("// README: rust begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// README: rust end").next())
        .unwrap();
    assert_eq!(
        readme_example("rust"),
        ours,
        "the README's Rust example is the one tested here"
    );
    let rust: Vec<bool> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let mut headers = http::HeaderMap::new();
            for (name, value) in case["headers"].as_object().unwrap() {
                headers.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.as_str().unwrap().parse().unwrap(),
                );
            }
            verify_agentmessage(
                case["secret"].as_str().unwrap(),
                case["body"].as_str().unwrap().as_bytes(),
                &headers,
            )
        })
        .collect();
    assert_eq!(json!(rust), expected, "rust");
}
