//! The suite against deliberately wrong servers: a proxy in front of the real server that breaks
//! one promise each time. Every run must fail and name the broken pair.

use conformance::{Options, Report, Verdict};
use poem::{
    listener::{Acceptor, Listener, TcpListener},
    Body, Endpoint, Request, Response,
};
use serde_json::Value;

use crate::server::{bootstrap, run_suite, Database, Server};

/// The one promise a lying server breaks.
#[derive(Clone, Copy)]
enum Lie {
    /// Answers 400 where the spec documents 422.
    BadRequestForValidation,
    /// Leaves `request_id` out of error envelopes.
    NoRequestId,
    /// Answers 418, which no operation documents, for an unknown message.
    UndocumentedStatus,
    /// Sends a 202 body whose `channel` breaks its schema.
    BrokenAcceptedBody,
    /// Refuses with 500 every opt-in of the number the suite sends its example to
    /// (`+1 AAA 555-0100`), on which the sends and reads of messages depend.
    RefusesTheRecipientsOptIn,
}

struct Liar {
    upstream: String,
    lie: Lie,
    http: reqwest::Client,
}

impl Endpoint for Liar {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let mut forward = self
            .http
            .request(req.method().clone(), format!("{}{path}", self.upstream));
        for name in ["authorization", "content-type"] {
            if let Some(value) = req.headers().get(name) {
                forward = forward.header(name, value.as_bytes());
            }
        }
        let body = req.take_body().into_vec().await?;
        let upstream = forward
            .body(body)
            .send()
            .await
            .map_err(poem::error::InternalServerError)?;
        let mut status = upstream.status().as_u16();
        let headers = upstream.headers().clone();
        let mut text = upstream
            .text()
            .await
            .map_err(poem::error::InternalServerError)?;
        let mut json: Option<Value> = serde_json::from_str(&text).ok();
        match (self.lie, json.as_mut()) {
            (Lie::BadRequestForValidation, _) if status == 422 => status = 400,
            (Lie::NoRequestId, Some(body)) => {
                if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
                    error.remove("request_id");
                }
            }
            (Lie::UndocumentedStatus, _) if status == 404 && path.starts_with("/v1/messages/") => {
                status = 418
            }
            (Lie::BrokenAcceptedBody, Some(body)) if status == 202 => {
                body["data"]["channel"] = Value::from("fax")
            }
            (Lie::RefusesTheRecipientsOptIn, _)
                if status == 200
                    && path.starts_with("/v1/consents/")
                    && path.ends_with("5550100")
                    && text.contains("\"opted_in\"") =>
            {
                status = 500
            }
            _ => {}
        }
        if let Some(body) = json {
            text = body.to_string();
        }
        let mut response =
            Response::builder().status(poem::http::StatusCode::from_u16(status).unwrap());
        for (name, value) in &headers {
            if name != "content-length" && name != "transfer-encoding" {
                response = response.header(name.as_str(), value.as_bytes());
            }
        }
        Ok(response.body(Body::from_string(text)))
    }
}

/// Runs the suite through a proxy telling `lie`, holding it to the real server's spec.
async fn run_against(lie: Lie, number: &str) -> Report {
    let database = Database::sqlite();
    let number = number.to_owned();
    let (server, key) = tokio::task::spawn_blocking(move || {
        let key = bootstrap(&database, 50, 100, &number);
        (Server::start(&database), (key, database))
    })
    .await
    .unwrap();
    let (key, _database) = key;
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let liar = Liar {
        upstream: server.base_url.clone(),
        lie,
        http: reqwest::Client::new(),
    };
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(liar));
    let spec_url = format!("{}/openapi.json", server.base_url);
    let options = Options {
        rate_limit_budget: 400,
        property_cases: 8,
        regressions_dir: None,
        carrier_secret: Some(crate::server::CARRIER_SECRET.into()),
        ..Options::default()
    };
    let report = tokio::task::spawn_blocking(move || {
        run_suite(&format!("http://{addr}"), &spec_url, &key, options)
    })
    .await
    .unwrap();
    drop(server);
    report
}

