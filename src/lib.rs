//! AgentMessage: an OpenAPI-first SMS/MMS messaging API server.
//!
//! A request flows one way: [`api`] (parse, authenticate, map to domain types) → [`service`]
//! (rules) → [`store`] (sea-orm) → the `entity` rows.

pub mod api;
pub mod config;
pub mod config_file;
pub mod connections;
pub mod defaults;
pub mod delivery;
pub mod domain;
pub mod ops;
pub mod server;
pub mod service;
pub mod store;

#[cfg(test)]
mod architecture;

pub use api::{api_service, app, spec_json, spec_yaml};
