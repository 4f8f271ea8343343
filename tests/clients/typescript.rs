//! openapi-typescript and openapi-fetch: the checked-in `openapi/agentmessage.d.ts` is exactly
//! what openapi-typescript generates from the spec, compiles with `tsc --strict`, and types a
//! client that runs `typescript/exercise.ts` against a server.

use crate::{
    tools::{repo, run, tool_dir},
    Fixture,
};

/// How the checked-in definitions are generated (also in the README).
pub const GENERATE_ARGS: [&str; 3] = ["openapi/openapi.json", "--default-non-nullable", "false"];

#[test]
fn the_checked_in_typescript_definitions_are_what_openapi_typescript_generates() {
    let bin = tool_dir("node");
    let fresh = run(
        &bin.join("openapi-typescript"),
        &GENERATE_ARGS,
        repo(),
        &[("NO_COLOR", "1")],
    );
    let path = repo().join("openapi/agentmessage.d.ts");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != fresh && std::env::var("AGENTMESSAGE_UPDATE_SPEC").is_ok() {
        std::fs::write(&path, &fresh).unwrap();
        // Rewriting is not passing: review the change, commit it and run again.
        panic!("openapi/agentmessage.d.ts was out of date and has been rewritten: review it, commit it and run the tests again");
    }
    assert!(
        checked_in == fresh,
        "openapi/agentmessage.d.ts is out of date: run `AGENTMESSAGE_UPDATE_SPEC=1 cargo test --test clients`, review and commit it"
    );
}

#[test]
fn the_typescript_client_sends_reads_walks_pages_and_gets_typed_errors() {
    let bin = tool_dir("node");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    for file in ["exercise.ts", "tsconfig.json", "package.json"] {
        std::fs::copy(
            repo().join("tests/clients/typescript").join(file),
            dir.join(file),
        )
        .unwrap();
    }
    std::fs::copy(
        repo().join("openapi/agentmessage.d.ts"),
        dir.join("agentmessage.d.ts"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        repo().join("tests/tools/node_modules"),
        dir.join("node_modules"),
    )
    .unwrap();
    // `tsc --strict` (the tsconfig sets strict) over the exercise and the definitions.
    run(&bin.join("tsc"), &["-p", ".", "--strict"], dir, &[]);

    let fixture = Fixture::start();
    let env = fixture.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(
        std::path::Path::new("node"),
        &["out/exercise.js"],
        dir,
        &env,
    );
    assert!(out.contains("every check passed"), "{out}");
}
