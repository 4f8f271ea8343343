//! AgentMessage: an OpenAPI-first SMS/MMS messaging API server.

pub mod domain;
