//! Webhook endpoints' cases — register (with `Idempotency-Key`), list, read, change, rotate,
//! deliveries and retry, delete — and, with `--webhook-listen`, the suite's own events received
//! on a listener of its own: each signed (Standard Webhooks), each `webhook-id` once, each
//! message's events in `sequence` order, each number's consent events in time order.

use std::{
    collections::{BTreeMap, HashMap},
    time::Instant,
};

use serde_json::{json, Value};

use crate::{
    cases::{idempotency::idempotent_operation, limits::limit_reached},
    client::Request,
    ctx::{code_is, data_of, details_name, fictional, numbers, Ctx},
    listener::{signature_verifies, Listener},
    pairs::webhook_row,
};

const CREATE: &str = "webhook_endpoints_create";
/// The description of every endpoint the suite registers (cleanup deletes them by it).
pub const MARK: &str = "agentmessage conformance";
/// Where the suite's endpoints point when no listener is given (never called: nothing the
/// suite subscribes them to is delivered without a worker, and a delivery there is harmless).
const NOWHERE: &str = "https://example.com/agentmessage-conformance/webhooks";

/// Every event type the spec documents that an endpoint can subscribe to (all but the test
/// event, which goes only to the endpoint it is asked for).
fn every_event(spec: &crate::Spec) -> Value {
    Value::Array(
        spec.webhook_events
            .iter()
            .filter(|event| event.as_str() != "webhook.test")
            .map(|event| Value::String(event.clone()))
            .collect(),
    )
}

/// Registers the listener's endpoint (subscribed to everything) before the other cases run, so
/// that their changes become its events. Without a listener, only probes the deployment.
pub fn begin(ctx: &mut Ctx) {
    let probe = Request::new("GET", "/v1/webhook_endpoints");
    ctx.webhooks.configured = ctx.send(&probe).is_ok_and(|r| r.status == 200);
    let Some(addr) = ctx.options.webhook_listen else {
        return;
    };
    let listener = match Listener::start(addr) {
        Ok(l) => l,
        Err(err) => {
            ctx.matrix.record(
                CREATE,
                201,
                "register the --webhook-listen receiver",
                vec![format!("{err:#}")],
            );
            return;
        }
    };
    let create = Request::new("POST", "/v1/webhook_endpoints")
        .json(json!({"url": listener.url, "events": every_event(ctx.spec), "description": MARK}));
    if let Some(made) = ctx.expect(
        "register the --webhook-listen receiver",
        CREATE,
        201,
        create,
        secret_shown,
    ) {
        let data = data_of(&made);
        if let (Some(id), Some(secret)) = (data["id"].as_str(), data["secret"].as_str()) {
            ctx.webhooks.endpoint = Some((id.to_owned(), secret.to_owned()));
        }
        // Messages whose ends make the events no other case makes: on a deployment with the
        // simulated carrier, the test-number table's undelivered and refused recipients (on a
        // real carrier their fictional numbers end as the network decides).
        for suffix in [numbers::UNDELIVERED, numbers::REFUSED] {
            let to = ctx.number(suffix);
            let opt_in =
                Request::new("PUT", format!("/v1/consents/{to}")).json(json!({"source": "api"}));
            let send = Request::new("POST", "/v1/messages")
                .json(json!({"from": ctx.from, "to": to, "text": "conformance webhook events"}));
            let _ = ctx
                .prepare("opt in a recipient for the webhook events", opt_in, 200)
                .and_then(|_| ctx.prepare("send for the webhook events", send, 202));
        }
    }
    ctx.webhooks.listener = Some(listener);
}

/// The secret is shown once, in the documented form.
fn secret_shown(r: &crate::client::Response) -> Vec<String> {
    let secret = data_of(r)["secret"].as_str().unwrap_or_default().to_owned();
    if secret.starts_with("whsec_") && secret.len() > 6 {
        vec![]
    } else {
        vec![format!("the secret {secret:?} is not `whsec_` and base64")]
    }
}

