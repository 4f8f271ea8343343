//! `Idempotency-Key` on the creating operations that take it: a retry replays the first answer,
//! another body under the key is refused, a malformed key is refused, overlapping requests
//! conflict.

use serde_json::json;

use crate::{
    check::check_response,
    client::Request,
    ctx::{code_is, details_name, no_extra, numbers, Ctx},
};

/// `Idempotency-Key` on the creating operations that take it (a send, a lookup).
pub fn cases(ctx: &mut Ctx) {
    let to = ctx.number(numbers::OPTED_IN);
    let opt_in = Request::new("PUT", format!("/v1/consents/{to}"))
        .json(json!({"source": "web_form", "evidence": "conformance suite"}));
    match ctx.prepare("record the recipient's opt-in", opt_in, 200) {
        Ok(_) => sends(ctx, &to),
        Err(reason) => ctx.not_provable_after(
            &[("messages_create", 409), ("messages_create", 400)],
            &reason,
        ),
    }
    lookups(ctx);
}

fn sends(ctx: &mut Ctx, to: &str) {
    let from = ctx.from.clone();
    let send = |text: &str| format!(r#"{{"from":"{from}","to":"{to}","text":"{text}"}}"#);
    let send_reordered =
        format!(r#"{{ "text": "conformance idempotency", "to": "{to}", "from": "{from}" }}"#);
    idempotent_operation(
        ctx,
        "messages_create",
        "/v1/messages",
        202,
        [
            send("conformance idempotency"),
            send_reordered,
            send("another body"),
        ],
        &send("conformance overlap"),
    );
}

fn lookups(ctx: &mut Ctx) {
    // Numbers no other case uses (the lookups must not change what other cases see).
    let number = ctx.number(numbers::IDEMPOTENT_LOOKUP[0]);
    let other = ctx.number(numbers::IDEMPOTENT_LOOKUP[1]);
    let look = |n: &str| format!(r#"{{"phone_number":"{n}"}}"#);
    idempotent_operation(
        ctx,
        "lookups_create",
        "/v1/lookups",
        201,
        [
            look(&number),
            format!(r#"{{ "phone_number" : "{number}" }}"#),
            look(&other),
        ],
        &look(&ctx.number(numbers::IDEMPOTENT_LOOKUP[2])),
    );
}

/// One operation under `Idempotency-Key`: `bodies[0]` and `bodies[1]` are the same request
/// written differently, `bodies[2]` another. A retry gets the first answer again, byte for byte,
/// with the first request's `X-Request-Id` and `Idempotent-Replayed: true`; another body under the
/// key is 422 `IDEMPOTENCY_KEY_REUSED`; a malformed key is 400 naming the header; requests
/// overlapping one still running (`overlap` sent at once under a fresh key) are 409
/// `IDEMPOTENCY_CONFLICT` with `Retry-After`.
/// How many requests each round sends at once, and how many rounds may run before a 409 is
/// called not provable.
const SIMULTANEOUS: usize = 16;
const ROUNDS: usize = 32;

pub fn idempotent_operation(
    ctx: &mut Ctx,
    op: &str,
    path: &str,
    success: u16,
    bodies: [String; 3],
    overlap: &str,
) {
    let keyed = |key: &str, body: &str| {
        Request::new("POST", path)
            .header("Idempotency-Key", key)
            .raw(Some("application/json"), body.as_bytes().to_vec())
    };
    let key = format!("conformance-{}", ctx.uuid());
    let [body, reordered, another] = bodies;
    let Some(first) = ctx.expect(
        "a request with an Idempotency-Key",
        op,
        success,
        keyed(&key, &body),
        no_extra,
    ) else {
        return;
    };
    ctx.expect(
        "the same request again under its Idempotency-Key",
        op,
        success,
        keyed(&key, &reordered),
        move |r| {
            let mut problems = vec![];
            if r.text != first.text {
                problems.push(format!(
                    "the replay's body differs: {} then {}",
                    first.text, r.text
                ));
            }
            if r.header("idempotent-replayed") != Some("true") {
                problems.push("no `Idempotent-Replayed: true` on the replay".into());
            }
            if r.header("x-request-id") != first.header("x-request-id") {
                problems.push("the replay does not carry the first request's X-Request-Id".into());
            }
            problems
        },
    );
    ctx.expect(
        "the same Idempotency-Key with another body",
        op,
        422,
        keyed(&key, &another),
        code_is("IDEMPOTENCY_KEY_REUSED"),
    );
    ctx.expect(
        "a malformed Idempotency-Key",
        op,
        400,
        keyed(&"k".repeat(300), &body),
        details_name("Idempotency-Key"),
    );
    // Overlapping requests: several rounds of simultaneous ones, each round under a fresh key.
    let case = "simultaneous requests under one Idempotency-Key";
    // Each round's key comes from one draw of the run's seed, so that however many rounds it
    // takes, the run's later choices stay the same.
    let keys = ctx.uuid().as_u128();
    for round in 0..ROUNDS {
        if ctx.past_deadline() {
            ctx.matrix.unfinished(&format!("{op} 409: {case}"));
            return;
        }
        let round_key = uuid::Uuid::from_u128(keys ^ round as u128);
        let request = keyed(&format!("conformance-{round_key}"), overlap);
        let target = &ctx.target;
        let mark = target.mark();
        // Released together, so that they reach the server while the first still runs.
        let start = std::sync::Barrier::new(SIMULTANEOUS);
        let answers: Vec<_> = std::thread::scope(|scope| {
            let sends: Vec<_> = (0..SIMULTANEOUS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        target.exchange(&request)
                    })
                })
                .collect();
            sends.into_iter().filter_map(|s| s.join().ok()).collect()
        });
        // Kept in the order they were started, each marked as racing the others.
        let answers: Vec<_> = answers
            .into_iter()
            .map(|mut exchange| {
                exchange.simultaneous = true;
                exchange
            })
            .collect();
        target.keep(answers.clone());
        let answers: Vec<_> = answers
            .into_iter()
            .filter_map(|e| e.response.ok())
            .collect();
        // A 429 says only that the deployment's limit is lower than the round's burst: the
        // round proves nothing either way; its wait is taken and another round sent.
        let limited = answers.iter().find(|r| r.status == 429).cloned();
        let Some(conflict) = answers
            .into_iter()
            .find(|r| r.status != success && r.status != 429)
        else {
            if let Some(limited) = limited {
                let wait = limited
                    .header("retry-after")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 10);
                std::thread::sleep(std::time::Duration::from_secs(wait));
            }
            continue;
        };
        let mut problems = check_response(ctx.spec, ctx.schemas, ctx.spec.operation(op), &conflict);
        if conflict.status != 409 {
            problems.insert(
                0,
                format!("a simultaneous request answered {}", conflict.status),
            );
        }
        problems.extend(code_is("IDEMPOTENCY_CONFLICT")(&conflict));
        if problems.is_empty() {
            if let Some(body) = conflict.json.clone() {
                ctx.observations.entry((op.into(), 409)).or_insert(body);
            }
        }
        ctx.record(op, 409, case, problems, mark);
        return;
    }
    ctx.matrix.not_provable(
        op,
        409,
        format!(
            "no two of {} simultaneous requests overlapped under one key",
            ROUNDS * SIMULTANEOUS
        ),
    );
}
