//! The operations listener: `/metrics` scraped and parsed with counters moving as sends happen,
//! `/readyz` through a database outage and an unbound carrier, and the real binary stopped by
//! SIGTERM under load — every request it accepted answered — with JSON logs whose lines carry
//! their request's id.

use std::{collections::HashMap, sync::Arc, time::Duration};

use agentmessage::{domain::submission::CarrierHealth, ops::Role, service::Services};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{Backend, TestApp};

/// A scrape's samples, by name and sorted labels.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

/// Serves the operations endpoints of `services` on a free port; its base URL.
async fn ops(services: Services, role: Role) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(agentmessage::ops::serve(
        listener,
        services,
        role,
        std::future::pending(),
    ));
    base
}

/// Every sample of a scrape, by name and labels.
async fn scrape(base: &str) -> Samples {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => 0.0,
            };
            ((s.metric, labels), value)
        })
        .collect()
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    wanted.sort();
    samples
        .get(&(name.to_owned(), wanted))
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_and_move_as_sends_happen() {
    let app = TestApp::start(Backend::Sqlite).await;
    let base = ops(app.services.clone(), Role::Api).await;
    let org = app.sender("+15551112222", "+12125550100").await;
    let before = scrape(&base).await;
    let first_send = std::time::Instant::now();
    for n in 0..3 {
        app.call(Method::POST, "/v1/messages", Some(&org.key), Some(json!({"from": "+15551112222", "to": "+12125550100", "text": format!("metrics {n}")})))
            .await
            .assert_success(202);
    }
    app.call(Method::GET, "/v1/nowhere", Some(&org.key), None)
        .await
        .assert_error(404, "NOT_FOUND");
    let after = scrape(&base).await;
    let sends = [("operation", "POST /v1/messages"), ("status", "202")];
    // Other tests of this binary share the process's counters: at least ours moved them.
    assert!(
        sample(&after, "agentmessage_http_requests_total", &sends)
            - sample(&before, "agentmessage_http_requests_total", &sends)
            >= 3.0
    );
    let unmatched = [("operation", "unmatched"), ("status", "404")];
    assert!(
        sample(&after, "agentmessage_http_requests_total", &unmatched)
            > sample(&before, "agentmessage_http_requests_total", &unmatched)
    );
    let queued = [("status", "queued")];
    assert!(
        sample(&after, "agentmessage_messages_total", &queued)
            - sample(&before, "agentmessage_messages_total", &queued)
            >= 3.0
    );
    // No worker runs for this app: its three messages wait in the queue.
    assert!(sample(&after, "agentmessage_queue_depth", &[]) >= 3.0);
    // The oldest queued message is ours (a fresh database): its age is exported, more than zero
    // and no more than the time since it was sent.
    let age = *after
        .get(&("agentmessage_queue_oldest_age_seconds".to_owned(), vec![]))
        .expect("the queue's oldest age is exported");
    assert!(
        age > 0.0 && age <= first_send.elapsed().as_secs_f64() + 0.01,
        "oldest queued message {age} s old, sent {:?} ago",
        first_send.elapsed()
    );
    assert!(after.keys().any(|(name, labels)| name
        == "agentmessage_http_request_duration_seconds_count"
        && labels.contains(&("operation".into(), "POST /v1/messages".into()))));
    assert!(after.contains_key(&(
        "agentmessage_db_pool_connections".to_owned(),
        vec![("state".to_owned(), "idle".to_owned())]
    )));
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // Not part of the public API.
    app.call(Method::GET, "/metrics", None, None)
        .await
        .assert_error(404, "NOT_FOUND");
}

/// A carrier that holds every submission until told to answer, counting those it holds.
struct HeldCarrier {
    held: std::sync::atomic::AtomicUsize,
    answer: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl agentmessage::delivery::Carrier for HeldCarrier {
    fn name(&self) -> &str {
        "simulated"
    }

    fn capabilities(&self) -> agentmessage::delivery::Capabilities {
        agentmessage::delivery::simulated::CAPABILITIES
    }

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "simulated",
            sessions: 1,
            bound: 1,
        }
    }

    async fn submit_in(
        &self,
        submission: &agentmessage::delivery::Submission,
        _: &agentmessage::domain::message::Part,
        room: agentmessage::delivery::Room,
    ) -> (
        Result<String, agentmessage::delivery::SubmitError>,
        agentmessage::delivery::Room,
    ) {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.answer.acquire().await.unwrap().forget();
        (Ok(format!("held-{}", submission.message_id.simple())), room)
    }
}

