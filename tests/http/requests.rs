//! Request-level rules: 400, 404, 405, 413, 415, the check order, and that every answer is the
//! envelope with `X-Request-Id`.

use reqwest::Method;

use crate::support::{json, on_both_backends};

on_both_backends! {
    async fn a_query_parameter_given_twice_is_a_bad_request_naming_it(app) {
        let org = app.org().await;
        let reply = app.call(Method::GET, "/v1/messages?status=queued&status=delivered&limit=5", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(400, "BAD_REQUEST")["details"], json!({"status": "must be given at most once"}));
        let reply = app.call(Method::GET, "/v1/messages?limit=5&limit=5", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(400, "BAD_REQUEST")["details"], json!({"limit": "must be given at most once"}));
        app.call(Method::GET, "/v1/messages?status=queued&limit=5", Some(&org.key), None).await.assert_success(200);
    }

    async fn a_body_of_many_unknown_fields_draws_a_small_answer(app) {
        let org = app.sender("+15551112222", "+15554443333").await;
        let mut body = serde_json::Map::new();
        for i in 0..3000 {
            body.insert(format!("f{i}"), json!(1));
        }
        let text = serde_json::Value::Object(body).to_string();
        assert!(text.len() < 64 * 1024, "{}", text.len());
        let reply = app.raw(Method::POST, "/v1/messages", Some(&org.key), Some("application/json"), text.into_bytes()).await;
        let error = reply.assert_error(422, "VALIDATION_FAILED").clone();
        let details = error["details"].as_object().unwrap();
        assert_eq!(details.len(), 100);
        // 3000 unknown fields and the three required ones missing: 3003 problems, 100 shown.
        assert_eq!(error["message"], json!("validation failed (and 2903 more)"));
        assert!(reply.text.len() < 8 * 1024, "the answer is {} bytes", reply.text.len());
    }

    async fn bodies_that_are_not_json_objects_are_bad_requests(app) {
        let org = app.sender("+15551112222", "+15554443333").await;
        // Where the JSON breaks, or that it is not an object.
        for (body, says) in [
            (&b"{not json"[..], "is not JSON: line 1, column 2"),
            (b"{\n  \"from\": \"+15551112222\",\n  \"to\": +1555\n}", "is not JSON: line 3, column 9"),
            (b"[1, 2]", "must be a JSON object"),
            (b"\"text\"", "must be a JSON object"),
            (b"null", "must be a JSON object"),
            (b"", "is not JSON: it ends too early (line 1, column 0)"),
            (b"{\"a\": 1", "is not JSON: it ends too early (line 1, column 7)"),
        ] {
            let reply = app.raw(Method::POST, "/v1/messages", Some(&org.key), Some("application/json"), body.to_vec()).await;
            let error = reply.assert_error(400, "BAD_REQUEST");
            assert_eq!(error["message"], json!("bad request"));
            assert_eq!(error["details"], json!({"body": says}), "{}", String::from_utf8_lossy(body));
        }
    }

    async fn bodies_of_another_media_type_are_unsupported(app) {
        let org = app.sender("+15551112222", "+15554443333").await;
        let body = br#"{"from": "+15551112222", "to": "+15554443333", "text": "hi"}"#.to_vec();
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let reply = app.raw(Method::POST, "/v1/messages", Some(&org.key), content_type, body.clone()).await;
            reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
        }
        let reply = app.raw(Method::POST, "/v1/messages", Some(&org.key), Some("application/json; charset=utf-8"), body).await;
        reply.assert_success(202);
    }

    async fn unknown_routes_are_not_found_and_wrong_methods_list_the_allowed_ones(app) {
        let org = app.org().await;
        for path in ["/", "/v1", "/v1/message", "/v1/messages/a/b", "/v2/messages", "/docs/nothing"] {
            app.call(Method::GET, path, Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        }
        // 404 comes before authentication.
        app.call(Method::POST, "/v1/nothing", None, Some(json!({}))).await.assert_error(404, "NOT_FOUND");

        let reply = app.call(Method::PUT, "/v1/messages", Some(&org.key), None).await;
        reply.assert_error(405, "METHOD_NOT_ALLOWED");
        assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));
        let reply = app.call(Method::PATCH, "/v1/consents/+15554443333", None, None).await;
        reply.assert_error(405, "METHOD_NOT_ALLOWED");
        assert_eq!(reply.header("allow"), Some("DELETE, GET, HEAD, PUT"));
        let reply = app.call(Method::DELETE, "/healthz", None, None).await;
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }

    async fn path_segments_that_do_not_decode_are_answered_after_authentication(app) {
        let org = app.org().await;
        app.call(Method::GET, "/v1/messages/%FF", None, None).await.assert_error(401, "UNAUTHORIZED");
        app.call(Method::GET, "/v1/messages/%FF", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        let reply = app.call(Method::GET, "/v1/consents/%FF%FE", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164 (+, country code, number), such as +14155550123"}));
        app.call(Method::DELETE, "/v1/api_keys/%C3%28", Some(&org.key), None).await.assert_error(404, "NOT_FOUND");
        let reply = app.call(Method::PUT, "/v1/consents/%FF", Some(&org.key), Some(json!({"source": "api"}))).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164 (+, country code, number), such as +14155550123"}));
        let reply = app.call(Method::DELETE, "/v1/consents/%FF", Some(&org.key), None).await;
        assert_eq!(reply.assert_error(422, "VALIDATION_FAILED")["details"], json!({"phone_number": "must be E.164 (+, country code, number), such as +14155550123"}));
    }

    async fn bodies_over_64_kib_are_too_large_before_authentication(app) {
        let body = format!("{{\"text\": \"{}\"}}", "a".repeat(70 * 1024)).into_bytes();
        let reply = app.raw(Method::POST, "/v1/messages", None, Some("application/json"), body.clone()).await;
        reply.assert_error(413, "PAYLOAD_TOO_LARGE");
        // The unread rest of the body makes the connection unusable: the server says it closes it.
        assert_eq!(reply.header("connection"), Some("close"));

        // The same body sent chunked, without Content-Length.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(8192).map(|c| Ok(c.to_vec())).collect();
        let response = app.client
            .post(format!("{}/v1/messages", app.base))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        crate::support::read(response).await.assert_error(413, "PAYLOAD_TOO_LARGE");

        // Exactly 64 KiB passes the size check (and then fails authentication).
        let reply = app.raw(Method::POST, "/v1/messages", None, Some("application/json"), vec![b' '; 64 * 1024]).await;
        reply.assert_error(401, "UNAUTHORIZED");
    }

    async fn every_answer_carries_a_request_id_and_none_is_plain_text(app) {
        let org = app.org().await;
        let replies = [
            app.call(Method::GET, "/healthz", None, None).await,
            app.call(Method::GET, "/v1/numbers", Some(&org.key), None).await,
            app.call(Method::GET, "/v1/numbers", None, None).await,
            app.call(Method::PUT, "/v1/numbers", None, None).await,
            app.call(Method::GET, "/nowhere", None, None).await,
            app.call(Method::GET, "/openapi.json", None, None).await,
        ];
        let mut ids = std::collections::HashSet::new();
        for reply in &replies {
            let id = reply.header("x-request-id").expect("X-Request-Id");
            assert!(ulid::Ulid::from_string(id).is_ok(), "{id}");
            assert!(ids.insert(id.to_owned()), "request ids repeat");
            assert!(reply.header("content-type").unwrap().starts_with("application/json"), "{:?}", reply.header("content-type"));
            assert!(reply.json.is_object());
        }
        assert_eq!(replies[0].assert_success(200), &json!({"status": "ok"}));
    }

    async fn the_spec_and_docs_are_served(app) {
        let json_spec = app.call(Method::GET, "/openapi.json", None, None).await;
        assert_eq!(json_spec.status, 200);
        assert_eq!(json_spec.text, agentmessage::spec_json());
        let yaml = app.client.get(format!("{}/openapi.yaml", app.base)).send().await.unwrap();
        assert_eq!(yaml.status(), 200);
        assert_eq!(yaml.text().await.unwrap(), agentmessage::spec_yaml());
        let docs = app.client.get(format!("{}/docs", app.base)).send().await.unwrap();
        assert_eq!(docs.status(), 200);
        assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = docs.text().await.unwrap();
        assert!(html.contains("SwaggerUIBundle"));
        assert!(html.contains("\"messages_create\""), "the docs embed the published spec");
        assert!(!html.contains("https://cdn"), "no CDN");
    }
}

/// Inputs meant to break the server, on both backends.
mod hostile {
    use super::*;

    on_both_backends! {
        async fn hostile_paths_and_queries_never_get_a_5xx(app) {
            let org = app.sender("+15551112222", "+15554443333").await;
            let paths = [
                "/v1/messages?tag=%00",
                "/v1/messages?tag=a%00b&to=%00",
                "/v1/messages?cursor=%00&limit=%00",
                "/v1/messages?created_after=9999-12-31T23:59:59Z",
                "/v1/messages?created_before=0000-01-01T00:00:00Z",
                "/v1/messages?limit=99999999999999999999999",
                "/v1/messages?cursor=99999999999999999999.0196f1a23b4c7d5e8f60718293a4b5c6",
                "/v1/messages?cursor=-1.0196f1a23b4c7d5e8f60718293a4b5c6",
                "/v1/messages/%00",
                "/v1/messages/%00/events",
                "/v1/consents/%00",
                "/v1/consents/+1555%00",
                "/v1/lookups/%2B%00",
                "/v1/api_keys/%00",
            ];
            for path in paths {
                for method in [Method::GET, Method::DELETE, Method::PUT] {
                    let reply = app.call(method.clone(), path, Some(&org.key), Some(json!({"source": "api"}))).await;
                    assert!(reply.status.as_u16() < 500, "{method} {path}: {}", reply.text);
                    if !reply.status.is_success() {
                        assert_eq!(reply.json["success"], json!(false), "{method} {path}");
                    }
                }
            }
            let reply = app.call(Method::GET, "/v1/messages?tag=%00", Some(&org.key), None).await;
            assert_eq!(reply.assert_error(400, "BAD_REQUEST")["details"], json!({"tag": "must not contain NUL characters"}));
        }
    }
}

/// Sends `request` over a fresh TCP connection and reads the whole answer (the server closes).
async fn raw_exchange(app: &crate::support::TestApp, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn long_targets_and_large_headers_get_the_envelope_up_to_the_hard_limit() {
    let app = crate::support::TestApp::start(crate::support::Backend::Sqlite).await;
    for (size, status, code) in [
        (9 * 1024, 414, "URI_TOO_LONG"),
        (60 * 1024, 414, "URI_TOO_LONG"),
    ] {
        let request = format!(
            "GET /v1/messages?tag={} HTTP/1.1\r\nHost: x\r\n\r\n",
            "t".repeat(size)
        );
        let answer = raw_exchange(&app, request.into_bytes()).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:.200}",
            answer
        );
        assert!(
            answer.to_lowercase().contains("x-request-id:"),
            "{:.400}",
            answer
        );
        assert!(answer.contains(code), "{:.400}", answer);
    }
    let request = format!(
        "GET /v1/numbers HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(33 * 1024)
    );
    let answer = raw_exchange(&app, request.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{:.200}", answer);
    assert!(answer.contains("HEADERS_TOO_LARGE"), "{:.400}", answer);
    // Past the hard limits (a target near 64 KiB, a head over 128 KiB) the HTTP layer refuses
    // the request itself and closes the connection; the answer is still the envelope.
    let request = format!(
        "GET /v1/messages?tag={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "t".repeat(100 * 1024)
    );
    let answer = raw_exchange(&app, request.into_bytes()).await;
    assert_enveloped(&answer, 414, "URI_TOO_LONG");
    let request = format!(
        "GET /v1/numbers HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(200 * 1024)
    );
    let answer = raw_exchange(&app, request.into_bytes()).await;
    assert_enveloped(&answer, 431, "HEADERS_TOO_LARGE");
}

/// `answer` is one whole HTTP answer with `status`, the envelope with `code`, and an
/// `X-Request-Id` equal to `error.request_id`.
fn assert_enveloped(answer: &str, status: u16, code: &str) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    let id = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("x-request-id: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no X-Request-Id: {head}"));
    let body: serde_json::Value = serde_json::from_str(body).expect(body);
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(
        body["error"]["request_id"].as_str().unwrap().to_lowercase(),
        id,
        "{body}"
    );
}

