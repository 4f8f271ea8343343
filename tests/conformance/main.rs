//! The conformance suite against the real server: the `agentmessage` binary on an ephemeral port
//! with a fresh database, bootstrapped with the admin command line, checked by the suite alone
//! through HTTP. Also: the suite catches deliberately wrong servers, and the fault-only statuses
//! are proven by fault injection.

#[path = "../common/pg.rs"]
mod pg;
mod server;
#[allow(dead_code)]
#[path = "../common/tools.rs"]
mod tools;

mod cli;
mod faults;
mod liars;
mod prism;
mod real;
mod schemathesis;
