//! The documentation pages as people use them: Swagger UI at `/docs`, the Scalar reference at
//! `/reference` (rendered in headless Chromium with every request outside the server blocked),
//! and the TypeScript definitions at `/openapi.d.ts`.

use reqwest::Method;

use crate::{
    support::{json, Backend, TestApp},
    tools::{repo, tool_dir},
};

/// The page at `url` as headless Chromium leaves it after its scripts ran, with every host name
/// but the server's failing to resolve; `net_log` keeps the requests it made.
async fn rendered(
    url: &str,
    profile: &std::path::Path,
    net_log: Option<&std::path::Path>,
) -> String {
    let bin = tokio::task::spawn_blocking(|| tool_dir("chromium"))
        .await
        .unwrap();
    let mut command = tokio::process::Command::new(bin.join("chromium"));
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Every host name fails to resolve: nothing outside the server can load.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ));
    if let Some(log) = net_log {
        command.arg(format!("--log-net-log={}", log.display()));
    }
    let output = command
        .arg("--dump-dom")
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of every `<code>` element of a rendered page, markup removed and entities decoded.
fn code_blocks(dom: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = dom;
    while let Some(start) = rest.find("<code") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let Some(close) = after.find("</code>") else {
            break;
        };
        let inner = &after[open_end + 1..close];
        let mut text = String::new();
        let mut in_tag = false;
        for c in inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&nbsp;", " ")
            .replace("&amp;", "&");
        blocks.push(text);
        rest = &after[close + "</code>".len()..];
    }
    blocks
}

#[tokio::test]
async fn the_references_curl_sample_of_send_a_message_runs_as_shown_once_a_key_is_filled_in() {
    let app = TestApp::start(Backend::Sqlite).await;
    let demo = app.services.prepare_demo().await.expect("demo");
    let profile = tempfile::tempdir().unwrap();
    let dom = rendered(&format!("{}/reference", app.base), profile.path(), None).await;
    let sample = code_blocks(&dom)
        .into_iter()
        .find(|b| b.trim_start().starts_with("curl -X POST") && b.contains("/v1/messages\""))
        .unwrap_or_else(|| {
            panic!("no curl sample of the send operation in the page:\n{dom:.3000}")
        });
    // What the page shows: the key's placeholder and an Idempotency-Key.
    assert!(
        sample.contains("-H \"Authorization: Bearer am_live_…\""),
        "{sample}"
    );
    assert!(sample.contains("-H \"Idempotency-Key: "), "{sample}");
    // Pasted into a shell with a real key (and this test server's address), it sends.
    let pasted = sample
        .replace("am_live_…", &demo.key)
        .replace(agentmessage::api::SAMPLE_BASE_URL, &app.base);
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{} -s -w '\\n%{{http_code}}'", pasted.trim_end()))
        .output()
        .await
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, status) = stdout.rsplit_once('\n').unwrap_or_else(|| {
        panic!(
            "curl said {stdout:?} {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(status, "202", "{body}");
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON answer");
    assert_eq!(body["data"]["status"], json!("queued"));
    assert_eq!(body["data"]["to"], json!("+15554443333"));
}

#[tokio::test]
async fn swagger_ui_fills_in_the_keys_placeholder_so_its_samples_carry_it() {
    let app = TestApp::start(Backend::Sqlite).await;
    let page = app.call(Method::GET, "/docs", None, None).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page
        .text
        .contains(r#"ui.preauthorizeApiKey("ApiKeyAuth", "am_live_…")"#));
    assert!(page.text.contains("const ui = SwaggerUIBundle({"));
}

#[tokio::test]
async fn the_typescript_definitions_are_served_as_checked_in() {
    let app = TestApp::start(Backend::Sqlite).await;
    let reply = app.call(Method::GET, "/openapi.d.ts", None, None).await;
    assert_eq!(reply.status.as_u16(), 200);
    let checked_in = std::fs::read_to_string(repo().join("openapi/agentmessage.d.ts")).unwrap();
    assert_eq!(reply.text, checked_in);
    assert!(reply.text.contains("export interface paths"));
}

#[tokio::test]
async fn the_reference_renders_the_send_operation_with_a_curl_sample_and_nothing_from_outside() {
    let app = TestApp::start(Backend::Sqlite).await;
    let page = app.call(Method::GET, "/reference", None, None).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page
        .text
        .contains("<title>AgentMessage API reference</title>"));
    assert!(page.text.contains(r#""withDefaultFonts":false"#));

    let profile = tempfile::tempdir().unwrap();
    let net_log = profile.path().join("net-log.json");
    let dom = rendered(
        &format!("{}/reference", app.base),
        profile.path(),
        Some(&net_log),
    )
    .await;
    assert!(
        dom.contains("Send a message"),
        "no send operation in the page:\n{dom:.2000}"
    );
    assert!(dom.contains("curl"), "no curl sample in the page");
    assert!(dom.contains("/v1/messages"), "no send path in the page");

    // Every request the page made went to the server. (The browser's own background requests
    // carry no page origin as their initiator and are not the page's doing.)
    let log: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&net_log).expect("chromium wrote its net log"),
    )
    .expect("the net log is JSON");
    let mut by_page = std::collections::BTreeSet::new();
    let mut all = std::collections::BTreeSet::new();
    for event in log["events"].as_array().unwrap() {
        let Some(url) = event["params"]["url"].as_str() else {
            continue;
        };
        all.insert(url.to_owned());
        if event["params"]["initiator"].as_str() == Some(app.base.as_str()) {
            by_page.insert(url.to_owned());
        }
    }
    assert!(
        all.iter()
            .any(|u| u.starts_with(&format!("{}/reference", app.base))),
        "the net log does not show the page itself: {all:?}"
    );
    let outside: Vec<&String> = by_page
        .iter()
        .filter(|u| !u.starts_with(&app.base))
        .collect();
    assert!(outside.is_empty(), "the page asked for {outside:?}");
    let cdn: Vec<&String> = all
        .iter()
        .filter(|u| {
            ["scalar.com", "jsdelivr", "unpkg", "fonts."]
                .iter()
                .any(|h| u.contains(h))
        })
        .collect();
    assert!(cdn.is_empty(), "something asked a CDN for {cdn:?}");
}
