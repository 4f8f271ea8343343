//! Property tests through HTTP: random valid sends are accepted and echoed; random broken sends
//! are refused with every broken field named; non-object and random bodies are bad requests; and
//! no input gets a 5xx. Shrunk failures are kept as regression files when a directory is given.

use std::collections::BTreeSet;

use proptest::{
    prelude::*,
    test_runner::{
        Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner,
    },
};
use serde_json::{json, Map, Value};

use crate::{
    check::check_response,
    client::{Request, Response},
    ctx::{fictional, Ctx},
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

/// Media URLs every deployment takes: https (plain http only where a deployment allows it),
/// on hosts of the reserved example domain.
fn media_url() -> impl Strategy<Value = String> {
    ("[a-z]{1,12}", "[a-z0-9]{1,16}")
        .prop_map(|(host, file)| format!("https://{host}.example.com/{file}.png"))
}

/// The send's limits, as the spec under test publishes them (never the suite's own numbers).
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub text_max: usize,
    pub tag_max: usize,
    pub media_min: usize,
    pub media_max: usize,
}

impl SendLimits {
    /// Reads the limits from `SendMessageRequest`'s properties; `None` names what is missing.
    pub fn from_spec(spec: &crate::Spec) -> Result<SendLimits, String> {
        let read = |property: &str, keyword: &str| {
            spec.limit("SendMessageRequest", property, keyword)
                .map(|n| n as usize)
                .ok_or_else(|| format!("the spec gives SendMessageRequest.{property} no {keyword}"))
        };
        Ok(SendLimits {
            text_max: read("text", "maxLength")?,
            tag_max: read("tag", "maxLength")?,
            media_min: read("media_urls", "minItems")?,
            media_max: read("media_urls", "maxItems")?,
        })
    }
}

/// A valid send to one of the run's opted-in numbers.
fn valid_send(from: String, pool: Vec<String>, limits: SendLimits) -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(pool),
        prop_oneof![
            gsm_text(limits.text_max),
            unicode_text(limits.text_max),
            gsm_text(limits.text_max.min(200)),
            unicode_text(limits.text_max.min(100))
        ],
        proptest::option::of(
            proptest::collection::vec(
                proptest::sample::select("abcXYZ019 _.-".chars().collect::<Vec<_>>()),
                0..=limits.tag_max,
            )
            .prop_map(|chars| chars.into_iter().collect::<String>()),
        ),
        proptest::option::of(prop_oneof![Just("default"), Just("high")]),
        proptest::option::of(proptest::collection::vec(
            media_url(),
            limits.media_min.max(1)..=limits.media_max,
        )),
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