fn failure_of<'a>(report: &'a Report, op: &str, status: u16) -> &'a [String] {
    assert!(report.failed(), "the run against a lying server passed");
    match report.matrix.verdict(op, status) {
        Some(Verdict::Failed { problems, .. }) => problems,
        other => panic!("{op} {status} should have failed, found {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_answering_400_where_422_is_documented_fails() {
    let report = run_against(Lie::BadRequestForValidation, "+15551112201").await;
    let problems = failure_of(&report, "messages_create", 422);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("answered 400, expected 422")),
        "{problems:?}"
    );
    failure_of(&report, "lookups_create", 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_leaving_request_id_out_of_the_envelope_fails() {
    let report = run_against(Lie::NoRequestId, "+15551112202").await;
    let problems = failure_of(&report, "messages_create", 401);
    assert!(
        problems.iter().any(|p| p.contains("request_id")),
        "{problems:?}"
    );
    failure_of(&report, "(server-wide)", 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_answering_an_undocumented_status_fails() {
    let report = run_against(Lie::UndocumentedStatus, "+15551112203").await;
    let problems = failure_of(&report, "messages_view", 404);
    assert!(problems.iter().any(|p| p.contains("418")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("does not document")),
        "{problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_202_body_breaks_its_schema_fails() {
    let report = run_against(Lie::BrokenAcceptedBody, "+15551112204").await;
    let problems = failure_of(&report, "messages_create", 202);
    assert!(
        problems.iter().any(|p| p.contains("channel")),
        "{problems:?}"
    );
}

/// A server that keeps no rules at all: every operation answers the documented example of its
/// first documented status, built from the spec alone; any other request gets the 404 example.
/// It answers as slowly as a deployment across a network (`latency` a request), so that a suite
/// that spends requests freely (unbounded shrinking, waiting) shows it.
struct ExampleEcho {
    /// (method, path template segments, status, body)
    routes: Vec<(String, Vec<String>, u16, String)>,
    not_found: String,
    latency: std::time::Duration,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// An example of `schema`: its own `example`, else one built from its parts.
fn example_of(schema: &Value, doc: &Value) -> Value {
    if let Some(pointer) = schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        return example_of(doc.pointer(pointer).unwrap_or(&Value::Null), doc);
    }
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(first) = schema["allOf"].get(0) {
        return example_of(first, doc);
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), example_of(property, doc)))
                .collect(),
        ),
        Some("array") => Value::Array(vec![example_of(&schema["items"], doc)]),
        Some("integer") => schema["minimum"]
            .as_f64()
            .map_or(Value::from(1), |m| Value::from(m as i64)),
        Some("boolean") => Value::Bool(true),
        Some("string") => Value::from("example"),
        _ => Value::Null,
    }
}

/// The documented example of one response.
fn response_example(response: &Value, doc: &Value) -> Value {
    let media = &response["content"]["application/json"];
    if let Some(example) = media.get("example") {
        return example.clone();
    }
    if let Some((_, first)) = media["examples"].as_object().and_then(|e| e.iter().next()) {
        return first["value"].clone();
    }
    example_of(&media["schema"], doc)
}

impl ExampleEcho {
    fn from_spec(doc: &Value) -> ExampleEcho {
        let mut routes = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let segments: Vec<String> = path
                .trim_start_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            for (method, op) in item.as_object().unwrap() {
                let (status, response) =
                    op["responses"].as_object().unwrap().iter().next().unwrap();
                let body = response_example(response, doc).to_string();
                routes.push((
                    method.to_uppercase(),
                    segments.clone(),
                    status.parse().unwrap(),
                    body,
                ));
            }
        }
        let not_found = response_example(&doc["x-common-responses"]["NotFound"], doc).to_string();
        ExampleEcho {
            routes,
            not_found,
            latency: std::time::Duration::from_millis(50),
            requests: Default::default(),
        }
    }
}

