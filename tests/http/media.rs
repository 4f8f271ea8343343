//! MMS media held to the deployment's rules: at send time (https, no refused destination) and
//! when the worker fetches them before submission (found, an allowed type, within the size cap);
//! the simulated carrier applies the same rules as a real MMS carrier, so test mode and the demo
//! show the same errors.

use std::time::Duration;

use agentmessage::service::{MediaRules, Settings};
use poem::{
    handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Path,
    Response, Route,
};

use crate::support::{for_each_backend, json, Backend, TestApp};

const FROM: &str = "+15551112222";
const TO: &str = "+15554443333";

/// The media server of these tests: a picture, a page, a large document, a redirect.
#[handler]
async fn media(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "cat.png" => Response::builder()
            .content_type("image/png")
            .body(vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10]),
        "card.vcf" => Response::builder()
            .content_type("text/vcard; charset=utf-8")
            .body("BEGIN:VCARD\r\nEND:VCARD\r\n"),
        "page.html" => Response::builder()
            .content_type("text/html")
            .body("<html></html>"),
        "big.pdf" => Response::builder()
            .content_type("application/pdf")
            .body(vec![b'%'; 100 * 1024]),
        "photo.png" => Response::builder()
            .content_type("image/png")
            .body(crate::noise::noise_png().to_vec()),
        "broken.png" => Response::builder()
            .content_type("image/png")
            .body(vec![7u8; 100 * 1024]),
        "slow.png" => {
            tokio::time::sleep(Duration::from_millis(700)).await;
            Response::builder()
                .content_type("image/png")
                .body(vec![0u8; 8])
        }
        "elsewhere" => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "https://127.0.0.1:9/cat.png")
            .finish(),
        _ => Response::builder().status(StatusCode::NOT_FOUND).finish(),
    }
}

async fn media_server() -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(Route::new().at("/:name", media)));
    format!("http://{addr}")
}

/// An app that fetches media from this host over plain http under a 64 KiB cap and
/// `fetch_timeout`, the media server, an organization sending from `FROM` to `TO`, and a worker.
async fn media_app(
    backend: Backend,
    fetch_timeout: Duration,
) -> (
    TestApp,
    String,
    crate::support::Org,
    crate::support::RunningWorker,
) {
    let settings = Settings {
        media: MediaRules {
            allow_http: true,
            allow_private: true,
            max_bytes: 64 * 1024,
            fetch_timeout,
        },
        ..Settings::default()
    };
    let app = TestApp::start_with(backend, settings).await;
    let base = media_server().await;
    let org = app.sender(FROM, TO).await;
    let worker = app.run_worker(Duration::from_secs(60));
    (app, base, org, worker)
}

fn terminal(status: &str) -> bool {
    matches!(status, "delivered" | "undelivered" | "failed")
}

/// By default a media URL must be https and must not point to a refused destination: 422 naming
/// the item, before anything is stored or a rate-limit token spent.
async fn media_urls_are_https_and_never_point_inside(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.sender(FROM, TO).await;
    for (url, said) in [
        (
            "http://media.example.com/cat.png",
            "item 1 must be an https URL (this deployment does not fetch plain http)",
        ),
        ("https://127.0.0.1/cat.png", "item 1 must not point to"),
        ("https://localhost:8443/cat.png", "item 1 must not point to"),
        (
            "https://169.254.169.254/latest/meta-data",
            "item 1 must not point to",
        ),
        ("https://[::1]/cat.png", "item 1 must not point to"),
    ] {
        let reply = app
            .send(
                &org.key,
                json!({"from": FROM, "to": TO, "text": "a picture", "media_urls": [url]}),
            )
            .await;
        let error = reply.assert_error(422, "VALIDATION_FAILED");
        let detail = error["details"]["media_urls"].as_str().unwrap_or_default();
        assert!(detail.starts_with(said), "{url}: {detail}");
    }
    // The second item is named when it is the one refused.
    let reply = app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "two", "media_urls": ["https://media.example.com/a.png", "https://10.0.0.7/b.png"]}),
        )
        .await;
    let error = reply.assert_error(422, "VALIDATION_FAILED");
    assert_eq!(
        error["details"]["media_urls"],
        json!("item 2 must not point to a private address (10.0.0.7)")
    );
}