/// The operations' own cases.
pub fn cases(ctx: &mut Ctx) {
    let register = |body: Value| Request::new("POST", "/v1/webhook_endpoints").json(body);
    let body = json!({"url": NOWHERE, "events": ["consent.updated"], "description": MARK});
    let Ok(probe) = ctx.send(&register(body.clone())) else {
        return;
    };
    if probe.status == 501 {
        ctx.expect(
            "register without the operator's secret key",
            CREATE,
            501,
            register(body),
            code_is("WEBHOOKS_NOT_CONFIGURED"),
        );
        // Endpoints made before the secret key was removed are still listed; rotating one
        // needs the key, so it answers 501 too.
        let listed = ctx.expect(
            "list endpoints without the operator's secret key",
            "webhook_endpoints_list",
            200,
            Request::new("GET", "/v1/webhook_endpoints"),
            |_| vec![],
        );
        let existing = listed.as_ref().and_then(|r| {
            data_of(r)
                .as_array()
                .and_then(|a| a.first())
                .and_then(|e| e["id"].as_str())
                .map(str::to_owned)
        });
        match existing {
            Some(id) => {
                ctx.expect(
                    "rotate an endpoint's secret without the operator's secret key",
                    "webhook_endpoints_rotate_secret",
                    501,
                    Request::new("POST", format!("/v1/webhook_endpoints/{id}/rotate_secret")),
                    code_is("WEBHOOKS_NOT_CONFIGURED"),
                );
            }
            None => ctx.matrix.not_applicable(
                "webhook_endpoints_rotate_secret",
                501,
                "the deployment has no AGENTMESSAGE_SECRET_KEY and no endpoint made before it was removed".into(),
            ),
        }
        // The key is read before the endpoint is looked for.
        ctx.expect(
            "a malformed Idempotency-Key",
            "webhook_endpoints_rotate_secret",
            400,
            Request::new(
                "POST",
                format!("/v1/webhook_endpoints/{}/rotate_secret", uuid::Uuid::nil()),
            )
            .header("Idempotency-Key", "k".repeat(300)),
            details_name("Idempotency-Key"),
        );
        let reason = "the deployment has no AGENTMESSAGE_SECRET_KEY: it makes no endpoints";
        for (op, status) in [
            (CREATE, 201),
            (CREATE, 409),
            ("webhook_endpoints_get", 200),
            ("webhook_endpoints_update", 200),
            ("webhook_endpoints_delete", 200),
            ("webhook_endpoints_rotate_secret", 200),
            ("webhook_endpoints_rotate_secret", 409),
            ("webhook_endpoints_rotate_secret", 422),
            ("webhook_deliveries_list", 200),
            ("webhook_deliveries_list", 400),
            ("webhook_deliveries_retry", 200),
            ("webhook_endpoints_test", 202),
        ] {
            ctx.matrix.not_applicable(op, status, reason.into());
        }
        for event in ctx.spec.webhook_events.clone() {
            ctx.matrix
                .not_applicable(&webhook_row(&event), 200, reason.into());
        }
        return;
    }
    ctx.matrix.not_applicable(
        CREATE,
        501,
        "the deployment has a secret key (AGENTMESSAGE_SECRET_KEY)".into(),
    );
    ctx.matrix.not_applicable(
        "webhook_endpoints_rotate_secret",
        501,
        "needs a deployment whose secret key was removed after its endpoints were made".into(),
    );
    let Some(made) = ctx.expect(
        "register an endpoint",
        CREATE,
        201,
        register(body),
        secret_shown,
    ) else {
        return;
    };
    let data = data_of(&made);
    let id = data["id"].as_str().unwrap_or_default().to_owned();
    let secret = data["secret"].as_str().unwrap_or_default().to_owned();

    let listed = secret.clone();
    let wanted = id.clone();
    ctx.expect(
        "list endpoints",
        "webhook_endpoints_list",
        200,
        Request::new("GET", "/v1/webhook_endpoints"),
        move |r| {
            let mut problems = vec![];
            if r.text.contains(&listed) {
                problems.push("a listed endpoint shows its secret".to_owned());
            }
            if !r.text.contains(&wanted) {
                problems.push(format!("endpoint {wanted} is not listed"));
            }
            problems
        },
    );
    let path = format!("/v1/webhook_endpoints/{id}");
    let shown = secret.clone();
    ctx.expect(
        "read an endpoint",
        "webhook_endpoints_get",
        200,
        Request::new("GET", path.clone()),
        move |r| {
            if r.text.contains(&shown) {
                vec!["the endpoint shows its secret".to_owned()]
            } else {
                vec![]
            }
        },
    );
    let changed = format!("{MARK} (changed)");
    let expected = changed.clone();
    ctx.expect(
        "change an endpoint",
        "webhook_endpoints_update",
        200,
        Request::new("PATCH", path.clone())
            .json(json!({"description": changed, "events": ["consent.updated", "message.failed"]})),
        move |r| {
            let data = data_of(r);
            if data["description"] == json!(expected)
                && data["events"] == json!(["consent.updated", "message.failed"])
            {
                vec![]
            } else {
                vec![format!("the change is not shown: {data}")]
            }
        },
    );
    ctx.expect(
        "rotate an endpoint's secret",
        "webhook_endpoints_rotate_secret",
        200,
        Request::new("POST", format!("{path}/rotate_secret")),
        move |r| {
            let mut problems = secret_shown(r);
            if data_of(r)["secret"] == json!(secret) {
                problems.push("the rotated secret is the old one".into());
            }
            problems
        },
    );
    rotation_cases(ctx, &path);
    // An event for it: a consent change.
    let number = fictional(ctx.area, 41);
    ctx.expect(
        "record an opt-in (an event for the endpoint)",
        "consents_update",
        200,
        Request::new("PUT", format!("/v1/consents/{number}")).json(json!({"source": "web_form"})),
        |_| vec![],
    );
    let deliveries = ctx.expect(
        "list an endpoint's deliveries",
        "webhook_deliveries_list",
        200,
        Request::new("GET", format!("{path}/deliveries")),
        |r| {
            let list = r
                .json
                .as_ref()
                .and_then(|b| b["data"].as_array().cloned())
                .unwrap_or_default();
            if list.iter().any(|d| d["event_type"] == "consent.updated") {
                vec![]
            } else {
                vec!["the consent change made no delivery to the subscribed endpoint".into()]
            }
        },
    );
    ctx.expect(
        "a cursor the server did not return",
        "webhook_deliveries_list",
        400,
        Request::new("GET", format!("{path}/deliveries?cursor=not-a-cursor")),
        details_name("cursor"),
    );
    let delivery = deliveries
        .and_then(|r| r.json)
        .and_then(|b| b["data"][0]["id"].as_str().map(str::to_owned));
    match delivery {
        Some(delivery) => {
            ctx.expect(
                "retry a delivery",
                "webhook_deliveries_retry",
                200,
                Request::new("POST", format!("{path}/deliveries/{delivery}/retry")),
                |r| {
                    if data_of(r)["state"] == "pending" {
                        vec![]
                    } else {
                        vec!["a retried delivery is not pending".into()]
                    }
                },
            );
        }
        None => ctx.matrix.not_provable(
            "webhook_deliveries_retry",
            200,
            "no delivery was listed".into(),
        ),
    }
    let wanted = id.clone();
    ctx.expect(
        "send a test event to an endpoint",
        "webhook_endpoints_test",
        202,
        Request::new("POST", format!("{path}/test")),
        move |r| {
            let data = data_of(r);
            if data["event_type"] == "webhook.test"
                && data["state"] == "pending"
                && data["endpoint_id"] == json!(wanted)
            {
                vec![]
            } else {
                vec![format!(
                    "not a pending webhook.test delivery to the endpoint: {data}"
                )]
            }
        },
    );
    // Under an Idempotency-Key, as every creating operation.
    let keyed = |url: &str, events: &str| {
        format!(r#"{{"url":"{url}","events":[{events}],"description":"{MARK}"}}"#)
    };
    idempotent_operation(
        ctx,
        CREATE,
        "/v1/webhook_endpoints",
        201,
        [
            keyed(NOWHERE, r#""consent.updated""#),
            format!(
                r#"{{ "description": "{MARK}", "events": [ "consent.updated" ], "url": "{NOWHERE}" }}"#
            ),
            keyed(NOWHERE, r#""message.sent""#),
        ],
        &keyed(NOWHERE, r#""message.failed""#),
    );
    ctx.expect(
        "delete an endpoint",
        "webhook_endpoints_delete",
        200,
        Request::new("DELETE", path.clone()),
        |_| vec![],
    );
    ctx.expect(
        "a deleted endpoint",
        "webhook_endpoints_get",
        404,
        Request::new("GET", path),
        code_is("NOT_FOUND"),
    );
    limit_reached(
        ctx,
        CREATE,
        "webhook endpoint",
        || register(json!({"url": NOWHERE, "events": ["consent.updated"], "description": MARK})),
        |id| Request::new("DELETE", format!("/v1/webhook_endpoints/{id}")),
    );
}

/// Rotating under `Idempotency-Key` (a replay, a key reused for another endpoint, a malformed
/// key), then until the deployment refuses one more secret signing at once (409
/// `LIMIT_REACHED`).
fn rotation_cases(ctx: &mut Ctx, path: &str) {
    const ROTATE: &str = "webhook_endpoints_rotate_secret";
    let keyed = |path: &str, key: &str| {
        Request::new("POST", format!("{path}/rotate_secret")).header("Idempotency-Key", key)
    };
    let key = format!("conformance-{}", ctx.uuid());
    if let Some(first) = ctx.expect(
        "rotate under an Idempotency-Key",
        ROTATE,
        200,
        keyed(path, &key),
        secret_shown,
    ) {
        ctx.expect(
            "the same rotation again under its Idempotency-Key",
            ROTATE,
            200,
            keyed(path, &key),
            move |r| {
                let mut problems = vec![];
                if r.text != first.text {
                    problems.push("the replay's body differs (a second rotation?)".into());
                }
                if r.header("idempotent-replayed") != Some("true") {
                    problems.push("no `Idempotent-Replayed: true` on the replay".into());
                }
                problems
            },
        );
        let other = Request::new("POST", "/v1/webhook_endpoints")
            .json(json!({"url": NOWHERE, "events": ["consent.updated"], "description": MARK}));
        if let Some(made) = ctx.expect(
            "register another endpoint",
            CREATE,
            201,
            other,
            secret_shown,
        ) {
            let other_path = format!(
                "/v1/webhook_endpoints/{}",
                data_of(&made)["id"].as_str().unwrap_or_default()
            );
            ctx.expect(
                "the same Idempotency-Key rotating another endpoint",
                ROTATE,
                422,
                keyed(&other_path, &key),
                code_is("IDEMPOTENCY_KEY_REUSED"),
            );
            let _ = ctx.send(&Request::new("DELETE", other_path));
        }
    }
    ctx.expect(
        "a malformed Idempotency-Key",
        ROTATE,
        400,
        keyed(path, &"k".repeat(300)),
        details_name("Idempotency-Key"),
    );
    // Each secret rotated away keeps signing for its overlap; the deployment bounds how many.
    let rotate = || Request::new("POST", format!("{path}/rotate_secret"));
    for _ in 0..16 {
        match ctx.send(&rotate()) {
            Ok(r) if r.status == 200 => continue,
            Ok(r) if r.status == 409 => {
                ctx.expect(
                    "one rotation more than may sign at once",
                    ROTATE,
                    409,
                    rotate(),
                    code_is("LIMIT_REACHED"),
                );
                return;
            }
            _ => break,
        }
    }
    ctx.matrix.not_provable(
        ROTATE,
        409,
        "no LIMIT_REACHED after 16 more rotations".into(),
    );
}

/// With `--webhook-listen`: waits for the listener's deliveries to finish, then checks what it
/// got — recorded per event type as the pairs `x-webhooks/<type>`: passed when events of the
/// type arrived and every one kept the contract, not provable when the run made none.
pub fn verify_listener(ctx: &mut Ctx) {
    let events = ctx.spec.webhook_events.clone();
    let (Some(listener), Some((id, secret))) =
        (&ctx.webhooks.listener, ctx.webhooks.endpoint.clone())
    else {
        let reason = if ctx.options.webhook_listen.is_none() {
            "needs a receiver the deployment reaches (--webhook-listen)"
        } else {
            "setup: the --webhook-listen receiver could not be registered"
        };
        for event in &events {
            ctx.matrix
                .not_provable(&webhook_row(event), 200, reason.to_owned());
        }
        return;
    };
    // The listener's endpoint gets a test event too, so that `webhook.test` is proven.
    let test = Request::new("POST", format!("/v1/webhook_endpoints/{id}/test"));
    let tested = ctx.prepare("send the receiver a test event", test, 202);
    let deadline = Instant::now() + ctx.options.webhook_wait;
    // Problems by event type; those of no one event go to every type.
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut general = vec![];
    if let Err(reason) = &tested {
        problems
            .entry("webhook.test".into())
            .or_default()
            .push(reason.clone());
    }
    let listed = loop {
        let listed = all_deliveries(ctx, &id);
        let pending: Vec<&Value> = listed.iter().filter(|d| d["state"] == "pending").collect();
        if pending.is_empty() {
            break listed;
        }
        if Instant::now() >= deadline {
            for d in pending {
                problems
                    .entry(d["event_type"].as_str().unwrap_or_default().to_owned())
                    .or_default()
                    .push(format!(
                        "event {} still pending after {} (does a worker run?)",
                        d["event_id"],
                        humantime::format_duration(ctx.options.webhook_wait)
                    ));
            }
            break listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let got = listener.got();
    if listed.is_empty() {
        general.push("the suite's changes made no event for the receiver".to_owned());
    }
    let mut times: HashMap<String, u32> = HashMap::new();
    for g in &got {
        *times.entry(g.id.clone()).or_default() += 1;
    }
    for d in &listed {
        let event = d["event_id"].as_str().unwrap_or_default();
        let of_type = problems
            .entry(d["event_type"].as_str().unwrap_or_default().to_owned())
            .or_default();
        if d["state"] == "delivered" && !times.contains_key(event) {
            of_type.push(format!(
                "event {event} is listed as delivered but never arrived"
            ));
        }
        if d["state"] == "failed" {
            of_type.push(format!("the delivery of event {event} failed: {d}"));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let mut sequences: HashMap<String, i64> = HashMap::new();
    let mut consent_times: HashMap<String, String> = HashMap::new();
    let mut arrived: BTreeMap<String, usize> = BTreeMap::new();
    for g in &got {
        let Ok(body) = serde_json::from_str::<Value>(&g.body) else {
            general.push(format!("event {}: the body is not JSON", g.id));
            continue;
        };
        let kind = body["type"].as_str().unwrap_or_default().to_owned();
        *arrived.entry(kind.clone()).or_default() += 1;
        let of_type = problems.entry(kind.clone()).or_default();
        if times.get(&g.id).is_some_and(|n| *n > 1) {
            of_type.push(format!("event {} arrived {} times", g.id, times[&g.id]));
        }
        if !signature_verifies(g, std::slice::from_ref(&secret)) {
            of_type.push(format!("event {}: webhook-signature does not verify", g.id));
        }
        if g.timestamp
            .parse::<i64>()
            .map_or(true, |t| (t - now).abs() > 300)
        {
            of_type.push(format!(
                "event {}: webhook-timestamp {:?} is not now",
                g.id, g.timestamp
            ));
        }
        if body["id"] != json!(g.id) {
            of_type.push(format!("event {}: the body's id is {}", g.id, body["id"]));
        }
        let schema = match kind.as_str() {
            "consent.updated" => "ConsentWebhookEvent",
            "webhook.test" => "TestWebhookEvent",
            _ => "MessageWebhookEvent",
        };
        let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
        of_type.extend(
            ctx.schemas
                .validate(&reference, &body)
                .into_iter()
                .map(|p| format!("event {}: {p}", g.id)),
        );
        if let (Some(message), Some(sequence)) =
            (body["data"]["id"].as_str(), body["sequence"].as_i64())
        {
            let before = sequences.insert(message.to_owned(), sequence).unwrap_or(0);
            if sequence <= before {
                of_type.push(format!(
                    "message {message}: event {sequence} arrived after {before}"
                ));
            }
        }
        if let (Some(number), Some(at)) = (
            body["data"]["phone_number"].as_str(),
            body["data"]["updated_at"].as_str(),
        ) {
            if let Some(before) = consent_times.insert(number.to_owned(), at.to_owned()) {
                if at < before.as_str() {
                    of_type.push(format!(
                        "consent of {number}: the change of {at} arrived after that of {before}"
                    ));
                }
            }
        }
    }
    for (kind, found) in &problems {
        if !events.contains(kind) && !found.is_empty() {
            general.push(format!(
                "an event of type {kind:?}, which the spec does not document"
            ));
        }
    }
    for event in &events {
        let mut found: Vec<String> = general.clone();
        found.extend(problems.get(event).cloned().unwrap_or_default());
        found.truncate(8);
        let row = webhook_row(event);
        match arrived.get(event) {
            Some(n) => {
                let case = format!("{n} {event} event(s) reach --webhook-listen signed, once each, in order");
                ctx.matrix.record(&row, 200, &case, found);
            }
            None if !found.is_empty() => {
                ctx.matrix.record(&row, 200, &format!("{event} events"), found);
            }
            None => ctx.matrix.not_provable(
                &row,
                200,
                format!("the run made no {event} event (its cases cannot provoke one through this deployment)"),
            ),
        }
    }
}

/// Every delivery of endpoint `id`, walking the pages.
fn all_deliveries(ctx: &Ctx, id: &str) -> Vec<Value> {
    let mut all = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/webhook_endpoints/{id}/deliveries?limit=100"),
            Some(c) => format!("/v1/webhook_endpoints/{id}/deliveries?limit=100&cursor={c}"),
        };
        let Ok(r) = ctx.send(&Request::new("GET", path)) else {
            return all;
        };
        let Some(body) = r.json else {
            return all;
        };
        all.extend(body["data"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(c) if body["has_more"] == true => cursor = Some(c.to_owned()),
            _ => return all,
        }
    }
}

/// Deletes every endpoint the suite registered.
pub fn cleanup(ctx: &mut Ctx) {
    if !ctx.webhooks.configured {
        return;
    }
    let Ok(list) = ctx
        .target
        .send(&Request::new("GET", "/v1/webhook_endpoints"))
    else {
        return;
    };
    let ids: Vec<String> = list
        .json
        .and_then(|b| b["data"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e["description"]
                .as_str()
                .is_some_and(|d| d.starts_with(MARK))
        })
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    for id in ids {
        let _ = ctx.send(&Request::new(
            "DELETE",
            format!("/v1/webhook_endpoints/{id}"),
        ));
    }
}
