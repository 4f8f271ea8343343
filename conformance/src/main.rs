//! `agentmessage-conformance`: see [`conformance::cli`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(conformance::cli::main_with(
        std::env::args_os(),
        &mut conformance::cli::Output::standard(),
    ))
}
