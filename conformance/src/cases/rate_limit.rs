//! 429: the organization's rate limit, provoked with sends that create nothing.

use serde_json::json;

use crate::{
    check::check_response,
    client::{Request, Response},
    ctx::{code_is, fictional, numbers, Ctx},
};

/// Provokes 429 with sends that are refused after the rate limiter (a `from` the organization
/// does not own), so that no message is created; gives up after the budget. Lookups spend the
/// same tokens, so right after the sends' 429 a burst of lookups is refused too.
pub fn cases(ctx: &mut Ctx) {
    let to = ctx.number(numbers::RATE_LIMITED);
    let from = fictional(ctx.random_area(), 97);
    let sends = Request::new("POST", "/v1/messages")
        .json(json!({"from": from, "to": to, "text": "conformance rate limit"}));
    let Some(refused) = burst(ctx, "messages_create", "a burst of sends", &sends, 422) else {
        ctx.matrix.not_provable(
            "lookups_create",
            429,
            "the sends gave no 429 to follow with lookups".into(),
        );
        return;
    };
    let lookups = Request::new("POST", "/v1/lookups")
        .json(json!({"phone_number": ctx.number(numbers::RATE_LIMITED_LOOKUP)}));
    burst(
        ctx,
        "lookups_create",
        "a burst of lookups after sends",
        &lookups,
        201,
    );
    if let Some(wait) = refused
        .header("retry-after")
        .and_then(|s| s.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_secs(wait.min(5)));
    }
}

/// Sends `request` for `op` while it answers `passing`, until it answers 429 (recorded as the
/// pair, with its body kept as the observation) or anything else (a failure); within the rate
/// budget and the run's deadline. The 429 answer, when there was one.
fn burst(ctx: &mut Ctx, op: &str, case: &str, request: &Request, passing: u16) -> Option<Response> {
    let mark = ctx.target.mark();
    for _ in 0..ctx.options.rate_limit_budget {
        if ctx.past_deadline() {
            ctx.matrix.unfinished(&format!("{op} 429: {case}"));
            return None;
        }
        let response = match ctx.target.send(request) {
            Ok(r) if r.status == passing => continue,
            Ok(r) => r,
            Err(err) => {
                ctx.record(op, 429, case, vec![format!("{err:#}")], mark);
                return None;
            }
        };
        let mut problems = check_response(ctx.spec, ctx.schemas, ctx.spec.operation(op), &response);
        if response.status != 429 {
            problems.insert(
                0,
                format!(
                    "{} answered {} in a burst",
                    request.describe(),
                    response.status
                ),
            );
        }
        problems.extend(code_is("RATE_LIMITED")(&response));
        let kept = problems.is_empty() && response.status == 429;
        if kept {
            if let Some(body) = response.json.clone() {
                ctx.observations.entry((op.into(), 429)).or_insert(body);
            }
        }
        ctx.record(op, 429, case, problems, mark);
        return kept.then_some(response);
    }
    let budget = ctx.options.rate_limit_budget;
    ctx.matrix.not_provable(
        op,
        429,
        format!("no 429 within {budget} requests; the deployment's limit is higher"),
    );
    None
}
