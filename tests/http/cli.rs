//! The command line: admin commands print one JSON object, `serve --demo` prints a working key.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_agentmessage");

fn run(args: &[&str], database_url: &str) -> Result<Value, String> {
    let output = Command::new(BIN)
        .args(args)
        .env("AGENTMESSAGE_DATABASE_URL", database_url)
        .env("AGENTMESSAGE_LOG", "warn")
        .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run agentmessage");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("one JSON object on stdout"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test]
async fn admin_commands_set_up_an_organization_that_can_send() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/admin.db", dir.path().display());
    let status = Command::new(BIN)
        .args(["migrate", "--database-url", &url])
        .status()
        .unwrap();
    assert!(status.success());

    let org = run(
        &[
            "admin",
            "create-org",
            "--name",
            "Acme",
            "--rate-per-second",
            "5",
            "--burst",
            "5",
        ],
        &url,
    )
    .unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let key = run(
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--scopes",
            "messages:send,consents:write",
        ],
        &url,
    )
    .unwrap();
    assert!(key["key"].as_str().unwrap().starts_with("am_live_"));
    let number = run(
        &[
            "admin",
            "add-number",
            "--org",
            &org_id,
            "--number",
            "+15551112222",
        ],
        &url,
    )
    .unwrap();
    assert_eq!(number["phone_number"], "+15551112222");

    // Refusals are errors with a reason, not JSON.
    let err = run(
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--scopes",
            "messages:send,messages:delete",
        ],
        &url,
    )
    .unwrap_err();
    assert!(err.contains("unknown scope \"messages:delete\""), "{err}");
    // The error names every scope there is.
    assert!(
        err.contains("the scopes are messages:send, messages:read, consents:read, consents:write, lookups:read, lookups:write, numbers:read, api_keys:read, api_keys:write, webhooks:read, webhooks:write"),
        "{err}"
    );
    let all = run(
        &["admin", "create-key", "--org", &org_id, "--scopes", "all"],
        &url,
    )
    .unwrap();
    assert_eq!(all["scopes"].as_array().map(Vec::len), Some(11), "{all}");
    let err = run(
        &[
            "admin",
            "add-number",
            "--org",
            &org_id,
            "--number",
            "5551112222",
        ],
        &url,
    )
    .unwrap_err();
    assert!(err.contains("E.164"), "{err}");
    let other = run(&["admin", "create-org", "--name", "Other"], &url).unwrap();
    let err = run(
        &[
            "admin",
            "add-number",
            "--org",
            other["id"].as_str().unwrap(),
            "--number",
            "+15551112222",
        ],
        &url,
    )
    .unwrap_err();
    assert!(err.contains("owned by another organization"), "{err}");

    // The key works against a server on the same database, until it is revoked.
    let store = agentmessage::store::Store::connect(&url).await.unwrap();
    let services = agentmessage::service::Services::new(store, Default::default());
    let acceptor = {
        use poem::listener::{Listener, TcpListener};
        TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap()
    };
    use poem::listener::Acceptor;
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(agentmessage::app(services)));
    let client = reqwest::Client::new();
    let secret = key["key"].as_str().unwrap();
    let put = client
        .put(format!("http://{addr}/v1/consents/+15554443333"))
        .bearer_auth(secret)
        .json(&serde_json::json!({"source": "import"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let send = || {
        client
            .post(format!("http://{addr}/v1/messages"))
            .bearer_auth(secret)
            .json(&serde_json::json!({"from": "+15551112222", "to": "+15554443333", "text": "hi"}))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 202);
    let revoked = run(
        &[
            "admin",
            "revoke-key",
            "--key-id",
            key["id"].as_str().unwrap(),
        ],
        &url,
    )
    .unwrap();
    assert!(revoked["revoked_at"].as_str().unwrap().ends_with('Z'));
    // The server caches the keys it has seen; a revocation made elsewhere reaches it within a
    // second.
    let at = std::time::Instant::now();
    while send().await.unwrap().status() != 401 {
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "still accepted after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn admin_lists_removes_and_sets_limits_quietly_and_completes_commands() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/admin.db", dir.path().display());
    // With the default log settings, an admin command prints its JSON and nothing else.
    let output = Command::new(BIN)
        .args([
            "admin",
            "create-org",
            "--name",
            "Acme",
            "--database-url",
            &url,
        ])
        .env_remove("AGENTMESSAGE_LOG")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "an admin command logged"
    );
    let org: Value = serde_json::from_slice(&output.stdout).unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let listed = run(&["admin", "list-orgs"], &url).unwrap();
    assert_eq!(
        listed["organizations"],
        serde_json::json!([{"id": org_id, "name": "Acme", "rate_per_second": 10, "burst": 20}])
    );
    let made = run(
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--scopes",
            "messages:read",
            "--name",
            "reader",
        ],
        &url,
    )
    .unwrap();
    run(
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--scopes",
            "all",
            "--test",
        ],
        &url,
    )
    .unwrap();
    let keys = run(&["admin", "list-keys", "--org", &org_id], &url).unwrap();
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["id"], made["id"]);
    assert_eq!(keys[0]["name"], "reader");
    assert_eq!(keys[0]["mode"], "live");
    assert_eq!(keys[0]["scopes"], serde_json::json!(["messages:read"]));
    assert_eq!(keys[1]["mode"], "test");
    // Never the secret: only its shown prefix.
    let secret = made["key"].as_str().unwrap();
    assert!(secret.starts_with(keys[0]["prefix"].as_str().unwrap()));
    assert!(!serde_json::to_string(keys).unwrap().contains(secret));
    run(
        &[
            "admin",
            "add-number",
            "--org",
            &org_id,
            "--number",
            "+15551112222",
        ],
        &url,
    )
    .unwrap();
    run(
        &[
            "admin",
            "add-number",
            "--org",
            &org_id,
            "--number",
            "+15551113333",
        ],
        &url,
    )
    .unwrap();
    let numbers = run(&["admin", "list-numbers", "--org", &org_id], &url).unwrap();
    let listed: Vec<&str> = numbers["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["+15551112222", "+15551113333"]);
    let removed = run(
        &[
            "admin",
            "remove-number",
            "--org",
            &org_id,
            "--number",
            "+15551112222",
        ],
        &url,
    )
    .unwrap();
    assert_eq!(removed, serde_json::json!({"removed": "+15551112222"}));
    let numbers = run(&["admin", "list-numbers", "--org", &org_id], &url).unwrap();
    assert_eq!(numbers["numbers"].as_array().unwrap().len(), 1);
    let err = run(
        &[
            "admin",
            "remove-number",
            "--org",
            &org_id,
            "--number",
            "+15551112222",
        ],
        &url,
    )
    .unwrap_err();
    assert!(err.contains("does not own +15551112222"), "{err}");
    let limited = run(
        &[
            "admin",
            "set-rate-limit",
            "--org",
            &org_id,
            "--rate-per-second",
            "5",
            "--burst",
            "9",
        ],
        &url,
    )
    .unwrap();
    assert_eq!(
        (
            limited["rate_per_second"].as_u64(),
            limited["burst"].as_u64()
        ),
        (Some(5), Some(9))
    );
    let err = run(
        &[
            "admin",
            "set-rate-limit",
            "--org",
            &uuid::Uuid::now_v7().to_string(),
            "--rate-per-second",
            "5",
            "--burst",
            "9",
        ],
        &url,
    )
    .unwrap_err();
    assert!(err.contains("no organization"), "{err}");
    // Completion scripts name the commands.
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("set-rate-limit") && script.contains("list-keys"),
            "{shell}"
        );
    }
    let bash = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bash.stdout)?;
            child.wait()
        })
        .unwrap();
    assert!(
        checked.success(),
        "the bash completion script does not parse"
    );
}

