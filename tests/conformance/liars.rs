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
