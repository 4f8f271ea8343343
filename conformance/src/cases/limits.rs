//! The organization's limits on what it keeps (API keys, webhook endpoints, secrets): found by
//! adding until the deployment answers 409 `LIMIT_REACHED`.

use crate::{
    client::Request,
    ctx::{code_is, data_of, Ctx},
};

/// How many more of a kind the suite adds looking for the deployment's limit.
const LIMIT_SEARCH: usize = 256;

/// Adds what `create` makes until the deployment answers 409 `LIMIT_REACHED` (an organization's
/// limit per mode), proves that answer names the limit, then removes what it added.
pub fn limit_reached(
    ctx: &mut Ctx,
    op: &str,
    what: &str,
    create: impl Fn() -> Request,
    remove: impl Fn(&str) -> Request,
) {
    let mut made: Vec<String> = vec![];
    let mut reached = false;
    while made.len() < LIMIT_SEARCH && !ctx.past_deadline() {
        let mark = ctx.target.mark();
        match ctx.send(&create()) {
            Ok(r) if r.status == 201 => match data_of(&r)["id"].as_str() {
                // Each creation makes a new resource: a deployment answering an id it already
                // gave keeps nothing (an example echoed), and searching its limit is pointless.
                Some(id) if made.iter().any(|m| m == id) => {
                    let problem =
                        format!("a second {what} was given the id {id} of an earlier one");
                    ctx.record(op, 201, &format!("more {what}s"), vec![problem], mark);
                    ctx.matrix.not_provable(
                        op,
                        409,
                        format!("setup: the {what}s made have no ids of their own"),
                    );
                    return;
                }
                Some(id) => made.push(id.to_owned()),
                None => break,
            },
            Ok(r) => {
                reached = r.status == 409;
                break;
            }
            Err(_) => break,
        }
    }
    if reached {
        ctx.expect(
            &format!("one {what} past the organization's limit"),
            op,
            409,
            create(),
            |r| {
                let mut problems = code_is("LIMIT_REACHED")(r);
                let limit = r
                    .json
                    .as_ref()
                    .map(|b| b["error"]["details"]["limit"].clone());
                let named = limit
                    .as_ref()
                    .and_then(|l| l.as_str())
                    .is_some_and(|l| l.parse::<u64>().is_ok_and(|n| n > 0));
                if !named {
                    problems.push(format!("details.limit is {limit:?}, expected a count"));
                }
                problems
            },
        );
    } else {
        ctx.matrix.not_provable(
            op,
            409,
            format!("no LIMIT_REACHED after {} more {what}s", made.len()),
        );
    }
    for id in made {
        let _ = ctx.send(&remove(&id));
    }
}
