//! Webhook signatures checked by an implementation this project did not write: the
//! `standardwebhooks` npm package (pinned in tests/tools), for one secret and for the two that
//! sign during a rotation; a changed body or timestamp fails its check.

use std::io::Write;
use std::process::{Command, Stdio};

use agentmessage::domain::webhooks::{new_secret, signature_header};
use serde_json::{json, Value};

use crate::tools;

/// Runs the package's `Webhook.verify` over `cases` (secret, id, timestamp, body, signature
/// header); `true` for each one it accepts.
pub(crate) fn verify_with_standardwebhooks(cases: &[Value]) -> Vec<bool> {
    let bin = tools::tool_dir("node");
    let dir = bin.parent().and_then(|p| p.parent()).unwrap().to_owned();
    let script = r#"
        const { Webhook } = require('standardwebhooks');
        let input = '';
        process.stdin.on('data', (d) => (input += d));
        process.stdin.on('end', () => {
          const results = JSON.parse(input).map((c) => {
            try {
              new Webhook(c.secret).verify(c.body, {
                'webhook-id': c.id,
                'webhook-timestamp': String(c.timestamp),
                'webhook-signature': c.signature,
              });
              return true;
            } catch (e) {
              return false;
            }
          });
          process.stdout.write(JSON.stringify(results));
        });
    "#;
    let mut child = Command::new("node")
        .args(["-e", script])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(cases.to_vec()).to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("a JSON array of results")
}

#[test]
fn the_standardwebhooks_package_verifies_our_signatures_including_during_a_rotation() {
    let now = chrono::Utc::now().timestamp();
    let (old, new) = (new_secret(), new_secret());
    let body = json!({"id": "evt_01JTBQH2FZ8K1RXC0WJ4Z9P3VM", "type": "message.delivered", "data": {"text": "héllo ✓"}}).to_string();
    let id = "evt_01JTBQH2FZ8K1RXC0WJ4Z9P3VM";
    let single = signature_header(&[&new], id, now, &body).unwrap();
    let rotating = signature_header(&[&old, &new], id, now, &body).unwrap();
    assert_eq!(rotating.split(' ').count(), 2);
    let case = |secret: &str, body: &str, timestamp: i64, signature: &str| json!({"secret": secret, "id": id, "timestamp": timestamp, "body": body, "signature": signature});
    let results = verify_with_standardwebhooks(&[
        case(&new, &body, now, &single),
        case(&old, &body, now, &rotating),
        case(&new, &body, now, &rotating),
        // Refused: another secret, a changed body, a changed timestamp.
        case(&old, &body, now, &single),
        case(&new, &body.replace("héllo", "hello"), now, &single),
        case(&new, &body, now - 1, &single),
    ]);
    assert_eq!(results, vec![true, true, true, false, false, false]);
}
