//! The pinned external tools some tests run (linters, client generators, a browser), installed
//! by `scripts/test-tools` from the lock files under `tests/tools/`. A missing tool fails the
//! test; it never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs `kind` (`node`, `python`, `chromium`) if needed and returns the directory of its
/// executables.
pub fn tool_dir(kind: &str) -> PathBuf {
    let output = Command::new(repo().join("scripts/test-tools"))
        .arg(kind)
        .output()
        .expect("scripts/test-tools runs");
    assert!(
        output.status.success(),
        "scripts/test-tools {kind} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Runs `program` with `args` in `dir` and returns its standard output; panics with both
/// outputs when it fails.
pub fn run(program: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{} could not start: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\n{stdout}\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