/// With plain http and private addresses allowed (a media server on this host) and a 64 KiB
/// cap, the worker fetches each item before submission: a picture and a card are delivered; a
/// missing item, a page, a document over the cap and a host that does not exist end `failed`
/// with the media code and a message naming the item; nothing reaches the carrier for them.
async fn the_worker_fetches_and_checks_media_before_submission(backend: Backend) {
    let (app, base, org, _worker) = media_app(backend, Duration::from_secs(5)).await;
    let cases: [(Vec<String>, &str, Option<&str>, &str); 6] = [
        (
            vec![format!("{base}/cat.png"), format!("{base}/card.vcf")],
            "delivered",
            None,
            "",
        ),
        (
            vec![format!("{base}/cat.png"), format!("{base}/missing.png")],
            "failed",
            Some("MEDIA_UNAVAILABLE"),
            "media item 2 could not be fetched: the server answered 404",
        ),
        (
            vec![format!("{base}/page.html")],
            "failed",
            Some("MEDIA_TYPE_UNSUPPORTED"),
            "media item 1 is of type text/html, which an MMS cannot carry",
        ),
        (
            vec![format!("{base}/big.pdf")],
            "failed",
            Some("MEDIA_TOO_LARGE"),
            "the media add up to more than this deployment's cap of 65536 bytes",
        ),
        (
            vec!["https://does-not-exist.invalid/a.jpg".to_owned()],
            "failed",
            Some("MEDIA_UNAVAILABLE"),
            "media item 1 could not be fetched: no connection",
        ),
        (
            vec![format!("{base}/elsewhere")],
            "failed",
            Some("MEDIA_UNAVAILABLE"),
            "media item 1 could not be fetched",
        ),
    ];
    let mut sent = vec![];
    for (urls, _, _, _) in &cases {
        let reply = app
            .send(
                &org.key,
                json!({"from": FROM, "to": TO, "text": "media", "media_urls": urls}),
            )
            .await;
        let data = reply.assert_success(202);
        assert_eq!(data["channel"], "mms");
        sent.push(data["id"].as_str().unwrap().to_owned());
    }
    for (id, (urls, status, code, message)) in sent.iter().zip(&cases) {
        let data = app
            .wait_for(&org.key, id, Duration::from_secs(20), terminal)
            .await;
        assert_eq!(data["status"], *status, "{urls:?}: {data}");
        assert_eq!(data["error_code"], json!(code), "{urls:?}: {data}");
        let said = data["error_message"].as_str().unwrap_or_default();
        assert!(said.starts_with(message), "{urls:?}: {said}");
        if code.is_some() {
            let message_id = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(
                app.carrier.submissions(message_id),
                0,
                "{urls:?} reached the carrier"
            );
        }
    }
}

/// The fetch timeout bounds all of one message's media together: two items that each answer
/// within it (0.7 s of 1 s) but not both fail the message `MEDIA_UNAVAILABLE` once it has passed.
async fn a_messages_media_are_fetched_within_the_timeout_all_together(backend: Backend) {
    let (app, base, org, _worker) = media_app(backend, Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    let reply = app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "slow", "media_urls": [format!("{base}/slow.png"), format!("{base}/slow.png")]}),
        )
        .await;
    let id = reply.assert_success(202)["id"].as_str().unwrap().to_owned();
    let data = app
        .wait_for(&org.key, &id, Duration::from_secs(20), terminal)
        .await;
    assert_eq!(data["error_code"], "MEDIA_UNAVAILABLE", "{data}");
    assert_eq!(
        data["error_message"],
        "the media could not all be fetched within the fetch timeout (1s)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// An image over the cap is scaled down and re-encoded as JPEG until the media fit, the message
/// is delivered, and a `media_converted` event says from what to what; an image that cannot be
/// read is over the cap as it is: `MEDIA_TOO_LARGE`.
async fn an_image_over_the_cap_is_scaled_down_to_fit(backend: Backend) {
    assert!(
        crate::noise::noise_png().len() > 300 * 1024,
        "{}",
        crate::noise::noise_png().len()
    );
    let (app, base, org, _worker) = media_app(backend, Duration::from_secs(5)).await;
    let reply = app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "the view", "media_urls": [format!("{base}/card.vcf"), format!("{base}/photo.png")]}),
        )
        .await;
    let id = reply.assert_success(202)["id"].as_str().unwrap().to_owned();
    let data = app
        .wait_for(&org.key, &id, Duration::from_secs(30), terminal)
        .await;
    assert_eq!(data["status"], "delivered", "{data}");
    let events = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/messages/{id}/events"),
            Some(&org.key),
            None,
        )
        .await;
    let events = events.assert_success(200).as_array().unwrap().clone();
    let converted: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "media_converted")
        .collect();
    assert_eq!(converted.len(), 1, "{events:?}");
    assert_eq!(converted[0]["status"], "sending");
    let note = converted[0]["note"].as_str().unwrap();
    let pattern = regex::Regex::new(
        r"^media item 2: image/png of (\d+) bytes scaled to (\d+)x(\d+) and re-encoded as image/jpeg of (\d+) bytes to fit the cap of 65536 bytes$",
    )
    .unwrap();
    let found = pattern.captures(note).unwrap_or_else(|| panic!("{note}"));
    assert_eq!(
        found[1].parse::<usize>().unwrap(),
        crate::noise::noise_png().len()
    );
    assert!(found[2].parse::<u32>().unwrap() < 400, "{note}");
    let card = "BEGIN:VCARD\r\nEND:VCARD\r\n".len();
    assert!(
        found[4].parse::<usize>().unwrap() + card <= 64 * 1024,
        "{note}"
    );
    // Every other event has no note.
    assert!(events
        .iter()
        .filter(|e| e["kind"] != "media_converted")
        .all(|e| e["note"].is_null()));

    let reply = app
        .send(
            &org.key,
            json!({"from": FROM, "to": TO, "text": "broken", "media_urls": [format!("{base}/broken.png")]}),
        )
        .await;
    let id = reply.assert_success(202)["id"].as_str().unwrap().to_owned();
    let data = app
        .wait_for(&org.key, &id, Duration::from_secs(30), terminal)
        .await;
    assert_eq!(data["error_code"], "MEDIA_TOO_LARGE", "{data}");
    assert!(
        data["error_message"]
            .as_str()
            .unwrap()
            .contains("and media item 1 could not be read as an image to scale it down"),
        "{data}"
    );
}

for_each_backend!(
    media_urls_are_https_and_never_point_inside,
    the_worker_fetches_and_checks_media_before_submission,
    an_image_over_the_cap_is_scaled_down_to_fit,
    a_messages_media_are_fetched_within_the_timeout_all_together,
);