/// The samples named `name`, by their `worker` label.
fn by_worker(samples: &Samples, name: &str) -> HashMap<String, f64> {
    samples
        .iter()
        .filter(|((n, _), _)| n == name)
        .filter_map(|((_, labels), v)| {
            let worker = labels.iter().find(|(k, _)| k == "worker")?;
            Some((worker.1.clone(), *v))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_what_each_worker_holds_leased_and_in_flight() {
    let app = TestApp::start(Backend::Sqlite).await;
    let base = ops(app.services.clone(), Role::Worker).await;
    let org = app.sender("+15551112222", "+12125550100").await;
    for n in 0..3 {
        app.call(
            Method::POST,
            "/v1/messages",
            Some(&org.key),
            Some(
                json!({"from": "+15551112222", "to": "+12125550100", "text": format!("held {n}")}),
            ),
        )
        .await
        .assert_success(202);
    }
    let carrier = Arc::new(HeldCarrier {
        held: Default::default(),
        answer: tokio::sync::Semaphore::new(0),
    });
    let settings = agentmessage::delivery::WorkerSettings {
        lanes: 1,
        poll: Duration::from_millis(20),
        ..Default::default()
    };
    let _worker = crate::support::RunningWorker::spawn(agentmessage::delivery::Worker::new(
        app.services.clone(),
        carrier.clone(),
        settings,
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while carrier.held.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not submit the three"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every worker of the process is labelled by its own id (`worker-…`): this test's is the
    // one holding three, leased and in flight alike.
    let held = scrape(&base).await;
    let leased = by_worker(&held, "agentmessage_worker_messages_leased");
    let in_flight = by_worker(&held, "agentmessage_worker_messages_in_flight");
    let ours: Vec<&String> = leased
        .iter()
        .filter(|(_, v)| **v == 3.0)
        .map(|(w, _)| w)
        .collect();
    assert_eq!(ours.len(), 1, "leased: {leased:?}");
    let ours = ours[0].clone();
    assert!(ours.starts_with("worker-"), "{ours}");
    assert_eq!(in_flight.get(&ours), Some(&3.0), "in flight: {in_flight:?}");
    carrier.answer.add_permits(3);
    // Once the answers are recorded, the worker holds nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let after = scrape(&base).await;
        let leased = by_worker(&after, "agentmessage_worker_messages_leased");
        let in_flight = by_worker(&after, "agentmessage_worker_messages_in_flight");
        if leased.get(&ours) == Some(&0.0) && in_flight.get(&ours) == Some(&0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gauges stayed at {leased:?} / {in_flight:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = app
        .call(
            Method::GET,
            "/v1/messages?status=sent",
            Some(&org.key),
            None,
        )
        .await;
    assert_eq!(sent.assert_success(200).as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_is_ready_only_with_a_bound_carrier_and_an_api_process_regardless() {
    let app = TestApp::start(Backend::Sqlite).await;
    let carrier = Arc::new(SwitchedCarrier::default());
    let bound = carrier.clone();
    let worker =
        agentmessage::delivery::Worker::new(app.services.clone(), carrier, Default::default());
    app.services.report_carrier(worker.health_probe());
    let worker = ops(app.services.clone(), Role::Worker).await;
    let api = ops(app.services.clone(), Role::Api).await;
    let ready = |base: String| async move {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, body) = ready(worker.clone()).await;
    assert_eq!(
        (status, body["checks"]["carrier"].clone()),
        (503, json!("not bound"))
    );
    assert_eq!(
        body["checks"]["connections"],
        json!({"smpp": {"kind": "smpp", "state": "unbound", "sessions": 1, "bound": 0, "throughput": 0}})
    );
    assert_eq!(
        ready(api.clone()).await.0,
        200,
        "an API process keeps accepting while the carrier is down"
    );
    bound.0.store(1, std::sync::atomic::Ordering::Relaxed);
    let (status, body) = ready(worker).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"ready": true, "checks": {
                "database": "ok", "migrations": "ok", "carrier": "bound",
                "connections": {"smpp": {"kind": "smpp", "state": "bound", "sessions": 1, "bound": 1, "throughput": 0}}
            }})
        )
    );
}

/// A carrier whose one session is bound or not as the test says; it takes no submission.
#[derive(Default)]
struct SwitchedCarrier(std::sync::atomic::AtomicU32);

#[async_trait::async_trait]
impl agentmessage::delivery::Carrier for SwitchedCarrier {
    fn name(&self) -> &str {
        "smpp"
    }

    fn capabilities(&self) -> agentmessage::delivery::Capabilities {
        agentmessage::delivery::smpp::CAPABILITIES
    }

    fn health(&self) -> CarrierHealth {
        CarrierHealth {
            kind: "smpp",
            sessions: 1,
            bound: self.0.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    async fn submit_in(
        &self,
        _: &agentmessage::delivery::Submission,
        _: &agentmessage::domain::message::Part,
        room: agentmessage::delivery::Room,
    ) -> (
        Result<String, agentmessage::delivery::SubmitError>,
        agentmessage::delivery::Room,
    ) {
        let refused = agentmessage::delivery::SubmitError::Deferred {
            code: "NOT_BOUND".into(),
            message: "this test's carrier takes nothing".into(),
        };
        (Err(refused), room)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_database_is_down_and_recovers() {
    let (cluster, _dir) = crate::pg::Cluster::create();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let store = agentmessage::store::Store::connect_with(
        &url,
        agentmessage::store::StoreSettings {
            acquire_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let base = ops(Services::new(store, Default::default()), Role::Api).await;
    let ready = || async {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);
    cluster.stop();
    let (status, body) = ready().await;
    assert_eq!(
        (
            status,
            body["checks"]["database"].clone(),
            body["ready"].clone()
        ),
        (503, json!("unreachable"), json!(false))
    );
    cluster.start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ready().await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What became of one request sent while the server stopped.
#[derive(Debug)]
enum Outcome {
    /// Answered whole, with this status and request id.
    Answered(u16, String),
    /// Refused before the server read it: the connection was refused, or reset (the kernel
    /// resets a connection closed with the request still unread).
    Refused,
    /// The server read the request (the connection closed cleanly after it) but sent no whole
    /// answer: what a graceful stop must never do.
    Cut(String),
}

/// Whether a failed request never reached the server's handlers: a refused connection, or a
/// connection reset because it was closed before the request on it was read.
fn refused(err: &reqwest::Error) -> bool {
    if err.is_connect() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionRefused
            );
        }
        source = cause.source();
    }
    false
}

/// The binary under load gets SIGTERM: it stops accepting, answers every request it accepted,
/// and exits within the grace; its JSON log lines carry each request's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_accepted_request_and_exits_in_time() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = crate::child::Reaped(
        Command::new(env!("CARGO_BIN_EXE_agentmessage"))
            .args([
                "serve",
                "--demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--shutdown-grace",
                "5s",
            ])
            .arg("--database-url")
            .arg(format!("sqlite://{}/ops.db", dir.path().display()))
            .env("AGENTMESSAGE_LOG", "info")
            .env("AGENTMESSAGE_LOG_FORMAT", "json")
            .env("AGENTMESSAGE_OPS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.stdout.take().unwrap();
    // The whole of standard output is read (a closed pipe would fail the server's next print).
    let (found, key) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut found = Some(found);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(key) = line.trim_start().strip_prefix("live: ") {
                if let Some(found) = found.take() {
                    let _ = found.send(key.trim().to_owned());
                }
            }
        }
    });
    let key = key.await.expect("the demo key is printed");
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let base = format!("http://127.0.0.1:{port}");
    // A new connection for every request: no request can meet a kept-alive connection the
    // server is closing while idle, so a request error means one of two things, told apart below.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for sender in 0..16 {
        let (client, base, key, stop) = (client.clone(), base.clone(), key.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let tag = format!("sigterm-{sender}-{n}");
                let sent = client
                    .post(format!("{base}/v1/messages"))
                    .bearer_auth(&key)
                    .json(&json!({"from": "+15551112222", "to": "+15554443333", "text": "before the stop", "tag": tag}))
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                        match response.bytes().await {
                            Ok(_) => Outcome::Answered(status, id),
                            Err(err) => Outcome::Cut(format!("{err:?}")),
                        }
                    }
                    Err(err) => match refused(&err) {
                        true => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            Outcome::Refused
                        }
                        false => Outcome::Cut(format!("{err:?}")),
                    },
                };
                outcomes.push((tag, outcome));
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped_at = std::time::Instant::now();
    // SAFETY: kill sends a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    let took = stopped_at.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for sender in senders {
        outcomes.extend(sender.await.expect("a sender panicked"));
    }
    assert!(status.success(), "{status:?}");
    assert!(took <= Duration::from_secs(15), "stopping took {took:?}");
    let cut: Vec<_> = outcomes
        .iter()
        .filter_map(|(tag, o)| match o {
            Outcome::Cut(err) => Some((tag, err)),
            _ => None,
        })
        .collect();
    assert!(
        cut.is_empty(),
        "requests the server had read were cut without an answer: {cut:?}"
    );
    let answered: Vec<(u16, String)> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Answered(status, id) => Some((*status, id.clone())),
            _ => None,
        })
        .collect();
    assert!(answered.len() > 16, "{} answers", answered.len());
    assert!(
        outcomes.iter().any(|(_, o)| matches!(o, Outcome::Refused)),
        "no request met the stopped listener: the test did not reach the stop"
    );
    // The demo organization's rate limit (10/s) answers most of them 429: an answer all the same.
    assert!(answered.iter().any(|(status, _)| *status == 202));
    assert!(
        answered
            .iter()
            .all(|(status, _)| [202, 429].contains(status)),
        "{:?}",
        answered
            .iter()
            .filter(|(s, _)| ![202, 429].contains(s))
            .collect::<Vec<_>>()
    );
    // The database agrees with the clients: exactly the sends answered 202 were stored (a request
    // refused before the server read it was not; one stored but never answered would be here).
    let accepted: std::collections::BTreeSet<&str> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Answered(202, _)))
        .map(|(tag, _)| tag.as_str())
        .collect();
    let store =
        agentmessage::store::Store::connect(&format!("sqlite://{}/ops.db", dir.path().display()))
            .await
            .unwrap();
    use sea_orm::ConnectionTrait;
    let stored: std::collections::BTreeSet<String> = store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT tag FROM messages WHERE tag LIKE 'sigterm-%'",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "tag").unwrap())
        .collect();
    let stored: std::collections::BTreeSet<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(
        stored, accepted,
        "stored sends and sends answered 202 differ"
    );
    // JSON logs: every line an object; each request's access line carries its id.
    let lines = logs.join().unwrap();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let ids: std::collections::HashSet<&str> = parsed
        .iter()
        .filter(|l| l["target"] == "agentmessage::access")
        .filter_map(|l| l["span"]["request_id"].as_str())
        .collect();
    for (_, id) in &answered {
        assert!(ids.contains(id.as_str()), "no log line of request {id}");
    }
}