/// Every control character (0x00–0x1F but tab, and DEL) in `Idempotency-Key` or in another
/// header is answered in the envelope, whether the HTTP layer refuses the head or the key's own
/// rule does; a tab in an ordinary header is allowed.
#[tokio::test]
async fn control_characters_in_headers_are_answered_in_the_envelope() {
    let app = crate::support::TestApp::start(crate::support::Backend::Sqlite).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let body = r#"{"from":"+15551112222","to":"+15554443333","text":"hi"}"#;
    let request = |header: &str, byte: u8| {
        let mut raw = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{header}: a",
            org.key,
            body.len()
        )
        .into_bytes();
        raw.push(byte);
        raw.extend(b"b\r\n\r\n");
        raw.extend(body.as_bytes());
        raw
    };
    for byte in (0x00..=0x1F).chain([0x7F]) {
        let answer = raw_exchange(&app, request("Idempotency-Key", byte)).await;
        assert_enveloped(&answer, 400, "BAD_REQUEST");
        let answer = raw_exchange(&app, request("X-Note", byte)).await;
        if byte == b'\t' {
            assert!(answer.starts_with("HTTP/1.1 202 "), "{answer}");
        } else {
            assert_enveloped(&answer, 400, "BAD_REQUEST");
        }
    }
}

