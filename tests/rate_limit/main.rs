//! One organization's rate limit across two API processes on PostgreSQL, in its own test binary
//! (ten seconds of timing-sensitive load; nothing else runs beside it): both offered well above
//! the limit R/s with burst B, together they accept between 0.9 × R × 10 and 1.1 × (R × 10 + B)
//! in ten seconds.

#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../http/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use agentmessage::{service::Services, store::Store};
use serde_json::json;

use support::{Backend, TestApp};

const RATE: u32 = 40;
const BURST: u32 = 20;
const SECONDS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_processes_on_postgresql_share_one_organizations_limit() {
    let app = TestApp::start(Backend::Postgres).await;
    // The second process: its own pool and its own limiter state, on the same database.
    let other = Services::new(
        Store::connect(&app.database_url).await.unwrap(),
        Default::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(agentmessage::server::serve(
        listener,
        agentmessage::app(other),
        Default::default(),
        std::future::pending(),
    ));
    let org = app.org_with_rate(RATE, BURST).await;
    // Sends from a number the organization does not own: each spends a token and is then
    // refused (422), so the run makes no message; 429 is the limit.
    let body = json!({"from": "+15559990000", "to": "+12125550100", "text": "over the limit"});
    let accepted = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let end = Instant::now() + Duration::from_secs(SECONDS);
    let mut senders = Vec::new();
    for base in [app.base.clone(), second.clone()] {
        for _ in 0..4 {
            let (client, base, key, body) =
                (client.clone(), base.clone(), org.key.clone(), body.clone());
            let (accepted, limited) = (accepted.clone(), limited.clone());
            senders.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let status = client
                        .post(format!("{base}/v1/messages"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16();
                    match status {
                        422 => accepted.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("answered {other}"),
                    };
                }
            }));
        }
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let (accepted, limited) = (
        accepted.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
    );
    let low = 0.9 * f64::from(RATE) * SECONDS as f64;
    let high = 1.1 * (f64::from(RATE) * SECONDS as f64 + f64::from(BURST));
    eprintln!("two processes, limit {RATE}/s burst {BURST}: {accepted} accepted and {limited} refused with 429 in {SECONDS} s (allowed {low:.0}..={high:.0})");
    assert!(
        limited > accepted,
        "both processes were offered well above the limit"
    );
    assert!(
        (low..=high).contains(&(accepted as f64)),
        "{accepted} accepted"
    );
}