impl Endpoint for ExampleEcho {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
        let path: Vec<&str> = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .collect();
        let found = self.routes.iter().find(|(method, template, _, _)| {
            method == req.method().as_str()
                && template.len() == path.len()
                && template
                    .iter()
                    .zip(&path)
                    .all(|(t, p)| t.starts_with('{') || t == p)
        });
        let (status, body) = match found {
            Some((_, _, status, body)) => (*status, body.clone()),
            None => (404, self.not_found.clone()),
        };
        // The documented headers too, with the examples' own request id, so that only the rules
        // it does not keep give it away.
        Ok(Response::builder()
            .status(poem::http::StatusCode::from_u16(status).unwrap())
            .content_type("application/json")
            .header("x-request-id", "01JTBQH2FZ8K1RXC0WJ4Z9P3VM")
            .header("retry-after", "1")
            .body(body))
    }
}

/// Starts an [`ExampleEcho`] built from the published spec and runs the suite against it;
/// returns the report and how many requests the suite sent.
async fn run_against_example_echo(options: Options) -> (Report, usize) {
    let doc: Value = serde_json::from_str(&agentmessage::spec_json()).unwrap();
    let echo = ExampleEcho::from_spec(&doc);
    let requests = echo.requests.clone();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(echo));
    let spec_file = format!("{}/openapi/openapi.json", env!("CARGO_MANIFEST_DIR"));
    let report = tokio::task::spawn_blocking(move || {
        run_suite(
            &format!("http://{addr}"),
            &spec_file,
            "am_live_00000000000000000000000000000000",
            options,
        )
    })
    .await
    .unwrap();
    (report, requests.load(std::sync::atomic::Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_its_deadline_fails_and_lists_what_did_not_finish() {
    let (report, _) = run_against_example_echo(Options {
        deadline: std::time::Duration::ZERO,
        ..Options::default()
    })
    .await;
    assert!(report.failed());
    assert!(!report.matrix.unfinished.is_empty());
    let text = report.render();
    assert!(text.contains("not finished"), "{text}");
    assert!(
        !report
            .matrix
            .rows
            .values()
            .any(|v| matches!(v, Verdict::Passed { .. })),
        "nothing can pass when nothing ran: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_echoing_documented_examples_fails_fast_on_named_pairs() {
    let started = std::time::Instant::now();
    let (report, requests) = run_against_example_echo(Options::default()).await;
    let took = started.elapsed();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "\n== the example-echo server (50 ms a request), judged in {took:?} after {requests} requests\n{}",
            report.render()
        )
        .as_bytes(),
    );
    assert!(
        took < std::time::Duration::from_secs(120),
        "the verdict took {took:?}"
    );
    assert!(report.failed(), "the run against a rule-less server passed");
    assert!(
        report.matrix.unfinished.is_empty(),
        "the run failed by its deadline, not by its checks: {:?}",
        report.matrix.unfinished
    );
    // It fails on the pairs a server keeping no rules cannot answer, and names them.
    for (op, status) in [
        ("messages_create", 422),
        ("messages_create", 453),
        ("messages_create", 401),
        ("messages_view", 404),
        ("api_keys_create", 403),
    ] {
        failure_of(&report, op, status);
        assert!(report.render().contains(op));
    }
}

/// A setup step that fails (the recipient's opt-in, refused) fails the pair it proves, and
/// makes what depends on it — the reads of the seed's example message —
/// not provable, saying which step failed; never passed, never failed on its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_setup_step_makes_what_depends_on_it_not_provable() {
    let report = run_against(Lie::RefusesTheRecipientsOptIn, "+15551112222").await;
    failure_of(&report, "consents_update", 200);
    // (The send itself is proven anyway, by the property test's own recipients.)
    for (op, status) in [
        ("messages_view", 200),
        ("messages_list", 200),
        ("messages_events_list", 200),
    ] {
        match report.matrix.verdict(op, status) {
            Some(Verdict::NotProvable { reason }) => assert!(
                reason.starts_with("setup: record the recipient's opt-in (PUT /v1/consents/+1")
                    && reason.ends_with("answered 500, expected 200"),
                "{op} {status}: {reason}"
            ),
            other => panic!("{op} {status}: {other:?}\n{}", report.render()),
        }
    }
}