#[test]
fn spec_needs_no_database_and_prints_the_published_document() {
    let output = Command::new(BIN)
        .arg("spec")
        .env("AGENTMESSAGE_DATABASE_URL", "postgres://nowhere.invalid/x")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim_end(),
        agentmessage::spec_json()
    );
    let output = Command::new(BIN).args(["spec", "--yaml"]).output().unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        agentmessage::spec_yaml()
    );
}

#[tokio::test]
async fn serve_demo_prints_its_banner_last_and_covers_sends_test_mode_and_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The log's defaults: no AGENTMESSAGE_LOG, stderr not a terminal.
    let mut child = crate::child::Reaped(
        Command::new(BIN)
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env_remove("AGENTMESSAGE_DATABASE_URL")
            .env_remove("AGENTMESSAGE_LOG")
            .env_remove("AGENTMESSAGE_LOG_FORMAT")
            .env_remove("AGENTMESSAGE_SECRET_KEY")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.stdout.take().unwrap();
    // Everything up to the banner's closing rule.
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        let mut rules = 0;
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| {
                if l.starts_with("=====") {
                    rules += 1;
                }
                rules < 2
            })
            .collect()
    })
    .await
    .unwrap();
    let banner = lines.join("\n");
    let key_of = |label: &str| {
        lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {label} key in:\n{banner}"))
            .to_owned()
    };
    let live = key_of("live: ");
    let test = key_of("test: ");
    assert!(
        live.starts_with("am_live_") && test.starts_with("am_test_"),
        "{banner}"
    );
    for wanted in [
        format!("http://127.0.0.1:{port}/reference"),
        format!("http://127.0.0.1:{port}/docs"),
        "README".to_owned(),
    ] {
        assert!(
            banner.contains(&wanted),
            "the banner does not point to {wanted}:\n{banner}"
        );
    }
    // The curl command, as printed (several lines joined by backslashes), run by a shell.
    let start = lines
        .iter()
        .position(|l| l.starts_with("curl "))
        .expect("a curl command");
    let end = start
        + lines[start..]
            .iter()
            .position(|l| !l.ends_with('\\'))
            .unwrap();
    let curl = lines[start..=end].join("\n");
    assert!(
        curl.contains(&live) && curl.contains("Idempotency-Key") && curl.contains("order-7421"),
        "{curl}"
    );
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("{curl} -s -w '\\n%{{http_code}}'"))
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.ends_with("\n202"),
        "the printed curl command answered {stdout}"
    );
    assert!(
        dir.path().join("agentmessage.db").exists(),
        "the default database is created in the working directory"
    );
    // Webhooks work: the demo made its secret key, once, readable by its owner only.
    let secret_file = dir.path().join("agentmessage.db.secret-key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let made = client
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(&live)
        .json(&serde_json::json!({"url": "https://1.1.1.1/agentmessage-hooks", "events": ["consent.updated"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    // The test key sends in test mode.
    let sent = client
        .post(format!("{base}/v1/messages"))
        .bearer_auth(&test)
        .json(
            &serde_json::json!({"from": "+15551112222", "to": "+15554443333", "text": "test mode"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    // SIGTERM: a line says it stops, and one that it stopped.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let _ = child.wait();
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a log that is not a terminal:\n{stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains("applying migration"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("database schema up to date").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("stopping: no new connections"), "{stderr}");
    assert!(stderr.contains("AgentMessage stopped"), "{stderr}");
    // A second start keeps the secret key and mints new keys.
    let again = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(again.trim().len(), 44);
}

#[test]
fn migrations_started_together_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/race.db", dir.path().display());
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(BIN)
                .args(["migrate", "--database-url", &url])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let org = run(&["admin", "create-org", "--name", "after the race"], &url).unwrap();
    assert!(org["id"].is_string());
}

#[tokio::test]
async fn postgres_migrations_started_together_apply_once() {
    let url = crate::support::fresh_postgres_database().await;
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(agentmessage::store::Store::connect(&url).await.unwrap());
    }
    for result in futures_util::future::join_all(stores.iter().map(|s| s.migrate())).await {
        result.unwrap();
    }
    let services = agentmessage::service::Services::new(stores.remove(0), Default::default());
    services
        .create_organization("after the race", 1, 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_separate_worker_process_delivers_what_an_api_only_server_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/split.db", dir.path().display());
    let org = run(&["admin", "create-org", "--name", "split"], &url).unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let key = run(
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--scopes",
            "messages:send,messages:read,consents:write",
        ],
        &url,
    )
    .unwrap();
    run(
        &[
            "admin",
            "add-number",
            "--org",
            &org_id,
            "--number",
            "+15551112222",
        ],
        &url,
    )
    .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawn = |args: &[&str]| {
        crate::child::Reaped(
            Command::new(BIN)
                .args(args)
                .env("AGENTMESSAGE_DATABASE_URL", &url)
                .env("AGENTMESSAGE_LOG", "warn")
                .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut server = spawn(&[
        "serve",
        "--no-worker",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server starts");
    let opted_in = client
        .put(format!("{base}/v1/consents/+12125550111"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"source": "api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(opted_in.status(), 200, "the opt-in is recorded");
    let sent: Value = client
        .post(format!("{base}/v1/messages"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"from": "+15551112222", "to": "+12125550111", "text": "split"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sent["data"]["id"].as_str().unwrap().to_owned();
    let status = || async {
        let body: Value = client
            .get(format!("{base}/v1/messages/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["status"].as_str().unwrap().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status().await,
        "queued",
        "an API-only server delivers nothing"
    );
    let mut worker = spawn(&["worker"]);
    let mut last = String::new();
    for _ in 0..100 {
        last = status().await;
        if last == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = worker.kill();
    let _ = server.kill();
    let _ = worker.wait();
    let _ = server.wait();
    assert_eq!(last, "delivered");
}

#[test]
fn sqlite_files_are_created_for_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let url = format!("sqlite://{}", path.display());
    let output = Command::new(BIN)
        .args(["migrate", "--database-url", &url])
        .env("AGENTMESSAGE_LOG", "warn")
        .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database file is {mode:o}");
    for journal in ["private.db-wal", "private.db-shm"] {
        if let Ok(meta) = std::fs::metadata(dir.path().join(journal)) {
            assert_eq!(
                meta.permissions().mode() & 0o077,
                0,
                "{journal} is readable by others"
            );
        }
    }
}

#[test]
fn serve_says_it_listens_only_once_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/busy.db", dir.path().display());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::new(BIN)
        .args([
            "serve",
            "--no-worker",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &url,
        ])
        .env("AGENTMESSAGE_LOG", "info")
        .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "serve started on a taken port: {said}"
    );
    assert!(!said.contains("AgentMessage listening"), "{said}");
    assert!(
        said.contains(&port.to_string()),
        "the error does not name the address: {said}"
    );
}

/// A running SQLite server has the key cached; `admin revoke-key`, another process, revokes it:
/// the server refuses it within a second.
#[tokio::test]
async fn a_key_revoked_by_the_command_line_is_refused_by_a_running_server_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/revoke.db", dir.path().display());
    let org = run(&["admin", "create-org", "--name", "revoke"], &url).unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let key = run(
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--scopes",
            "numbers:read",
        ],
        &url,
    )
    .unwrap();
    let (key_id, key) = (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap().to_owned(),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = crate::child::Reaped(
        Command::new(BIN)
            .args([
                "serve",
                "--no-worker",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("AGENTMESSAGE_DATABASE_URL", &url)
            .env("AGENTMESSAGE_LOG", "warn")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let numbers = || {
        client
            .get(format!("http://127.0.0.1:{port}/v1/numbers"))
            .bearer_auth(&key)
            .send()
    };
    let mut status = 0;
    for _ in 0..100 {
        if let Ok(r) = numbers().await {
            status = r.status().as_u16();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the key works (and is now cached)");
    assert_eq!(numbers().await.unwrap().status(), 200);
    let revoked = run(&["admin", "revoke-key", "--key-id", &key_id], &url).unwrap();
    let at = std::time::Instant::now();
    assert!(revoked["revoked_at"].is_string());
    loop {
        let status = numbers().await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "still accepted after {:?}",
            at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = at.elapsed();
    let _ = server.kill();
    let _ = server.wait();
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// A database URL's password never reaches the output, an unsupported scheme fails at once
/// naming the supported ones, and a failed connection says why.
#[tokio::test]
async fn database_urls_fail_with_their_cause_and_without_their_password() {
    let fail = |url: String| {
        let started = std::time::Instant::now();
        let output = Command::new(BIN)
            .args([
                "migrate",
                "--database-url",
                &url,
                "--db-startup-retry",
                "1s",
            ])
            .env("AGENTMESSAGE_LOG", "info")
            .output()
            .expect("run agentmessage");
        assert!(!output.status.success(), "{url}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains("hunter2pw"), "the password is shown: {text}");
        (text, started.elapsed())
    };
    let (text, took) = fail("mysql://app:hunter2pw@127.0.0.1/app".into());
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(
        text.contains("unsupported database URL mysql://app:***@127.0.0.1/app")
            && text.contains("sqlite://")
            && text.contains("postgres://"),
        "{text}"
    );
    let (text, _) = fail("postgres://app:hunter2pw@127.0.0.1:1/app".into());
    assert!(
        text.contains("postgres://app:***@127.0.0.1:1/app"),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    let server = std::env::var("AGENTMESSAGE_TEST_POSTGRES_URL")
        .expect("AGENTMESSAGE_TEST_POSTGRES_URL: run under scripts/with-postgres");
    let unknown = server
        .replacen("postgres://postgres@", "postgres://postgres:hunter2pw@", 1)
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/no_such_database"))
        .unwrap();
    let (text, _) = fail(unknown);
    assert!(
        text.contains("database \"no_such_database\" does not exist"),
        "{text}"
    );
}

/// `config show` with `args`, the environment cleared of AgentMessage's variables but `env`:
/// each setting's `(value, source)`.
fn config_show(
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<std::collections::BTreeMap<String, (String, String)>, String> {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("AGENTMESSAGE_") {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["config", "show"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run agentmessage");
    if !output.status.success() {
        return Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (name, rest) = line.split_once(" = ").expect("name = value  # source");
            let (value, source) = rest.rsplit_once("  # ").expect("a source");
            (name.to_owned(), (value.to_owned(), source.to_owned()))
        })
        .collect())
}

/// The README's example file holds every setting: loaded, each comes from it, but the ten that
/// have no default (written there commented out); and `config show` lists every flag of `serve`
/// that has an environment variable.
#[test]
fn the_example_configuration_file_holds_every_setting() {
    let example = crate::tools::repo().join("deploy/agentmessage.example.toml");
    let shown = config_show(&["--config", example.to_str().unwrap()], &[]).unwrap();
    let not_from_file: Vec<&str> = shown
        .iter()
        .filter(|(_, (_, source))| source != "file")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        not_from_file,
        [
            "carrier_secret",
            "mm7_inbound_password",
            "mm7_inbound_username",
            "mm7_password",
            "mm7_tls_ca",
            "mm7_url",
            "mms_carrier",
            "secret_key",
            "smpp_address",
            "smpp_tls_ca",
        ]
    );
    let text = std::fs::read_to_string(&example).unwrap();
    for name in not_from_file {
        let local = ["smpp_", "mm7_"]
            .iter()
            .find_map(|table| name.strip_prefix(table))
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# {local} = ")),
            "{name} is not in the example"
        );
    }
    // Every flag of serve with an environment variable is a setting shown.
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let envs = regex::Regex::new(r"\[env: (AGENTMESSAGE_[A-Z0-9_]+)").unwrap();
    let mut count = 0;
    for found in envs.captures_iter(&help) {
        let env = &found[1];
        if matches!(env, "AGENTMESSAGE_CONFIG" | "AGENTMESSAGE_LOG_FORMAT") {
            continue;
        }
        let name = env.trim_start_matches("AGENTMESSAGE_").to_lowercase();
        assert!(shown.contains_key(&name), "{env} is not shown");
        count += 1;
    }
    assert!(count > 70, "only {count} settings found in serve --help");
}

/// The connections example is read as written: each connection's settings and each route are
/// shown, a password from its environment variable masked; a setting a kind does not take stops
/// `config show` and `serve` before they start, naming it.
#[test]
fn the_connections_example_is_shown_and_a_wrong_connection_refused() {
    let example = crate::tools::repo().join("deploy/connections.example.toml");
    let shown = config_show(
        &["--config", example.to_str().unwrap()],
        &[("AGENTMESSAGE_CONNECTION_EU_SMSC_PASSWORD", "s3cret")],
    )
    .unwrap();
    let at = |name: &str| shown.get(name).cloned().unwrap_or_default();
    assert_eq!(
        at("connections.eu-smsc.kind"),
        ("\"smpp\"".into(), "file".into())
    );
    assert_eq!(
        at("connections.eu-smsc.throughput"),
        ("100".into(), "file".into())
    );
    assert_eq!(
        at("connections.eu-smsc.password"),
        ("\"***\"".into(), "env".into())
    );
    assert_eq!(
        at("routes.1"),
        ("\"sms +44 -> eu-smsc, global-smsc\"".into(), "file".into())
    );
    assert_eq!(
        at("routes.4"),
        ("\"mms every recipient -> mmsc\"".into(), "file".into())
    );
    assert_eq!(at("failover_after"), ("\"30s\"".into(), "file".into()));
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        "[connections.a]\nkind = \"simulated\"\nwindow = 3\n[[routes]]\nchannel = \"sms\"\nconnections = [\"a\"]\n",
    )
    .unwrap();
    let err = config_show(&["--config", wrong.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        err.contains("window is not a setting of a simulated connection"),
        "{err}"
    );
    let db = format!("sqlite://{}/wrong.db", dir.path().display());
    let serve = Command::new(BIN)
        .args([
            "serve",
            "--config",
            wrong.to_str().unwrap(),
            "--database-url",
            &db,
        ])
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!serve.status.success());
    assert!(
        String::from_utf8_lossy(&serve.stderr).contains("window is not a setting"),
        "{}",
        String::from_utf8_lossy(&serve.stderr)
    );
}

/// One precedence rule: a flag, then the environment, then the file, then the default; secrets
/// and database passwords are masked; a name that is no setting stops the process before it
/// starts, naming it; and `serve` runs with what the file says.
#[tokio::test]
async fn flags_win_over_the_environment_over_the_file_over_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agentmessage.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = format!("sqlite://{}/from-file.db", dir.path().display());
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nops_listen = \"127.0.0.1:0\"\npoll = \"250ms\"\nlease = \"40s\"\n[smpp]\npassword = \"s3cret-from-file\"\n"
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let shown = config_show(
        &["--config", path, "--lease", "5s"],
        &[
            ("AGENTMESSAGE_POLL", "1s"),
            ("AGENTMESSAGE_CARRIER_SECRET", "c4rrier"),
        ],
    )
    .unwrap();
    let at = |name: &str| shown[name].clone();
    assert_eq!(at("lease"), ("\"5s\"".into(), "flag".into()));
    assert_eq!(at("poll"), ("\"1s\"".into(), "env".into()));
    assert_eq!(
        at("listen"),
        (format!("\"127.0.0.1:{port}\""), "file".into())
    );
    assert_eq!(at("retry_backoff"), ("\"5s\"".into(), "default".into()));
    assert_eq!(at("smpp_password"), ("\"***\"".into(), "file".into()));
    assert_eq!(at("carrier_secret"), ("\"***\"".into(), "env".into()));
    let text = shown.values().map(|(v, _)| v.as_str()).collect::<String>();
    assert!(
        !text.contains("s3cret") && !text.contains("c4rrier"),
        "{text}"
    );
    // Named by the environment too.
    let shown = config_show(&[], &[("AGENTMESSAGE_CONFIG", path)]).unwrap();
    assert_eq!(shown["poll"], ("\"250ms\"".into(), "file".into()));
    // A misspelt setting.
    std::fs::write(dir.path().join("bad.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let refused = Command::new(BIN)
        .args(["serve", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("lisen is not a setting"), "{said}");
    // serve listens where the file says, on the file's database.
    let mut server = crate::child::Reaped(
        Command::new(BIN)
            .args(["serve", "--config", path])
            .env_remove("AGENTMESSAGE_DATABASE_URL")
            .env_remove("AGENTMESSAGE_LISTEN")
            .env_remove("AGENTMESSAGE_OPS_LISTEN")
            .env("AGENTMESSAGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = server.0.kill();
    assert!(up, "serve did not listen where its file says");
    assert!(dir.path().join("from-file.db").exists());
}
