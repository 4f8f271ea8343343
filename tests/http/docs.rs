//! The documentation pages as people use them: Swagger UI at `/docs`, the Scalar reference at
//! `/reference` (rendered in headless Chromium with every request outside the server blocked),
//! and the TypeScript definitions at `/openapi.d.ts`.

use reqwest::Method;

use crate::{
    support::{Backend, TestApp},
    tools::{repo, tool_dir},
};

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

    let bin = tokio::task::spawn_blocking(|| tool_dir("chromium"))
        .await
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let net_log = profile.path().join("net-log.json");
    let output = tokio::process::Command::new(bin.join("chromium"))
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
            profile.path().join("profile").display()
        ))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg("--dump-dom")
        .arg(format!("{}/reference", app.base))
        .kill_on_drop(true)
        .output()
        .await
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
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