#[tokio::test]
async fn a_body_that_stops_half_way_is_answered_408_and_the_connection_closed() {
    let settings = agentmessage::service::Settings {
        body_read_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let app = crate::support::TestApp::start_with(crate::support::Backend::Sqlite, settings).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"from\"",
        org.key
    );
    let started = std::time::Instant::now();
    let answer = raw_exchange(&app, request.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// One address (127.0.0.2) holding 1,100 half-sent request heads, then 1,100 slow bodies, takes
/// no more than its share of the connections: a request from another address (127.0.0.1) is
/// answered within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_cannot_take_every_connection() {
    use tokio::io::AsyncWriteExt;
    agentmessage::server::raise_descriptor_limit().unwrap();
    let app = crate::support::TestApp::start(crate::support::Backend::Sqlite).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let server: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let hold = |first: &'static [u8]| async move {
        let mut held = vec![];
        for _ in 0..1_100 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(mut stream) = socket.connect(server).await {
                let _ = stream.write_all(first).await;
                held.push(stream);
            }
        }
        held
    };
    for first in [
        &b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Ty"[..],
        &b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"fr"[..],
    ] {
        let held = hold(first).await;
        assert!(held.len() > 1_000, "{} connections held", held.len());
        // On a new connection (the test client's pool would reuse one made before).
        let started = std::time::Instant::now();
        let body = r#"{"from":"+15551112222","to":"+15554443333","text":"hi"}"#;
        let request = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            org.key,
            body.len()
        );
        let answer = raw_exchange(&app, request.into_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 202 "), "{answer}");
        eprintln!(
            "with 127.0.0.2 holding {} connections ({}), a send from 127.0.0.1 took {:?}",
            held.len(),
            if first.ends_with(b"\r\n\r\n{\"fr") { "slow bodies" } else { "half-sent heads" },
            started.elapsed()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "a request from another address took {:?}",
            started.elapsed()
        );
        drop(held);
    }
}

