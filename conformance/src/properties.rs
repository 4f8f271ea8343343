//! Property tests through HTTP: random valid sends are accepted and echoed; random broken sends
//! are refused with every broken field named; non-object and random bodies are bad requests; and
//! no input gets a 5xx. Shrunk failures are kept as regression files when a directory is given.

use std::collections::BTreeSet;

use proptest::{
    prelude::*,
    test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner},
};
use serde_json::{json, Map, Value};

use crate::{
    cases::{fictional, Ctx},
    check::check_response,
    client::{Request, Response},
};

/// GSM 03.38 characters (basic and extension) for GSM-7 texts.
const GSM: &str = "@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€";

fn gsm_text(max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = GSM.chars().collect();
    proptest::collection::vec(proptest::sample::select(chars), 1..=max)
        .prop_map(|v| v.into_iter().collect())
}

fn unicode_text(max: usize) -> impl Strategy<Value = String> {
    // Any character but U+0000, which the spec's text pattern excludes.
    let character = any::<char>().prop_filter("U+0000", |c| *c != '\0');
    proptest::collection::vec(prop_oneof![character, Just('😀'), Just('ж')], 1..=max)
        .prop_map(|v| v.into_iter().collect())
}

fn media_url() -> impl Strategy<Value = String> {
    ("(http|https)", "[a-z]{1,12}", "[a-z0-9]{1,16}")
        .prop_map(|(scheme, host, file)| format!("{scheme}://{host}.example.com/{file}.png"))
}

/// A valid send to one of the run's opted-in numbers.
fn valid_send(from: String, pool: Vec<String>) -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(pool),
        prop_oneof![
            gsm_text(1600),
            unicode_text(1600),
            gsm_text(200),
            unicode_text(100)
        ],
        proptest::option::of("[a-zA-Z0-9 _.-]{0,256}"),
        proptest::option::of(prop_oneof![Just("default"), Just("high")]),
        proptest::option::of(proptest::collection::vec(media_url(), 1..=10)),
    )
        .prop_map(move |(to, text, tag, priority, media)| {
            let mut body = Map::new();
            body.insert("from".into(), json!(from));
            body.insert("to".into(), json!(to));
            body.insert("text".into(), json!(text));
            if let Some(tag) = tag {
                body.insert("tag".into(), json!(tag));
            }
            if let Some(priority) = priority {
                body.insert("priority".into(), json!(priority));
            }
            if let Some(media) = media {
                body.insert("media_urls".into(), json!(media));
            }
            Value::Object(body)
        })
}

/// Ways to break one field.
#[derive(Debug, Clone, Copy)]
enum Break {
    Missing,
    Null,
    WrongType,
    TooLong,
    BadFormat,
    Empty,
    Nul,
}

const FIELDS: [&str; 6] = ["from", "to", "text", "priority", "tag", "media_urls"];

fn broken_value(field: &str, how: Break) -> Option<Option<Value>> {
    let value = match (field, how) {
        ("from" | "to" | "text", Break::Missing) => None,
        (_, Break::Missing) => return Option::None,
        (_, Break::Null) => Some(Value::Null),
        ("media_urls", Break::WrongType) => Some(json!("https://example.com/a.png")),
        (_, Break::WrongType) => Some(json!(42)),
        ("text", Break::TooLong) => Some(json!("a".repeat(1601))),
        ("tag", Break::TooLong) => Some(json!("t".repeat(257))),
        ("media_urls", Break::TooLong) => Some(json!(vec!["https://example.com/a.png"; 11])),
        ("from" | "to", Break::BadFormat) => Some(json!("555-0100")),
        ("priority", Break::BadFormat) => Some(json!("urgent")),
        ("media_urls", Break::BadFormat) => Some(json!(["ftp://example.com/a.png"])),
        ("text", Break::Empty) => Some(json!("")),
        ("text" | "tag", Break::Nul) => Some(json!("a\u{0}b")),
        ("media_urls", Break::Empty) => Some(json!([])),
        _ => return Option::None,
    };
    Some(value)
}

/// A send with some fields broken, and the names `details` must list.
fn broken_send(from: String, to: String) -> impl Strategy<Value = (Value, BTreeSet<String>)> {
    let how = prop_oneof![
        Just(Break::Missing),
        Just(Break::Null),
        Just(Break::WrongType),
        Just(Break::TooLong),
        Just(Break::BadFormat),
        Just(Break::Empty),
        Just(Break::Nul)
    ];
    (proptest::collection::vec((proptest::sample::select(FIELDS.to_vec()), how), 1..4), proptest::option::of("[a-z]{3,10}_field"))
        .prop_filter_map("a field the break does not apply to", move |(breaks, unknown)| {
            let mut body = json!({"from": from, "to": to, "text": "hello", "priority": "high", "tag": "t", "media_urls": ["https://example.com/a.png"]});
            let object = body.as_object_mut()?;
            let mut names = BTreeSet::new();
            for (field, how) in breaks {
                if names.contains(field) {
                    continue;
                }
                match broken_value(field, how)? {
                    None => {
                        object.remove(field);
                    }
                    Some(value) => {
                        object.insert(field.into(), value);
                    }
                }
                names.insert(field.to_owned());
            }
            if let Some(extra) = unknown {
                object.insert(extra.clone(), json!(true));
                names.insert(extra);
            }
            Some((body, names))
        })
}