fn broken_value(field: &str, how: Break, limits: SendLimits) -> Option<Option<Value>> {
    let value = match (field, how) {
        ("from" | "to" | "text", Break::Missing) => None,
        (_, Break::Missing) => return Option::None,
        (_, Break::Null) => Some(Value::Null),
        ("media_urls", Break::WrongType) => Some(json!("https://example.com/a.png")),
        (_, Break::WrongType) => Some(json!(42)),
        ("text", Break::TooLong) => Some(json!("a".repeat(limits.text_max + 1))),
        ("tag", Break::TooLong) => Some(json!("t".repeat(limits.tag_max + 1))),
        ("media_urls", Break::TooLong) => Some(json!(vec![
            "https://example.com/a.png";
            limits.media_max + 1
        ])),
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
fn broken_send(
    from: String,
    to: String,
    limits: SendLimits,
) -> impl Strategy<Value = (Value, BTreeSet<String>)> {
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
                match broken_value(field, how, limits)? {
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

/// Runs one property unless the run's deadline has passed. `None` when the deadline cut it off
/// (before or during the run): it is then reported as not finished, never as passed.
fn run_property<S: Strategy>(
    ctx: &Ctx,
    name: &str,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Ran {
    let start = ctx.target.mark();
    let result = run_cases(ctx, name, strategy, test);
    Ran {
        result,
        exchanges: start..ctx.target.mark(),
    }
}

/// What one property came to, and the exchanges it made.
struct Ran {
    result: Option<Result<(), String>>,
    exchanges: std::ops::Range<usize>,
}

fn run_cases<S: Strategy>(
    ctx: &Ctx,
    name: &str,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Option<Result<(), String>> {
    if ctx.past_deadline() {
        return None;
    }
    let cut = std::cell::Cell::new(false);
    // A request left unanswered decides the property at once: shrinking it would spend a request
    // timeout on every step for nothing (the deployment is not answering, whatever the input).
    let no_answer = std::cell::RefCell::new(None::<String>);
    let result = runner(ctx, name).run(strategy, |value| {
        if ctx.past_deadline() {
            cut.set(true);
            return Ok(());
        }
        if no_answer.borrow().is_some() {
            return Ok(());
        }
        let outcome = test(value);
        if let Err(TestCaseError::Fail(reason)) = &outcome {
            if reason.message().starts_with(NO_ANSWER) {
                *no_answer.borrow_mut() = Some(reason.message().to_owned());
            }
        }
        outcome
    });
    if cut.get() {
        return None;
    }
    if let Some(reason) = no_answer.into_inner() {
        return Some(Err(reason));
    }
    Some(result.map_err(|e| e.to_string()))
}

/// How a property's failure for want of an answer begins.
const NO_ANSWER: &str = "no answer: ";

/// A request that got no answer (refused, reset, past the request timeout), as a property's
/// failure.
fn unanswered(err: anyhow::Error) -> TestCaseError {
    TestCaseError::fail(format!("{NO_ANSWER}{err:#}"))
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
    let config = Config {
        cases: ctx.options.property_cases,
        failure_persistence,
        max_shrink_iters: ctx.options.max_shrink_iters,
        ..Config::default()
    };
    // Each property's cases come from the run's seed and its name: the same seed, the same cases.
    let name_hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        let word = ctx.seed ^ name_hash.rotate_left(16 * i as u32);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Sends, waiting out 429s (valid sends spend the organization's rate limit).
fn send_patiently(ctx: &Ctx, request: &Request) -> Result<Response, TestCaseError> {
    if ctx.past_deadline() {
        return Err(TestCaseError::fail("the run's deadline passed"));
    }
    let response = ctx.send(request).map_err(unanswered)?;
    if response.status == 429 {
        return Err(TestCaseError::fail(
            "still rate limited at the run's deadline",
        ));
    }
    Ok(response)
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

/// The documented refusal of an MMS by a deployment whose live carrier cannot carry one.
pub const MMS_NOT_SUPPORTED: &str = "mms is not supported by this deployment's carrier";

/// Runs every property and records each in the matrix.
pub fn run(ctx: &mut Ctx) {
    let limits = match SendLimits::from_spec(ctx.spec) {
        Ok(limits) => limits,
        Err(problem) => {
            for status in [202, 422] {
                ctx.matrix.record(
                    "messages_create",
                    status,
                    "property: limits from the spec",
                    vec![problem.clone()],
                );
            }
            return;
        }
    };
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
    let mms_supported = std::cell::Cell::new(None);

    let result = run_property(
        view,
        "valid_sends",
        &valid_send(view.from.clone(), pool.clone(), limits),
        |body| {
            let response = send_patiently(
                view,
                &Request::new("POST", "/v1/messages").json(body.clone()),
            )?;
            contract(view, &response)?;
            if body.get("media_urls").is_some() {
                // A deployment whose live carrier cannot carry MMS (SMPP) refuses every MMS, in
                // both key modes, with one documented answer.
                let json = response.json.as_ref().expect("checked JSON");
                let refused = response.status == 422
                    && json["error"]["code"] == json!("VALIDATION_FAILED")
                    && json["error"]["details"]["media_urls"] == json!(MMS_NOT_SUPPORTED);
                match mms_supported.get() {
                    None => mms_supported.set(Some(!refused)),
                    Some(supported) => prop_assert_eq!(
                        supported,
                        !refused,
                        "MMS was accepted once and refused once: {}",
                        response.text
                    ),
                }
                if refused {
                    return Ok(());
                }
            }
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
        },
    );
    results.push((
        "messages_create",
        202,
        "property: random valid sends",
        result,
    ));

    let result = run_property(
        view,
        "invalid_sends",
        &broken_send(view.from.clone(), pool[0].clone(), limits),
        |(body, names)| {
            let response = view
                .target
                .send(&Request::new("POST", "/v1/messages").json(body))
                .map_err(unanswered)?;
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
        result,
    ));

    let not_object = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        proptest::collection::vec(any::<i32>(), 0..5).prop_map(|v| json!(v)),
    ];
    let result = run_property(view, "non_object_bodies", &not_object, |body| {
        let response = view
            .target
            .send(&Request::new("POST", "/v1/messages").json(body))
            .map_err(unanswered)?;
        contract(view, &response)?;
        prop_assert_eq!(response.status, 400, "{}", response.text);
        Ok(())
    });
    results.push((
        "messages_create",
        400,
        "property: JSON bodies that are not objects",
        result,
    ));

    let bytes = proptest::collection::vec(any::<u8>(), 0..512)
        .prop_filter("bytes that form a JSON object", |b| {
            !matches!(serde_json::from_slice::<Value>(b), Ok(Value::Object(_)))
        });
    let result = run_property(view, "random_bytes", &bytes, |bytes| {
        let response = view
            .target
            .send(&Request::new("POST", "/v1/messages").raw(Some("application/json"), bytes))
            .map_err(unanswered)?;
        contract(view, &response)?;
        prop_assert_eq!(response.status, 400, "{}", response.text);
        Ok(())
    });
    results.push(("messages_create", 400, "property: random bytes", result));

    for (op, status, case, ran) in results {
        match ran.result {
            None => ctx.matrix.unfinished(&format!("{op} {status}: {case}")),
            Some(Ok(())) => ctx.record_between(op, status, case, vec![], ran.exchanges),
            Some(Err(err)) => {
                let problem = format!("{case}: {err}");
                ctx.record_between(op, status, case, vec![problem], ran.exchanges)
            }
        }
    }
}

/// A strategy for the values `schema` allows, read from the schema alone: its enum, its whole
/// number range, its date-time format, or its pattern and length. `None` for a schema it cannot
/// read.
fn values_of(spec: &crate::Spec, schema: &Value) -> Option<BoxedStrategy<String>> {
    let schema = spec.resolve_schema(schema);
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        return (!values.is_empty()).then(|| proptest::sample::select(values).boxed());
    }
    match schema["type"].as_str()? {
        "integer" => {
            let min = schema["minimum"].as_f64().map_or(0, |m| m as i64);
            let max = schema["maximum"]
                .as_f64()
                .map_or(min + 1_000_000, |m| m as i64);
            Some((min..=max).prop_map(|n| n.to_string()).boxed())
        }
        "boolean" => Some(any::<bool>().prop_map(|b| b.to_string()).boxed()),
        "string" if schema["format"] == "date-time" => Some(
            (0i64..4_102_444_800)
                .prop_map(|secs| {
                    let days = secs.div_euclid(86_400);
                    let rest = secs.rem_euclid(86_400);
                    let (y, m, d) = civil_from_days(days);
                    format!(
                        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                        rest / 3600,
                        rest % 3600 / 60,
                        rest % 60
                    )
                })
                .boxed(),
        ),
        "string" => {
            let max = schema["maxLength"].as_u64().map_or(64, |m| m.min(64)) as usize;
            let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
            match schema["pattern"].as_str() {
                Some(pattern) => {
                    let body = pattern.trim_start_matches('^').trim_end_matches('$');
                    let strategy = proptest::string::string_regex(body).ok()?;
                    Some(
                        strategy
                            .prop_filter("within the length limits", move |s| {
                                (min..=max).contains(&s.chars().count())
                            })
                            .boxed(),
                    )
                }
                None => Some(
                    proptest::collection::vec(any::<char>(), min..=max)
                        .prop_map(|chars| chars.into_iter().collect::<String>())
                        .boxed(),
                ),
            }
        }
        _ => None,
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Percent-encodes everything but unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every reading operation, sent parameter values generated from the spec's own parameter
/// schemas: the server may find nothing (404) but never calls a value its schema allows
/// malformed (400), and every answer keeps the contract.
pub fn parameters(ctx: &mut Ctx) {
    let view: &Ctx = ctx;
    let mut results = Vec::new();
    for op in view.spec.operations.iter().filter(|op| op.method == "GET") {
        let params: Vec<(String, String, Value)> = view.spec.doc["paths"][&op.path]["get"]
            ["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["name"].as_str()?.to_owned(),
                    p["in"].as_str()?.to_owned(),
                    p["schema"].clone(),
                ))
            })
            .collect();
        if params.is_empty() {
            continue;
        }
        let mut strategies = Vec::new();
        let mut unreadable = Vec::new();
        for (name, place, schema) in &params {
            match values_of(view.spec, schema) {
                Some(s) if place == "path" => strategies.push(s.prop_map(Some).boxed()),
                Some(s) => strategies.push(proptest::option::of(s).boxed()),
                None => unreadable.push(name.clone()),
            }
        }
        let case = "property: parameter values their schemas allow are never 400";
        if !unreadable.is_empty() {
            let at = view.target.mark();
            let ran = Ran {
                result: Some(Err(format!(
                    "no values can be generated for {unreadable:?}"
                ))),
                exchanges: at..at,
            };
            results.push((op.id.clone(), ran, case));
            continue;
        }
        let result = run_property(
            view,
            &format!("parameters_{}", op.id),
            &strategies,
            |values| {
                let mut path = op.path.clone();
                let mut query = Vec::new();
                for ((name, place, _), value) in params.iter().zip(&values) {
                    let Some(value) = value else { continue };
                    if place == "path" {
                        path = path.replace(&format!("{{{name}}}"), &encode(value));
                    } else {
                        query.push(format!("{name}={}", encode(value)));
                    }
                }
                if !query.is_empty() {
                    path = format!("{path}?{}", query.join("&"));
                }
                let response = view
                    .target
                    .send(&Request::new("GET", &path))
                    .map_err(unanswered)?;
                prop_assert!(
                    response.status != 400,
                    "GET {} answered 400: {}",
                    path,
                    response.text
                );
                let problems = check_response(view.spec, view.schemas, Some(op), &response);
                prop_assert!(problems.is_empty(), "GET {}: {}", path, problems.join("; "));
                Ok(())
            },
        );
        results.push((op.id.clone(), result, case));
    }
    for (op, ran, case) in results {
        match ran.result {
            None => ctx.matrix.unfinished(&format!("{op} 200: {case}")),
            Some(Ok(())) => {}
            Some(Err(err)) => {
                let problem = format!("{case}: {err}");
                ctx.record_between(&op, 400, case, vec![problem], ran.exchanges);
            }
        }
    }
}
