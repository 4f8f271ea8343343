//! `agentmessage-load`: a load run against a deployment's send path. It sends `--requests`
//! messages from `--concurrency` connections to fictional test numbers and reports throughput,
//! latency percentiles, statuses and (with `--pid`, on Linux) the server's memory.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Parser;
use conformance::ctx::{fictional, random_area};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "agentmessage-load",
    version,
    about = "Load-test the send path of an AgentMessage deployment"
)]
struct Cli {
    /// The deployment, e.g. http://127.0.0.1:8080; repeated for several API processes of one
    /// deployment, which then take the sends in turn.
    #[arg(long, required = true)]
    base_url: Vec<String>,
    /// A key with messages:send, consents:write and numbers:read, of an organization that owns
    /// a number and whose rate limit is above the load.
    #[arg(long, env = "AGENTMESSAGE_LOAD_API_KEY")]
    api_key: String,
    /// Sends to make (after a warm-up of 200).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The server's process id, to report its memory (Linux /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// Webhook endpoints to register, each subscribed to every event, each a receiver of this
    /// tool's own on loopback (the deployment must allow private destinations, and the key
    /// needs webhooks:write). The run then also waits for and reports their deliveries.
    #[arg(long, default_value_t = 0)]
    webhook_endpoints: usize,
    /// Webhook endpoints to register besides those, subscribed to every event, at a loopback
    /// address that accepts connections and never answers: with them the run measures what a
    /// dead endpoint costs the healthy ones (`scripts/bench --webhooks N` reports the healthy
    /// deliveries' delays).
    #[arg(long, default_value_t = 0)]
    dead_webhook_endpoints: usize,
    /// Sends per second to offer (spread evenly); unset, as fast as the connections go.
    #[arg(long)]
    rate: Option<f64>,
    /// The server's `/metrics` (its operations listener): with it, the run also reports how fast
    /// the worker delivered while the sends arrived (drain ÷ intake).
    #[arg(long)]
    metrics_url: Option<String>,
    /// With `--metrics-url` (of the process that runs the worker): how long, at most, every
    /// message sent may take after the sends to reach a final status (delivered, undelivered or
    /// failed); the run reports how long it took and fails past it. Unset: not waited for.
    #[arg(long, value_parser = humantime::parse_duration)]
    final_wait: Option<Duration>,
    /// How long to wait, after the sends, for the webhook deliveries.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    webhook_wait: Duration,
}

/// `VmHWM` (peak) and `VmRSS` (now) of a process, in KiB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Sends one message; answers its status (0 when no answer came).
#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
    bases: Vec<String>,
    key: String,
    from: String,
    recipients: Vec<String>,
}

impl Sender {
    async fn send(&self, i: usize) -> u16 {
        let body = json!({
            "from": self.from,
            "to": self.recipients[i % self.recipients.len()],
            "text": format!("load test message {i}"),
            "tag": "load"
        });
        match self
            .http
            .post(format!("{}/v1/messages", self.bases[i % self.bases.len()]))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                status
            }
            Err(_) => 0,
        }
    }
}

