//! MM7 over TLS: the carrier verifies the MMSC's certificate against the CA of `--mm7-tls-ca`,
//! and submits nothing to one that CA did not sign (the MMS is deferred, not sent).

use std::path::Path;

use crate::{mm7_settings, support::Backend, Mm7App, Mmsc};

/// A self-signed certificate for 127.0.0.1 and its key, written to `dir` as PEM files; their
/// paths.
fn identity(dir: &Path, name: &str) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mmsc_of_the_configured_ca_gets_the_submission_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = identity(dir.path(), "mmsc");
    let mut mmsc = Mmsc::start_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let mut settings = mm7_settings(&mmsc);
    assert!(settings.url.starts_with("https://"));
    settings.tls_ca = Some(cert.into());
    let app = Mm7App::start_with(Backend::Sqlite, settings).await;
    let id = app.send_mms("over TLS", &["cat.png"]).await;
    mmsc.next_submission().await;
    let sent = app.wait(&id, |s| s != "queued" && s != "sending").await;
    assert_eq!(sent["status"], "sent", "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mmsc_whose_certificate_the_ca_did_not_sign_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = identity(dir.path(), "mmsc");
    let (other, _) = identity(dir.path(), "other");
    let mut mmsc = Mmsc::start_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let mut settings = mm7_settings(&mmsc);
    settings.tls_ca = Some(other.into());
    let app = Mm7App::start_with(Backend::Sqlite, settings).await;
    let id = app.send_mms("not to a stranger", &["cat.png"]).await;
    // Deferred (the handshake failed before anything was written), again and again.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = app.events(&id).await;
        let deferred: Vec<_> = events.iter().filter(|e| e["kind"] == "deferred").collect();
        if deferred.len() >= 2 {
            assert_eq!(deferred[0]["err"], "CONNECT", "{events:#?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{events:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let shown = app.wait(&id, |_| true).await;
    assert!(
        matches!(shown["status"].as_str(), Some("queued" | "sending")),
        "{shown}"
    );
    mmsc.drain();
    assert!(mmsc.submissions.is_empty(), "{:?}", mmsc.submissions);
}