/// Each 401 says why, with the challenge of RFC 6750; a form body's 415 names JSON.
#[tokio::test]
async fn errors_say_how_to_fix_them() {
    let app = crate::support::TestApp::start(crate::support::Backend::Sqlite).await;
    let org = app.org().await;
    let get = |authorization: Option<String>| {
        let mut request = app.client.get(format!("{}/v1/numbers", app.base));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        async move { crate::support::read(request.send().await.unwrap()).await }
    };
    let cases = [
        (None, "no credentials were sent: send your API key as `Authorization: Bearer am_live_…`", r#"Bearer realm="agentmessage""#),
        (Some("Basic QUN4eHg6c2VjcmV0".to_owned()), "the Authorization header uses the Basic scheme: send your API key as a bearer token, `Authorization: Bearer am_live_…`", r#"Bearer realm="agentmessage""#),
        (Some("Bearer am_live_00000000000000000000000000000000".to_owned()), "the key does not exist or no longer works (revoked): check it, or make a new one", r#"Bearer realm="agentmessage", error="invalid_token""#),
    ];
    for (authorization, says, challenge) in cases {
        let reply = get(authorization).await;
        let error = reply.assert_error(401, "UNAUTHORIZED");
        assert_eq!(error["details"], json!({"authorization": says}));
        assert_eq!(reply.header("www-authenticate"), Some(challenge));
    }
    let form = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .bearer_auth(&org.key)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("From=%2B15551112222&To=%2B15554443333&Body=hi")
        .send()
        .await
        .unwrap();
    let reply = crate::support::read(form).await;
    let error = reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(
        error["message"],
        json!("unsupported media type: send JSON with Content-Type: application/json (form bodies are not accepted)")
    );
}
