//! The real binary set up and started by tests that run it as a deployment would: `migrate`, the
//! admin commands, a free port, and waiting for `/healthz`.

use std::process::Command;

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_agentmessage");

/// `agentmessage admin ARGS --database-url URL`: its one JSON object.
pub fn admin(url: &str, args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .arg("admin")
        .args(args)
        .args(["--database-url", url])
        .env("AGENTMESSAGE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A migrated database at `url` with an organization (a limit no test reaches), a key with
/// `scopes` and the number `number`; the key.
pub fn set_up(url: &str, scopes: &str, number: &str) -> String {
    let migrated = Command::new(BIN)
        .args(["migrate", "--database-url", url])
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let org = admin(
        url,
        &[
            "create-org",
            "--name",
            "deployment",
            "--rate-per-second",
            "100000",
            "--burst",
            "100000",
        ],
    );
    let org = org["id"].as_str().unwrap().to_owned();
    let key = admin(url, &["create-key", "--org", &org, "--scopes", scopes]);
    admin(url, &["add-number", "--org", &org, "--number", number]);
    key["key"].as_str().unwrap().to_owned()
}

/// A free port on the loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the server at `base` answers `/healthz`.
pub async fn up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}