/// Another connection holds SQLite's lock (`BEGIN EXCLUSIVE`): sends — ten at once, queued at
/// the process's write gate — answer 503 with `Retry-After` within the busy timeout and a
/// second, `/readyz` says the database is locked, and once the lock is released a send is 202
/// and `/readyz` is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_within_the_busy_timeout_and_recovers() {
    use sea_orm::sqlx::{Connection, Executor};
    let busy = Duration::from_secs(1);
    let app = TestApp::start_with_store(
        Backend::Sqlite,
        Default::default(),
        agentmessage::store::StoreSettings {
            busy_timeout: busy,
            ..Default::default()
        },
    )
    .await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let base = ops(app.services.clone(), Role::Api).await;
    let ready = || async {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let send = || {
        app.call(
            Method::POST,
            "/v1/messages",
            Some(&org.key),
            Some(json!({"from": "+15551112222", "to": "+15554443333", "text": "locked?"})),
        )
    };
    let mut holder = sea_orm::sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    holder.execute("BEGIN EXCLUSIVE").await.unwrap();
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..10).map(|_| async {
        let reply = send().await;
        (reply, started.elapsed())
    }))
    .await;
    for (reply, took) in &answers {
        reply.assert_error(503, "SERVICE_UNAVAILABLE");
        assert!(reply.header("retry-after").is_some());
        assert!(
            *took < busy + Duration::from_secs(1),
            "a send waited {took:?} with a busy timeout of {busy:?}"
        );
    }
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    eprintln!("locked database: ten sends answered 503, the slowest after {slowest:?} (busy timeout {busy:?})");
    let (status, body) = ready().await;
    assert_eq!(
        (status, body["checks"]["database"].clone()),
        (503, json!("locked by another process"))
    );
    holder.execute("ROLLBACK").await.unwrap();
    drop(holder);
    // A write finds the lock gone within a quarter of a second (one looks at a time).
    let released = std::time::Instant::now();
    loop {
        let reply = send().await;
        if reply.status.as_u16() == 202 {
            break;
        }
        reply.assert_error(503, "SERVICE_UNAVAILABLE");
        assert!(
            released.elapsed() < busy,
            "no send went through after the release"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready().await.0, 200);
}

/// The database file removed under the running server: within five seconds `/readyz` says so
/// and a send answers 503 — never a 202 that a restart would not find — and no read is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_database_file_is_noticed_and_nothing_is_accepted() {
    let app = TestApp::start(Backend::Sqlite).await;
    let org = app.sender("+15551112222", "+15554443333").await;
    let base = ops(app.services.clone(), Role::Api).await;
    let file = app
        .database_url
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }
    let removed = std::time::Instant::now();
    loop {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        if r.status() == 503 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body["checks"]["database"],
                json!("the database file was removed or replaced")
            );
            break;
        }
        assert!(
            removed.elapsed() < Duration::from_secs(5),
            "/readyz still ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = app
        .call(
            Method::POST,
            "/v1/messages",
            Some(&org.key),
            Some(json!({"from": "+15551112222", "to": "+15554443333", "text": "gone?"})),
        )
        .await;
    reply.assert_error(503, "SERVICE_UNAVAILABLE");
    for _ in 0..10 {
        let reply = app
            .call(Method::GET, "/v1/numbers", Some(&org.key), None)
            .await;
        reply.assert_error(503, "SERVICE_UNAVAILABLE");
    }
}
