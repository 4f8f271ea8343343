//! `agentmessage-conformance replay DIR --id ID --base-url …`: re-sends the requests that decided
//! one pair in a run's evidence (`--out DIR`) and compares the answers with the recorded ones:
//! the same status, and a body that keeps the spec's contract. Credentials come from the
//! command line in place of their labels (`<api-key>`, `<carrier-secret>`); a key the run
//! minted (`<minted-key numbers:read>`) is minted again with the same scopes, and revoked after.
//! Resources a request names (a message id) must exist in the deployment replayed against.

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::{
    check::check_response,
    client::{Auth, Request, Target},
    schema::Schemas,
    Spec,
};

/// What one replayed request came to.
#[derive(Debug)]
pub struct Replayed {
    pub request: String,
    pub recorded: u16,
    pub now: Option<u16>,
    pub problems: Vec<String>,
}

impl Replayed {
    pub fn same(&self) -> bool {
        self.now == Some(self.recorded) && self.problems.is_empty()
    }
}

/// The pair's recorded exchanges (HAR entries) in `dir`'s `results.json`, and the base URL
/// they were sent to.
pub fn recorded(dir: &std::path::Path, id: &str) -> anyhow::Result<(String, Vec<Value>)> {
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let results: Value = serde_json::from_str(&text).context("results.json is not JSON")?;
    let base = results["base_url"].as_str().unwrap_or_default().to_owned();
    let pair = results["pairs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == id)
        .ok_or_else(|| anyhow!("{} has no pair {id}", path.display()))?;
    let entries: Vec<Value> = pair["exchanges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["_webhook"] != true)
        .collect();
    if entries.is_empty() {
        bail!(
            "{id} has no recorded exchanges to replay (its verdict: {})",
            pair["verdict"]
        );
    }
    Ok((base, entries))
}

/// The credential an entry's `authorization` label stands for.
enum Credential {
    None,
    Main,
    Carrier,
    Mm7,
    Minted(Vec<String>),
    Literal(String),
}

fn credential(entry: &Value) -> anyhow::Result<Credential> {
    let header = entry["request"]["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| {
            h["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
        })
        .and_then(|h| h["value"].as_str());
    let Some(value) = header else {
        return Ok(Credential::None);
    };
    if value == format!("Basic {}", crate::evidence::MM7_LABEL) {
        return Ok(Credential::Mm7);
    }
    let token = value.strip_prefix("Bearer ").unwrap_or(value);
    Ok(match token {
        "<api-key>" => Credential::Main,
        "<carrier-secret>" => Credential::Carrier,
        t if t.starts_with("<minted-key ") => Credential::Minted(
            t.trim_start_matches("<minted-key ")
                .trim_end_matches('>')
                .split(',')
                .map(str::to_owned)
                .collect(),
        ),
        t if t.contains("<redacted>") => {
            bail!("the request carried a key the run made and the evidence hides ({t})")
        }
        t => Credential::Literal(t.to_owned()),
    })
}

/// Rebuilds the request of a HAR entry recorded against `base`.
fn request_of(entry: &Value, base: &str, auth: Auth) -> anyhow::Result<(Request, bool)> {
    let har = &entry["request"];
    let url = har["url"].as_str().unwrap_or_default();
    let path = url.strip_prefix(base).unwrap_or(url).to_owned();
    let mut request = Request::new(har["method"].as_str().unwrap_or("GET"), path).auth(auth);
    let mut content_type = None;
    let mut stalled = false;
    for h in har["headers"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (h["name"].as_str(), h["value"].as_str()) else {
            continue;
        };
        match name.to_ascii_lowercase().as_str() {
            "authorization" => {}
            "content-type" => content_type = Some(value.to_owned()),
            // Only the stalled-body case declares its own length (it sends less).
            "content-length" => stalled = true,
            _ => request = request.header(name, value),
        }
    }
    if let Some(post) = har.get("postData") {
        let bytes = match post["_base64"].as_str() {
            Some(b64) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b64)?
            }
            None => post["text"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
        };
        request = request.raw(content_type.as_deref(), bytes);
    }
    Ok((request, stalled))
}

/// Replays the pair `id` recorded in `dir` against `target`, holding answers to `spec`.
pub fn replay(
    dir: &std::path::Path,
    id: &str,
    target: &Target,
    spec: &Spec,
    carrier_secret: Option<&str>,
    mm7_credentials: Option<&(String, String)>,
    stall_wait: std::time::Duration,
) -> anyhow::Result<Vec<Replayed>> {
    let (base, entries) = recorded(dir, id)?;
    let schemas = Schemas::new(&spec.doc);
    let op = crate::pairs::parse_id(id).and_then(|(op, _)| spec.operation(&op).cloned());
    let mut minted: Vec<String> = vec![];
    let mut out = vec![];
    for entry in &entries {
        let auth = match credential(entry)? {
            Credential::None => Auth::None,
            Credential::Main => Auth::Main,
            Credential::Literal(key) => Auth::Key(key),
            Credential::Carrier => Auth::Key(
                carrier_secret
                    .ok_or_else(|| {
                        anyhow!("the request carried the carrier's secret: give --carrier-secret")
                    })?
                    .to_owned(),
            ),
            Credential::Mm7 => {
                let (user, password) = mm7_credentials.ok_or_else(|| {
                    anyhow!(
                        "the request carried the MMS centre's credentials: give --mm7-credentials"
                    )
                })?;
                Auth::Basic(user.clone(), password.clone())
            }
            Credential::Minted(scopes) => {
                let made = target.send(
                    &Request::new("POST", "/v1/api_keys")
                        .json(json!({"name": "conformance replay", "scopes": scopes})),
                )?;
                let data = made.json.map(|b| b["data"].clone()).unwrap_or_default();
                let (Some(key_id), Some(key)) = (data["id"].as_str(), data["key"].as_str()) else {
                    bail!(
                        "could not mint a key with {scopes:?} to replay with: {}",
                        made.status
                    );
                };
                minted.push(key_id.to_owned());
                Auth::Key(key.to_owned())
            }
        };
        let (request, stalled) = request_of(entry, &base, auth)?;
        let recorded = entry["response"]["status"].as_u64().unwrap_or_default() as u16;
        let answer = if stalled {
            target.send_stalled_body(&request.path, stall_wait)
        } else {
            target.send(&request)
        };
        let (now, problems) = match answer {
            Ok(response) => (
                Some(response.status),
                check_response(spec, &schemas, op.as_ref(), &response),
            ),
            Err(err) => (None, vec![format!("{err:#}")]),
        };
        out.push(Replayed {
            request: request.describe(),
            recorded,
            now,
            problems,
        });
    }
    for key_id in minted {
        let _ = target.send(&Request::new("DELETE", format!("/v1/api_keys/{key_id}")));
    }
    Ok(out)
}
