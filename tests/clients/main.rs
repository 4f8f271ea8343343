//! Clients generated from the checked-in spec by generators this project did not write —
//! openapi-python-client, openapi-typescript with openapi-fetch, and progenitor — each send the
//! seed's example, read it back, walk two pages with a cursor and get typed 422 and 453 errors
//! from a running server. The generators are pinned (tests/tools) and installed by
//! `scripts/test-tools`.

#[allow(dead_code)]
#[path = "../conformance/server.rs"]
mod server;
#[path = "../common/tools.rs"]
mod tools;

mod python;
mod rust;
mod typescript;

/// The seed example's sender and recipient, and a recipient who never opted in.
pub const FROM: &str = "+15551112222";
pub const TO: &str = "+15554443333";
pub const NOT_OPTED_IN: &str = "+15554440000";

/// A running server whose organization owns [`FROM`] and has [`TO`] opted in.
pub struct Fixture {
    pub server: server::Server,
    pub key: String,
    _database: server::Database,
}

impl Fixture {
    pub fn start() -> Fixture {
        let database = server::Database::sqlite();
        let key = server::bootstrap(&database, 1000, 1000, FROM);
        let server = server::Server::start(&database);
        let opted_in = reqwest::blocking::Client::new()
            .put(format!("{}/v1/consents/{TO}", server.base_url))
            .bearer_auth(&key)
            .json(&serde_json::json!({"source": "web_form", "evidence": "client tests"}))
            .send()
            .unwrap();
        assert_eq!(opted_in.status(), 200, "{:?}", opted_in.text());
        Fixture {
            server,
            key,
            _database: database,
        }
    }

    /// What the client programs read from their environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BASE_URL", self.server.base_url.clone()),
            ("API_KEY", self.key.clone()),
            ("FROM", FROM.to_owned()),
            ("TO", TO.to_owned()),
            ("NOT_OPTED_IN", NOT_OPTED_IN.to_owned()),
        ]
    }
}