fn runner(ctx: &Ctx, name: &str) -> TestRunner {
    let failure_persistence = ctx.options.regressions_dir.as_ref().map(|dir| {
        let path: &'static str = Box::leak(
            dir.join(format!("{name}.txt"))
                .to_string_lossy()
                .into_owned()
                .into_boxed_str(),
        );
        Box::new(FileFailurePersistence::Direct(path))
            as Box<dyn proptest::test_runner::FailurePersistence>
    });
    TestRunner::new(Config {
        cases: ctx.options.property_cases,
        failure_persistence,
        max_shrink_iters: 64,
        ..Config::default()
    })
}

/// Sends, waiting out 429s (valid sends spend the organization's rate limit).
fn send_patiently(ctx: &Ctx, request: &Request) -> Result<Response, TestCaseError> {
    for _ in 0..20 {
        let response = ctx
            .target
            .send(request)
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        if response.status != 429 {
            return Ok(response);
        }
        let wait = response
            .header("retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(1);
        std::thread::sleep(std::time::Duration::from_secs(wait.clamp(1, 5)));
    }
    Err(TestCaseError::fail("still rate limited after 20 tries"))
}

fn contract(ctx: &Ctx, response: &Response) -> Result<(), TestCaseError> {
    if response.status >= 500 {
        return Err(TestCaseError::fail(format!(
            "answered {}: {}",
            response.status, response.text
        )));
    }
    let problems = check_response(
        ctx.spec,
        ctx.schemas,
        ctx.spec.operation("messages_create"),
        response,
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TestCaseError::fail(problems.join("; ")))
    }
}

/// Runs every property and records each in the matrix.
pub fn run(ctx: &mut Ctx) {
    let pool: Vec<String> = (10..20).map(|i| fictional(ctx.area, i)).collect();
    for number in &pool {
        let put =
            Request::new("PUT", format!("/v1/consents/{number}")).json(json!({"source": "api"}));
        ctx.expect(
            "opt in the property pool",
            "consents_update",
            200,
            put,
            |_| vec![],
        );
    }

    let view: &Ctx = ctx;
    let mut results = Vec::new();

    let result =
        runner(view, "valid_sends").run(&valid_send(view.from.clone(), pool.clone()), |body| {
            let response = send_patiently(
                view,
                &Request::new("POST", "/v1/messages").json(body.clone()),
            )?;
            contract(view, &response)?;
            prop_assert_eq!(response.status, 202, "{}", response.text);
            let data = &response.json.as_ref().expect("checked JSON")["data"];
            for field in ["from", "to", "text", "tag", "media_urls"] {
                let sent = body.get(field).cloned().unwrap_or(Value::Null);
                prop_assert_eq!(&data[field], &sent, "{} not echoed", field);
            }
            let default_priority = json!("default");
            prop_assert_eq!(
                &data["priority"],
                body.get("priority").unwrap_or(&default_priority)
            );
            let channel = if body.get("media_urls").is_some() {
                "mms"
            } else {
                "sms"
            };
            prop_assert_eq!(&data["channel"], &json!(channel));
            prop_assert_eq!(&data["status"], &json!("queued"));
            Ok(())
        });
    results.push((
        "messages_create",
        202,
        "property: random valid sends",
        result.map_err(|e| e.to_string()),
    ));

    let result = runner(view, "invalid_sends").run(
        &broken_send(view.from.clone(), pool[0].clone()),
        |(body, names)| {
            let response = view
                .target
                .send(&Request::new("POST", "/v1/messages").json(body))
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            contract(view, &response)?;
            prop_assert_eq!(response.status, 422, "{}", response.text);
            let details: BTreeSet<String> = response
                .json
                .as_ref()
                .and_then(|b| b["error"]["details"].as_object())
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default();
            prop_assert_eq!(
                details,
                names,
                "details must name exactly the broken fields"
            );
            Ok(())
        },
    );
    results.push((
        "messages_create",
        422,
        "property: random broken sends",
        result.map_err(|e| e.to_string()),
    ));

    let not_object = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        proptest::collection::vec(any::<i32>(), 0..5).prop_map(|v| json!(v)),
    ];
    let result = runner(view, "non_object_bodies").run(&not_object, |body| {
        let response = view
            .target
            .send(&Request::new("POST", "/v1/messages").json(body))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        contract(view, &response)?;
        prop_assert_eq!(response.status, 400, "{}", response.text);
        Ok(())
    });
    results.push((
        "messages_create",
        400,
        "property: JSON bodies that are not objects",
        result.map_err(|e| e.to_string()),
    ));

    let bytes = proptest::collection::vec(any::<u8>(), 0..512)
        .prop_filter("bytes that form a JSON object", |b| {
            !matches!(serde_json::from_slice::<Value>(b), Ok(Value::Object(_)))
        });
    let result = runner(view, "random_bytes").run(&bytes, |bytes| {
        let response = view
            .target
            .send(&Request::new("POST", "/v1/messages").raw(Some("application/json"), bytes))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        contract(view, &response)?;
        prop_assert_eq!(response.status, 400, "{}", response.text);
        Ok(())
    });
    results.push((
        "messages_create",
        400,
        "property: random bytes",
        result.map_err(|e| e.to_string()),
    ));

    for (op, status, case, result) in results {
        let problems = match result {
            Ok(()) => vec![],
            Err(err) => vec![format!("{case}: {err}")],
        };
        ctx.matrix.record(op, status, case, problems);
    }
}
