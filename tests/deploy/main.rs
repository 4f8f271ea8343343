//! The deployment files as an operator uses them: the systemd units pass `systemd-analyze
//! verify`, and the README's "Running in production" container commands, run as written, build
//! the image, bring up the compose stack (PostgreSQL, two API processes, a worker) and deliver a
//! message sent through one API process and read back through the other.

#[path = "../common/tools.rs"]
#[allow(dead_code)]
mod tools;

use std::process::Command;

use tools::{repo, tool_dir};

const BIN: &str = env!("CARGO_BIN_EXE_agentmessage");

/// Each unit, with its `ExecStart`/`ExecStartPre` pointed at the binary under test (verify checks
/// that the command exists), passes `systemd-analyze verify` without a word; a unit with a
/// mistake does not, so the check can fail.
#[test]
fn the_systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let verify = |path: &std::path::Path| {
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg(path)
            .output()
            .expect("systemd-analyze runs (Debian's systemd package)");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let mut units = 0;
    for entry in std::fs::read_dir(repo().join("deploy/systemd")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("/usr/local/bin/agentmessage "),
            "{}",
            path.display()
        );
        let unit = dir.path().join(path.file_name().unwrap());
        std::fs::write(&unit, text.replace("/usr/local/bin/agentmessage", BIN)).unwrap();
        assert_eq!(verify(&unit), (true, String::new()), "{}", path.display());
        // Every command line the unit runs is one the binary accepts.
        for line in text.lines() {
            let Some(command) = line
                .strip_prefix("ExecStart=")
                .or_else(|| line.strip_prefix("ExecStartPre="))
            else {
                continue;
            };
            let args: Vec<&str> = command.split_whitespace().skip(1).collect();
            let output = Command::new(BIN)
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{command}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        units += 1;
        let broken = dir.path().join("broken.service");
        std::fs::write(&broken, text.replace("Type=exec", "Type=sometimes")).unwrap();
        let (_, said) = verify(&broken);
        assert!(said.contains("Failed to parse service type"), "{said}");
    }
    assert_eq!(units, 2, "the API unit and the worker unit");
}

/// The `sh` blocks of the README's "With containers", in order, as one script.
fn readme_container_commands() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("### With containers")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("the README has a \"With containers\" section");
    let mut script = String::new();
    let mut inside = false;
    for line in section.lines() {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, line) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(
        script.contains("podman-compose -f deploy/compose.yaml up -d"),
        "{script}"
    );
    script
}

#[test]
fn the_readmes_container_commands_bring_up_a_stack_that_delivers() {
    let conf = tool_dir("containers").join("containers.conf");
    let written = readme_container_commands();
    // What differs here from an operator's machine, and nothing else: no registry (the Debian
    // base is made locally by scripts/test-tools) and the test build instead of the release build
    // (already built: cargo built it for this test).
    let debug = BIN
        .strip_prefix(&format!("{}/", repo().display()))
        .expect("the binary is under the checkout");
    let script: String = written
        .lines()
        .filter(|l| l.trim() != "cargo build --release")
        .map(|l| {
            l.replace(
                "docker.io/library/debian:bookworm-slim",
                "localhost/debian:bookworm",
            )
            .replace("target/release/agentmessage", debug)
            .replace("podman build ", "podman build --pull=never ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let down = || {
        let _ = Command::new("podman-compose")
            .args(["-f", "deploy/compose.yaml", "down"])
            .current_dir(repo())
            .env("CONTAINERS_CONF", &conf)
            .output();
        for (what, name) in [
            ("network", "deploy_default"),
            ("volume", "deploy_postgres-data"),
        ] {
            let _ = Command::new("podman")
                .args([what, "rm", "-f", name])
                .env("CONTAINERS_CONF", &conf)
                .output();
        }
    };
    down();
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(repo())
        .env("CONTAINERS_CONF", &conf)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let logs = Command::new("podman")
        .args(["logs", "--tail", "20", "deploy_worker_1"])
        .env("CONTAINERS_CONF", &conf)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    down();
    assert!(
        output.status.success(),
        "the README's commands failed:\n{stdout}\n{stderr}\nworker:\n{logs}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("delivered"),
        "the last command prints the message's status:\n{stdout}\nworker:\n{logs}"
    );
}
