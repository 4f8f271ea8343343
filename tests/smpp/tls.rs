//! SMPP over TLS: the session verifies the SMSC's certificate against the CA of
//! `--smpp-tls-ca` and refuses one it does not trust.

use std::{sync::Arc, time::Duration};

use agentmessage::delivery::Carrier;

use crate::{quick_settings, quick_worker, smsc::Smsc, support::json, SmppApp, FROM};

/// An SMSC's TLS acceptor with a fresh self-signed certificate for 127.0.0.1, and that
/// certificate as PEM.
fn tls_smsc_identity() -> (tokio_rustls::TlsAcceptor, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key =
        rustls_pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        certified.cert.pem(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_session_binds_to_an_smsc_of_the_configured_ca_and_delivers() {
    let (acceptor, pem) = tls_smsc_identity();
    let smsc = Smsc::start_tls(acceptor).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smsc-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let mut settings = quick_settings(smsc.addr);
    settings.tls = true;
    settings.tls_ca = Some(ca);
    let app = SmppApp::start(crate::support::Backend::Sqlite, settings, quick_worker()).await;
    let to = "+12125550100";
    let org = app.app.sender(FROM, to).await;
    let id = app.send(&org.key, to, "over TLS").await;
    assert_eq!(
        app.final_status(&org.key, &id).await["status"],
        json!("delivered")
    );
    assert_eq!(smsc.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smsc_whose_certificate_the_ca_did_not_sign_is_never_bound() {
    let (acceptor, _) = tls_smsc_identity();
    let (_, other_pem) = tls_smsc_identity();
    let smsc = Smsc::start_tls(acceptor).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, other_pem).unwrap();
    let mut settings = quick_settings(smsc.addr);
    settings.tls = true;
    settings.tls_ca = Some(ca);
    let app = SmppApp::start_with(
        crate::support::Backend::Sqlite,
        settings,
        quick_worker(),
        false,
    )
    .await;
    // The carrier tried: a TLS handshake reached the SMSC and failed (twice, so a retry too).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while smsc.failed_handshakes() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the carrier did not try to connect ({} failed handshakes)",
            smsc.failed_handshakes()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.carrier.health().bound, 0);
    assert_eq!(smsc.binds(), 0, "no bind reached the SMSC");
}
