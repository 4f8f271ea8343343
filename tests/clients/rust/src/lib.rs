//! A Rust client for AgentMessage, generated at build time by progenitor from the checked-in
//! `openapi/openapi.json` (`build.rs`: the operations an API client never calls and progenitor
//! cannot generate — a request body that is not JSON — are left out), as an integrator would
//! generate one. The `clients` test of the root package drives it against a running server.

include!(concat!(env!("OUT_DIR"), "/client.rs"));

/// The HTTP client the generated one is built on, for callers that set default headers.
pub use reqwest;
