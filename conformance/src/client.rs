//! The HTTP side: requests the suite sends and responses it reads, over plain HTTP only.

use std::{collections::BTreeMap, time::Duration};

use serde_json::Value;

/// Which credential a request carries.
#[derive(Debug, Clone)]
pub enum Auth {
    /// The key the suite was given.
    Main,
    /// No `Authorization` header.
    None,
    /// Another bearer token.
    Key(String),
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Raw {
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub auth: Auth,
    pub body: Body,
}

impl Request {
    pub fn new(method: &str, path: impl Into<String>) -> Request {
        Request {
            method: method.to_owned(),
            path: path.into(),
            auth: Auth::Main,
            body: Body::None,
        }
    }

    pub fn auth(mut self, auth: Auth) -> Request {
        self.auth = auth;
        self
    }

    pub fn json(mut self, body: Value) -> Request {
        self.body = Body::Json(body);
        self
    }

    pub fn raw(mut self, content_type: Option<&str>, bytes: impl Into<Vec<u8>>) -> Request {
        self.body = Body::Raw {
            content_type: content_type.map(str::to_owned),
            bytes: bytes.into(),
        };
        self
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// One response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub text: String,
    pub json: Option<Value>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }
}

/// The deployment under test.
pub struct Target {
    pub base_url: String,
    pub api_key: String,
    pub http: reqwest::blocking::Client,
}

impl Target {
    /// A target whose requests time out after the suite's default 10 seconds.
    pub fn new(base_url: &str, api_key: &str) -> anyhow::Result<Target> {
        Target::with_timeout(base_url, api_key, Duration::from_secs(10))
    }

    /// A target whose requests time out after `timeout`.
    pub fn with_timeout(
        base_url: &str,
        api_key: &str,
        timeout: Duration,
    ) -> anyhow::Result<Target> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()?;
        Ok(Target {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
        })
    }

    pub fn send(&self, request: &Request) -> anyhow::Result<Response> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
        let mut builder = self
            .http
            .request(method, format!("{}{}", self.base_url, request.path));
        match &request.auth {
            Auth::Main => builder = builder.bearer_auth(&self.api_key),
            Auth::Key(key) => builder = builder.bearer_auth(key),
            Auth::None => {}
        }
        match &request.body {
            Body::None => {}
            Body::Json(value) => {
                builder = builder
                    .header("content-type", "application/json")
                    .body(value.to_string())
            }
            Body::Raw {
                content_type,
                bytes,
            } => {
                if let Some(ct) = content_type {
                    builder = builder.header("content-type", ct);
                }
                builder = builder.body(bytes.clone());
            }
        }
        let response = builder.send()?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let text = response.text()?;
        let json = serde_json::from_str(&text).ok();
        Ok(Response {
            status,
            headers,
            text,
            json,
        })
    }
}