/// One sample of the server's `/metrics`, summed over the series named `name` whose line
/// starts with one of `series` (label sets included).
async fn metric(http: &reqwest::Client, url: &str, series: &[&str]) -> anyhow::Result<f64> {
    let text = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter_map(|l| {
            series
                .iter()
                .find_map(|s| l.strip_prefix(s).and_then(|v| v.strip_prefix(' ')))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum())
}

/// The server's count of messages that reached `delivered`.
async fn delivered(http: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    metric(
        http,
        url,
        &["agentmessage_messages_total{status=\"delivered\"}"],
    )
    .await
}

/// The server's count of messages that reached a final status.
async fn finished(http: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    metric(
        http,
        url,
        &[
            "agentmessage_messages_total{status=\"delivered\"}",
            "agentmessage_messages_total{status=\"undelivered\"}",
            "agentmessage_messages_total{status=\"failed\"}",
        ],
    )
    .await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(cli.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let bases: Vec<String> = cli
        .base_url
        .iter()
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect();
    let base = bases[0].clone();
    let numbers: Value = http
        .get(format!("{base}/v1/numbers"))
        .bearer_auth(&cli.api_key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let from = numbers["data"][0]["phone_number"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the key's organization owns no number"))?
        .to_owned();
    let area = random_area();
    let recipients: Vec<String> = (0..10).map(|i| fictional(area, i)).collect();
    for to in &recipients {
        http.put(format!("{base}/v1/consents/{to}"))
            .bearer_auth(&cli.api_key)
            .json(&json!({"source": "api"}))
            .send()
            .await?
            .error_for_status()?;
    }

    let mut receivers = Vec::new();
    for _ in 0..cli.webhook_endpoints {
        let receiver = conformance::listener::Listener::start("127.0.0.1:0".parse()?)?;
        http.post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(&cli.api_key)
            .json(&json!({
                "url": receiver.url,
                "events": ["message.sent", "message.delivered", "message.undelivered", "message.failed", "message.received", "consent.updated"],
                "description": "agentmessage-load"
            }))
            .send()
            .await?
            .error_for_status()?;
        receivers.push(receiver);
    }

    // Dead endpoints: one listener that takes every connection and never answers.
    if cli.dead_webhook_endpoints > 0 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/dead", listener.local_addr()?);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().map_while(Result::ok) {
                held.push(stream);
            }
        });
        for n in 0..cli.dead_webhook_endpoints {
            http.post(format!("{base}/v1/webhook_endpoints"))
                .bearer_auth(&cli.api_key)
                .json(&json!({
                    "url": format!("{url}/{n}"),
                    "events": ["message.sent", "message.delivered", "message.undelivered", "message.failed", "message.received", "consent.updated"],
                    "description": "agentmessage-load: never answers"
                }))
                .send()
                .await?
                .error_for_status()?;
        }
    }

    let sender = Sender {
        http: http.clone(),
        bases: bases.clone(),
        key: cli.api_key.clone(),
        from,
        recipients,
    };
    let finished_before = match &cli.metrics_url {
        Some(url) => finished(&http, url).await?,
        None => 0.0,
    };
    for i in 0..200 {
        sender.send(i).await;
    }

    let delivered_before = match &cli.metrics_url {
        Some(url) => Some(delivered(&http, url).await?),
        None => None,
    };
    // The queue's depth, sampled every half second while the sends go on.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = cli.metrics_url.clone().map(|url| {
        let (http, sampling) = (http.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut depths = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Ok(depth) = metric(&http, &url, &["agentmessage_queue_depth"]).await {
                    depths.push(depth);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            depths
        })
    });
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cli.concurrency {
        let next = next.clone();
        let sender = sender.clone();
        let total = cli.requests;
        let rate = cli.rate;
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return results;
                }
                if let Some(rate) = rate {
                    let slot = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(slot.into()).await;
                }
                let at = Instant::now();
                let status = sender.send(i).await;
                results.push((status, at.elapsed()));
            }
        }));
    }
    let mut results: Vec<(u16, Duration)> = Vec::with_capacity(cli.requests);
    for task in tasks {
        results.extend(task.await?);
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let depths = match sampler {
        Some(task) => task.await?,
        None => Vec::new(),
    };
    let delivered_during = match (&cli.metrics_url, delivered_before) {
        (Some(url), Some(before)) => Some(delivered(&http, url).await? - before),
        _ => None,
    };

    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    let mut statuses = std::collections::BTreeMap::new();
    for (status, _) in &results {
        *statuses.entry(*status).or_insert(0usize) += 1;
    }
    let accepted = statuses.get(&202).copied().unwrap_or(0);
    println!(
        "sends: {} in {:.2} s with {} in flight",
        results.len(),
        elapsed.as_secs_f64(),
        cli.concurrency
    );
    println!(
        "throughput: {:.0} sends/s ({:.0} accepted/s)",
        results.len() as f64 / elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "statuses: {}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(drained) = delivered_during {
        let intake = accepted as f64 / elapsed.as_secs_f64();
        let drain = drained / elapsed.as_secs_f64();
        println!(
            "drain: {drain:.0} delivered/s while {intake:.0} sends/s arrived (drain ÷ intake {:.2})",
            drain / intake.max(f64::MIN_POSITIVE)
        );
    }
    if !depths.is_empty() {
        let third = depths.len() / 3;
        let max = |d: &[f64]| d.iter().copied().fold(0.0, f64::max);
        println!(
            "queue depth while sending: max {:.0}; max in the first third {:.0}, in the last third {:.0} ({} samples)",
            max(&depths),
            max(&depths[..third.max(1).min(depths.len())]),
            max(&depths[depths.len() - third.max(1).min(depths.len())..]),
            depths.len()
        );
    }
    if let (Some(url), Some(bound)) = (&cli.metrics_url, cli.final_wait) {
        // Every message sent, the warm-up's included, reaches a final status.
        let expected = (accepted + 200) as f64;
        let ended = started + elapsed;
        let mut done = finished(&http, url).await? - finished_before;
        while done < expected && ended.elapsed() < bound {
            tokio::time::sleep(Duration::from_millis(100)).await;
            done = finished(&http, url).await? - finished_before;
        }
        if done < expected {
            anyhow::bail!(
                "{} of {} messages had no final status {:?} after the sends",
                expected - done,
                expected,
                bound
            );
        }
        println!(
            "final status: all {} messages within {:.1} s after the sends ended",
            expected,
            ended.elapsed().as_secs_f64()
        );
    }
    if let Some((peak, now)) = cli.pid.and_then(memory) {
        println!(
            "server memory: peak {:.1} MiB, now {:.1} MiB",
            peak as f64 / 1024.0,
            now as f64 / 1024.0
        );
    }
    if !receivers.is_empty() {
        // Each message makes two events (sent, delivered) for every endpoint.
        let expected = 2 * (results.len() + 200);
        let deadline = Instant::now() + cli.webhook_wait;
        while Instant::now() < deadline && receivers.iter().any(|r| r.got().len() < expected) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sends_ended = started + elapsed;
        for (n, receiver) in receivers.iter().enumerate() {
            let arrivals: Vec<Instant> = receiver.got().iter().map(|g| g.at).collect();
            let during = arrivals.iter().filter(|a| **a <= sends_ended).count();
            let last = arrivals.iter().max().copied().unwrap_or(sends_ended);
            println!(
                "webhook endpoint {}: {} of {} events; {:.0}/s while sending; the last {:.2} s after the sends ended",
                n + 1,
                arrivals.len(),
                expected,
                during as f64 / elapsed.as_secs_f64(),
                last.saturating_duration_since(sends_ended).as_secs_f64()
            );
        }
        if receivers.iter().any(|r| r.got().len() < expected) {
            anyhow::bail!(
                "webhook deliveries were missing after {:?}",
                cli.webhook_wait
            );
        }
    }
    if accepted != results.len() {
        anyhow::bail!(
            "{} of {} sends were not accepted",
            results.len() - accepted,
            results.len()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
