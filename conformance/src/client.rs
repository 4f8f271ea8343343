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
    /// HTTP Basic (the MMS centre's credentials): user name and password.
    Basic(String, String),
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
    /// More headers to send.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn new(method: &str, path: impl Into<String>) -> Request {
        Request {
            method: method.to_owned(),
            path: path.into(),
            auth: Auth::Main,
            body: Body::None,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_owned(), value.into()));
        self
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

impl Target {
    /// Sends a request whose body stops after two of its declared ten bytes, over a plain TCP
    /// connection, and reads what the server answers within `wait`.
    pub fn send_stalled_body(&self, path: &str, wait: Duration) -> anyhow::Result<Response> {
        let request = Request::new("POST", path)
            .header("content-length", "10")
            .raw(Some("application/json"), "{}");
        let started = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let clock = std::time::Instant::now();
        let response = self.stall(path, wait);
        self.keep(vec![Exchange {
            request,
            started,
            duration: clock.elapsed(),
            response: response.as_ref().map_err(|e| format!("{e:#}")).cloned(),
            simultaneous: false,
        }]);
        response
    }

    /// Sends a request that declares a body of `declared` bytes and sends none of it, over a
    /// plain TCP connection, and reads what the server answers within `wait` (a server that
    /// checks the declared length answers before reading the body; with nothing unread, its
    /// close cannot reset the connection before the answer is read).
    pub fn send_declared_too_large(
        &self,
        path: &str,
        content_type: &str,
        declared: u64,
        wait: Duration,
    ) -> anyhow::Result<Response> {
        let request = Request::new("POST", path)
            .auth(Auth::None)
            .header("content-length", declared.to_string())
            .raw(Some(content_type), Vec::new());
        let started = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let clock = std::time::Instant::now();
        let head = format!("Content-Type: {content_type}\r\nContent-Length: {declared}\r\n");
        let response = self.raw_post(path, &head, &[], wait);
        self.keep(vec![Exchange {
            request,
            started,
            duration: clock.elapsed(),
            response: response.as_ref().map_err(|e| format!("{e:#}")).cloned(),
            simultaneous: false,
        }]);
        response
    }

    fn stall(&self, path: &str, wait: Duration) -> anyhow::Result<Response> {
        let head = format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n",
            self.api_key
        );
        self.raw_post(path, &head, b"{}", wait)
    }

    /// A POST to `path` with the header lines `head` (each ending in CRLF) and `body`, over a
    /// plain TCP connection; what the server answers within `wait`.
    fn raw_post(
        &self,
        path: &str,
        head: &str,
        body: &[u8],
        wait: Duration,
    ) -> anyhow::Result<Response> {
        use std::io::{Read, Write};
        let authority = self
            .base_url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("a request written by hand needs an http:// base URL"))?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut stream = std::net::TcpStream::connect(&authority)?;
        stream.set_read_timeout(Some(wait))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\n{head}\r\n"
        )?;
        stream.write_all(body)?;
        stream.flush()?;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no answer within {wait:?}"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(Response {
            status,
            headers,
            text: body.to_owned(),
            json: serde_json::from_str(body).ok(),
        })
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }
}

/// One request the run sent and what came of it: the evidence behind the verdicts.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    /// When it was sent (RFC 3339, UTC).
    pub started: String,
    /// How long the answer took.
    pub duration: Duration,
    /// The answer, or why there was none.
    pub response: Result<Response, String>,
    /// Set for requests sent at the same moment as others (their answers race by design).
    pub simultaneous: bool,
}

/// The deployment under test.
pub struct Target {
    pub base_url: String,
    pub api_key: String,
    pub http: reqwest::blocking::Client,
    /// Every exchange of the run, in the order the requests were sent.
    pub log: std::sync::Mutex<Vec<Exchange>>,
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
            log: Default::default(),
        })
    }

    /// How many exchanges the run has made so far (a mark for [`Target::exchanges_since`]).
    pub fn mark(&self) -> usize {
        self.log.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Sends `request` and keeps the exchange in the log.
    pub fn send(&self, request: &Request) -> anyhow::Result<Response> {
        let exchange = self.exchange(request);
        let result = exchange
            .response
            .clone()
            .map_err(|err| anyhow::anyhow!("{err}"));
        self.keep(vec![exchange]);
        result
    }

    /// Sends `request` without keeping it (the caller keeps it with [`Target::keep`]).
    pub fn exchange(&self, request: &Request) -> Exchange {
        let started = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let clock = std::time::Instant::now();
        let response = self.send_unrecorded(request).map_err(|e| format!("{e:#}"));
        Exchange {
            request: request.clone(),
            started,
            duration: clock.elapsed(),
            response,
            simultaneous: false,
        }
    }

    /// Appends exchanges to the log, in the order given.
    pub fn keep(&self, exchanges: Vec<Exchange>) {
        if let Ok(mut log) = self.log.lock() {
            log.extend(exchanges);
        }
    }

    fn send_unrecorded(&self, request: &Request) -> anyhow::Result<Response> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
        let mut builder = self
            .http
            .request(method, format!("{}{}", self.base_url, request.path));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        match &request.auth {
            Auth::Main => builder = builder.bearer_auth(&self.api_key),
            Auth::Key(key) => builder = builder.bearer_auth(key),
            Auth::Basic(user, password) => builder = builder.basic_auth(user, Some(password)),
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
