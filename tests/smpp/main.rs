//! The SMPP carrier end to end: the app, its worker and an `SmppCarrier` bound to an SMSC on
//! loopback — an SMSC this project did not write (the `smpp` npm package, `interop`), and a
//! controllable one built on rusmpp (`smsc`) for the faults. In their own test binary so that the
//! sessions and timers neither disturb nor are disturbed by the rest of the suite.

#[allow(dead_code, unused_macros, unused_imports)]
#[macro_use]
#[path = "../http/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "../common/tools.rs"]
mod tools;

mod faults;
mod inbound;
mod interop;
mod smsc;
mod test_mode;
mod tls;

use agentmessage::delivery::registry::CarrierKind;
use std::{net::SocketAddr, sync::Arc, time::Duration};

use agentmessage::{
    delivery::{Carrier, SimulatedCarrier, SmppCarrier, SmppSettings, Worker, WorkerSettings},
    service::Settings,
};
use reqwest::Method;
use serde_json::Value;
use support::{json, Backend, TestApp};

pub const FROM: &str = "+15551112222";

/// An app whose live carrier is SMPP, with a worker running; the worker stops when dropped.
pub struct SmppApp {
    pub app: TestApp,
    pub carrier: Arc<SmppCarrier>,
    worker: Option<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for SmppApp {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}

/// Short timers, so that no test waits on a production default.
pub fn quick_settings(addr: SocketAddr) -> SmppSettings {
    let mut settings = SmppSettings::new(addr.to_string(), "agentmessage");
    settings.password = "secret".into();
    settings.enquire_link = Duration::from_secs(1);
    settings.response_timeout = Duration::from_secs(2);
    settings.reconnect_min = Duration::from_millis(50);
    settings.reconnect_max = Duration::from_millis(300);
    settings.throttle_pause = Duration::from_millis(50);
    settings.reassembly_timeout = Duration::from_millis(500);
    settings.close_timeout = Duration::from_secs(1);
    settings
}

pub fn quick_worker() -> WorkerSettings {
    WorkerSettings {
        poll: Duration::from_millis(20),
        sweep_every: Duration::from_millis(100),
        retry_backoff: Duration::from_millis(100),
        ..Default::default()
    }
}

impl SmppApp {
    pub async fn start(backend: Backend, smpp: SmppSettings, worker: WorkerSettings) -> SmppApp {
        Self::start_with(backend, smpp, worker, true).await
    }

    /// `wait_bound`: wait until a session is bound before returning.
    pub async fn start_with(
        backend: Backend,
        smpp: SmppSettings,
        worker: WorkerSettings,
        wait_bound: bool,
    ) -> SmppApp {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env(
                "AGENTMESSAGE_TEST_LOG",
            ))
            .with_test_writer()
            .try_init();
        let settings = Settings {
            carrier_name: CarrierKind::Smpp.name().into(),
            // As `serve --carrier smpp` decides it: from the carrier's own capabilities.
            mms_supported: CarrierKind::Smpp.capabilities().mms,
            ..Settings::default()
        };
        let app = TestApp::start_with(backend, settings).await;
        let carrier = SmppCarrier::start(app.services.clone(), "smpp", smpp);
        let test = Arc::new(
            SimulatedCarrier::new(app.services.clone(), Duration::from_millis(50)).named("test"),
        );
        let worker =
            Worker::new(app.services.clone(), carrier.clone(), worker).with_test_carrier(test);
        app.services.report_carrier(worker.health_probe());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        let smpp_app = SmppApp {
            app,
            carrier,
            worker: Some(handle),
            stop: Some(stop),
        };
        if wait_bound {
            smpp_app.wait_bound(1).await;
        }
        smpp_app
    }

    /// Waits until `n` sessions are bound.
    pub async fn wait_bound(&self, n: u32) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.carrier.health().bound < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no SMPP session bound: {:?}",
                self.carrier.health()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the worker the way a process stops (the carrier unbinds), and waits for it.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(worker) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(10), worker)
                .await
                .expect("the worker stops within its bound")
                .expect("the worker ends cleanly");
        }
    }

    /// Sends `text` from [`FROM`] to `to` with `key`; the message's id.
    pub async fn send(&self, key: &str, to: &str, text: &str) -> String {
        let reply = self
            .app
            .send(key, json!({"from": FROM, "to": to, "text": text}))
            .await;
        reply.assert_success(202)["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the message is in a final status; its data.
    pub async fn final_status(&self, key: &str, id: &str) -> Value {
        self.app
            .wait_for(key, id, Duration::from_secs(15), |s| {
                matches!(s, "delivered" | "undelivered" | "failed")
            })
            .await
    }

    /// The message's events as (kind, status, err).
    pub async fn events(&self, key: &str, id: &str) -> Vec<(String, String, Option<String>)> {
        let reply = self
            .app
            .call(
                Method::GET,
                &format!("/v1/messages/{id}/events"),
                Some(key),
                None,
            )
            .await;
        reply
            .assert_success(200)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_owned(),
                    e["status"].as_str().unwrap().to_owned(),
                    e["err"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
}
