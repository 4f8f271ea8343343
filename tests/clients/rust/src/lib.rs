//! A Rust client for AgentMessage, generated at build time by progenitor from the checked-in
//! `openapi/openapi.json`, exactly as an integrator would generate one. The `clients` test of the
//! root package drives it against a running server.

progenitor::generate_api!(
    spec = "../../../openapi/openapi.json",
    interface = Builder,
    tags = Separate,
);

/// The HTTP client the generated one is built on, for callers that set default headers.
pub use reqwest;
