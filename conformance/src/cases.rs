//! The cases: each sends requests through the public API and states which (operation, status)
//! pair it proves. Generic cases are derived from the spec (every secured operation's 401, every
//! body's 400/413/415/422, every path's 404); the rest exercise the operations' own rules.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::{
    check::{check_against, check_response},
    client::{Auth, Request, Response, Target},
    matrix::{Matrix, SERVER_WIDE},
    schema::Schemas,
    spec::{Operation, Spec},
};

/// The security scheme of the carrier's callbacks.
pub const CARRIER_SCHEME: &str = "CarrierAuth";

/// A body larger than the 64 KiB every deployment must refuse.
pub const OVERSIZED_BYTES: usize = 70 * 1024;

/// Where the run reports its progress: one line per area, as it starts proving it.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl Progress {
    /// Lines to stderr (the command line's choice).
    pub fn stderr() -> Progress {
        Progress(std::sync::Arc::new(|line: &str| eprintln!("{line}")))
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// How the run is tuned.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most sends spent trying to provoke 429 before calling it not provable.
    pub rate_limit_budget: usize,
    /// Cases per property test.
    pub property_cases: u32,
    /// Where property tests keep shrunk failures (a directory), if anywhere.
    pub regressions_dir: Option<std::path::PathBuf>,
    /// The carrier's secret, for the `/v1/carrier/*` callbacks (without it their successful and
    /// body-checking answers are not provable).
    pub carrier_secret: Option<String>,
    /// How long one request may take before it counts as unanswered.
    pub request_timeout: Duration,
    /// When the whole run stops: whatever is unfinished then is reported `not finished`, and the
    /// run fails.
    pub deadline: Duration,
    /// Most shrinking steps a failing property takes (each is a request).
    pub max_shrink_iters: u32,
    /// The deployment's body-read timeout, when known: the suite then proves 408 with a body
    /// that stalls. Unknown, 408 is not provable.
    pub body_timeout: Option<Duration>,
    /// Where to receive the suite's own webhook events (an address the deployment reaches).
    pub webhook_listen: Option<std::net::SocketAddr>,
    /// How long, at the end, the suite waits for its events' deliveries to finish.
    pub webhook_wait: Duration,
    /// Told, as each area begins, how many pairs are decided of how many and what comes next.
    pub progress: Option<Progress>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_limit_budget: 500,
            property_cases: 32,
            regressions_dir: None,
            carrier_secret: None,
            request_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(300),
            max_shrink_iters: 16,
            body_timeout: None,
            webhook_listen: None,
            webhook_wait: Duration::from_secs(30),
            progress: None,
        }
    }
}

/// Everything a case needs, and what the run found so far.
pub struct Ctx<'a> {
    pub target: &'a Target,
    pub spec: &'a Spec,
    pub schemas: &'a Schemas,
    pub options: Options,
    pub matrix: Matrix,
    /// The first body that kept the contract for each pair (for snapshots).
    pub observations: BTreeMap<(String, u16), Value>,
    /// The number the suite sends from (discovered through `numbers_list`).
    pub from: String,
    /// The area code this run's fictional numbers use.
    pub area: u16,
    /// Restricted keys minted for the 403 cases: (id, key, scopes).
    pub restricted: Vec<(String, String, Vec<String>)>,
    /// When the run must end.
    pub ends_at: Instant,
    /// The suite's key is a test-mode key (`am_test_…`).
    pub test_mode: bool,
    /// The webhook endpoints' run: the listener, its endpoint.
    pub webhooks: crate::webhooks::WebhookRun,
}

/// A fictional North American test number `+1 AAA 555-01XX`.
pub fn fictional(area: u16, suffix: u8) -> String {
    format!("+1{area}55501{suffix:02}")
}

/// A random area code from 201 to 989.
pub fn random_area() -> u16 {
    201 + (uuid::Uuid::new_v4().as_u128() % 789) as u16
}

impl<'a> Ctx<'a> {
    pub fn new(
        target: &'a Target,
        spec: &'a Spec,
        schemas: &'a Schemas,
        options: Options,
    ) -> Ctx<'a> {
        let options_deadline = options.deadline;
        Ctx {
            target,
            spec,
            schemas,
            options,
            matrix: Matrix::from_spec(spec),
            observations: BTreeMap::new(),
            from: String::new(),
            area: random_area(),
            restricted: Vec::new(),
            ends_at: Instant::now() + options_deadline,
            test_mode: target.api_key.starts_with("am_test_"),
            webhooks: Default::default(),
        }
    }

    /// Whether the run's deadline has passed: nothing more is sent.
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.ends_at
    }

    /// Sends `request`, waiting out a 429 as its `Retry-After` says (1 to 10 s a wait, before the
    /// run's deadline) and sending it again: a 429 met while proving something else says only
    /// that the deployment's limit is lower than the suite's pace, so it is never a verdict. (A
    /// 429 means the request did nothing, so sending it again is safe.) The answer, a 429 only
    /// when the deadline came first.
    pub fn send(&self, request: &Request) -> anyhow::Result<Response> {
        loop {
            let response = self.target.send(request)?;
            if response.status != 429 {
                return Ok(response);
            }
            let wait = response
                .header("retry-after")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 10);
            let wait = Duration::from_secs(wait);
            if Instant::now() + wait >= self.ends_at {
                return Ok(response);
            }
            std::thread::sleep(wait);
        }
    }

    /// Sends `request` to `op_id` expecting `expected`, checks the response against the spec and
    /// `extra`, and records the outcome under (`op_id`, `expected`). Returns the response when
    /// its status was the expected one.
    pub fn expect(
        &mut self,
        case: &str,
        op_id: &str,
        expected: u16,
        request: Request,
        extra: impl FnOnce(&Response) -> Vec<String>,
    ) -> Option<Response> {
        let spec = self.spec;
        let op = spec.operation(op_id);
        if op.is_none() && op_id != SERVER_WIDE {
            self.matrix.record(
                op_id,
                expected,
                case,
                vec![format!("the spec has no operation {op_id}")],
            );
            return None;
        }
        if self.past_deadline() {
            self.matrix
                .unfinished(&format!("{op_id} {expected}: {case}"));
            return None;
        }
        // Only a case proving 429 sees a 429 as its answer; any other waits it out.
        let sent = if expected == 429 {
            self.target.send(&request)
        } else {
            self.send(&request)
        };
        let response = match sent {
            Ok(r) => r,
            Err(err) => {
                self.matrix.record(
                    op_id,
                    expected,
                    case,
                    vec![format!("{}: {err:#}", request.describe())],
                );
                return None;
            }
        };
        let mut problems = Vec::new();
        if response.status != expected {
            problems.push(format!(
                "{} answered {}, expected {}",
                request.describe(),
                response.status,
                expected
            ));
        }
        match op {
            Some(op) => problems.extend(check_response(spec, self.schemas, Some(op), &response)),
            None => match spec.global.get(&response.status) {
                Some(documented) => {
                    problems.extend(check_against(spec, self.schemas, documented, &response))
                }
                None => problems.push(format!(
                    "answered {}, which the spec does not document server-wide",
                    response.status
                )),
            },
        }
        if response.status == expected {
            problems.extend(extra(&response));
        }
        let ok = problems.is_empty();
        self.matrix.record(op_id, expected, case, problems);
        if ok {
            if let Some(body) = &response.json {
                self.observations
                    .entry((op_id.to_owned(), expected))
                    .or_insert_with(|| body.clone());
            }
        }
        (response.status == expected).then_some(response)
    }

    /// A path for `op` with its parameters filled by `value`.
    pub fn path(op: &Operation, value: impl Fn(&str) -> String) -> String {
        let mut path = op.path.clone();
        for param in &op.path_params {
            path = path.replace(&format!("{{{param}}}"), &value(param));
        }
        path
    }

    /// The credential that passes `op`'s security: the main key, or the carrier secret for the
    /// carrier's callbacks (`None` when it was not given).
    pub fn auth_for(&self, op: &Operation) -> Option<Auth> {
        match op.security_scheme.as_deref() {
            Some(CARRIER_SCHEME) => self.options.carrier_secret.clone().map(Auth::Key),
            _ => Some(Auth::Main),
        }
    }

    /// Marks `op`'s `status` as not provable for want of the carrier secret.
    pub fn needs_carrier_secret(&mut self, op: &str, status: u16) {
        self.matrix.not_provable(
            op,
            status,
            "needs the carrier secret (--carrier-secret)".into(),
        );
    }

    /// A plausible value for a path parameter that names nothing.
    pub fn absent_value(&self, param: &str) -> String {
        if param.contains("phone") || param.contains("number") {
            fictional(random_area(), 99)
        } else {
            uuid::Uuid::new_v4().to_string()
        }
    }
}

/// `details` must name `field`.
pub fn details_name(field: &str) -> impl FnOnce(&Response) -> Vec<String> + '_ {
    move |r: &Response| {
        let details = r
            .json
            .as_ref()
            .and_then(|b| b["error"]["details"].as_object());
        if details.is_some_and(|d| d.contains_key(field)) {
            vec![]
        } else {
            vec![format!("error.details does not name {field}: {}", r.text)]
        }
    }
}

/// `error.code` must be `code`.
pub fn code_is(code: &str) -> impl FnOnce(&Response) -> Vec<String> + '_ {
    move |r: &Response| {
        let actual = r
            .json
            .as_ref()
            .and_then(|b| b["error"]["code"].as_str())
            .unwrap_or_default();
        if actual == code {
            vec![]
        } else {
            vec![format!("error.code is {actual:?}, expected {code}")]
        }
    }
}

fn no_extra(_: &Response) -> Vec<String> {
    vec![]
}

/// Finds the number to send from and mints the restricted keys.
pub fn setup(ctx: &mut Ctx) -> anyhow::Result<()> {
    let numbers = ctx.expect(
        "discover an owned number",
        "numbers_list",
        200,
        Request::new("GET", "/v1/numbers"),
        no_extra,
    );
    let from = numbers.and_then(|r| r.json).and_then(|b| {
        b["data"]
            .as_array()
            .and_then(|d| d.first())
            .and_then(|n| n["phone_number"].as_str().map(str::to_owned))
    });
    ctx.from = from.ok_or_else(|| {
        anyhow::anyhow!("the API key's organization owns no phone number (GET /v1/numbers is empty); give it one first")
    })?;
    for scopes in [vec!["numbers:read"], vec!["messages:read"]] {
        let request = Request::new("POST", "/v1/api_keys")
            .json(json!({"name": "conformance (restricted)", "scopes": scopes}));
        let expected: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let wanted = expected.clone();
        let response = ctx.expect(
            "mint a restricted key",
            "api_keys_create",
            201,
            request,
            move |r| {
                let data = &data_of(r);
                let mut problems = vec![];
                if data["key"].as_str().is_none_or(str::is_empty) {
                    problems.push("the new key's secret is not shown".to_owned());
                }
                if data["scopes"] != json!(wanted) {
                    problems.push(format!(
                        "scopes are {}, asked for {:?}",
                        data["scopes"], wanted
                    ));
                }
                problems
            },
        );
        let data = response
            .and_then(|r| r.json)
            .map(|b| b["data"].clone())
            .unwrap_or_default();
        match (data["id"].as_str(), data["key"].as_str()) {
            (Some(id), Some(key)) => ctx
                .restricted
                .push((id.to_owned(), key.to_owned(), expected)),
            _ => anyhow::bail!("could not mint a restricted key through POST /v1/api_keys"),
        }
    }
    Ok(())
}

/// The cases every operation gets from its spec alone.
pub fn generic(ctx: &mut Ctx) {
    let operations = ctx.spec.operations.clone();
    for op in &operations {
        let any_path = Ctx::path(op, |p| {
            if p.contains("phone") {
                fictional(ctx.area, 90)
            } else {
                uuid::Uuid::new_v4().to_string()
            }
        });
        let with_body = |r: Request| if op.has_body { r.json(json!({})) } else { r };

        if op.secured && op.documents(401) {
            let r = with_body(Request::new(&op.method, &any_path).auth(Auth::None));
            ctx.expect("no API key", &op.id, 401, r, code_is("UNAUTHORIZED"));
            let r = with_body(
                Request::new(&op.method, &any_path)
                    .auth(Auth::Key(format!("am_live_{}", "0".repeat(32)))),
            );
            ctx.expect("unknown API key", &op.id, 401, r, code_is("UNAUTHORIZED"));
        }
        if op.documents(403) {
            let scope = op.required_scope.clone();
            let key = ctx
                .restricted
                .iter()
                .find(|(_, _, scopes)| scope.as_ref().is_none_or(|s| !scopes.contains(s)))
                .map(|(_, k, _)| k.clone());
            match (scope, key) {
                (Some(scope), Some(key)) => {
                    let r = with_body(Request::new(&op.method, &any_path).auth(Auth::Key(key)));
                    ctx.expect(
                        "a key without the operation's scope",
                        &op.id,
                        403,
                        r,
                        move |r| {
                            let details = r
                                .json
                                .as_ref()
                                .map(|b| b["error"]["details"].clone())
                                .unwrap_or_default();
                            if details["required_scope"] == json!(scope) {
                                vec![]
                            } else {
                                vec![format!(
                                    "details.required_scope is {}, expected {scope}",
                                    details["required_scope"]
                                )]
                            }
                        },
                    );
                }
                _ => ctx.matrix.record(
                    &op.id,
                    403,
                    "a key without the operation's scope",
                    vec!["the operation declares no required scope (`x-required-scopes`)".into()],
                ),
            }
        }
        if op.documents(413) {
            let path = Ctx::path(op, |p| {
                if p.contains("phone") {
                    fictional(ctx.area, 91)
                } else {
                    uuid::Uuid::new_v4().to_string()
                }
            });
            let big = format!("{{\"padding\": \"{}\"}}", "x".repeat(OVERSIZED_BYTES));
            ctx.expect(
                "a 70 KiB body",
                &op.id,
                413,
                Request::new(&op.method, &path).raw(Some("application/json"), big),
                code_is("PAYLOAD_TOO_LARGE"),
            );
        }
        if op.test_mode_only {
            if ctx.test_mode {
                if op.documents(404) {
                    ctx.matrix.not_provable(
                        &op.id,
                        404,
                        "only a live key gets 404 here; run the suite with a live key too".into(),
                    );
                }
            } else {
                let r = with_body(Request::new(&op.method, &any_path));
                ctx.expect("a live key", &op.id, 404, r, code_is("NOT_FOUND"));
                for status in [201, 400, 415, 422] {
                    if op.documents(status) {
                        ctx.matrix.not_provable(
                            &op.id,
                            status,
                            "test keys only: run the suite with a test key (am_test_…)".into(),
                        );
                    }
                }
                continue;
            }
        }
        if op.has_body {
            let path = Ctx::path(op, |p| {
                if p.contains("phone") {
                    fictional(ctx.area, 91)
                } else {
                    uuid::Uuid::new_v4().to_string()
                }
            });
            let Some(auth) = ctx.auth_for(op) else {
                for status in [400, 415, 422] {
                    if op.documents(status) {
                        ctx.needs_carrier_secret(&op.id, status);
                    }
                }
                continue;
            };
            let request = || Request::new(&op.method, &path).auth(auth.clone());
            if op.documents(415) {
                ctx.expect(
                    "a text/plain body",
                    &op.id,
                    415,
                    request().raw(Some("text/plain"), "hello"),
                    code_is("UNSUPPORTED_MEDIA_TYPE"),
                );
            }
            if op.documents(400) {
                ctx.expect(
                    "malformed JSON",
                    &op.id,
                    400,
                    request().raw(Some("application/json"), "{\"oops\": "),
                    code_is("BAD_REQUEST"),
                );
                ctx.expect(
                    "a JSON array body",
                    &op.id,
                    400,
                    request().raw(Some("application/json"), "[1, 2]"),
                    code_is("BAD_REQUEST"),
                );
            }
            if op.documents(422) {
                let r = request().json(json!({"conformance_unknown_field": true}));
                ctx.expect(
                    "an unknown field",
                    &op.id,
                    422,
                    r,
                    details_name("conformance_unknown_field"),
                );
            }
        } else if op
            .responses
            .get(&422)
            .is_some_and(|d| d.codes.iter().any(|c| c == "VALIDATION_FAILED"))
            && !op.path_params.is_empty()
        {
            let path = Ctx::path(op, |_| "12345".to_owned());
            let param = op.path_params[0].clone();
            ctx.expect(
                "a malformed path value",
                &op.id,
                422,
                Request::new(&op.method, &path),
                details_name(&param),
            );
        }
        if op.documents(404) && !op.path_params.is_empty() {
            // With the body's example when it has one, so that only the id is wrong.
            let request = |path: &str| match &op.body_example {
                Some(example) => Request::new(&op.method, path).json(example.clone()),
                None => Request::new(&op.method, path),
            };
            let path = Ctx::path(op, |p| ctx.absent_value(p));
            ctx.expect(
                "a resource that does not exist",
                &op.id,
                404,
                request(&path),
                code_is("NOT_FOUND"),
            );
            // A path value the operation validates (a phone number) is 422 when malformed, above;
            // an id that names nothing is simply not found.
            let validates_path = op
                .responses
                .get(&422)
                .is_some_and(|d| d.codes.iter().any(|c| c == "VALIDATION_FAILED"));
            if !validates_path {
                let path = Ctx::path(op, |_| "not-an-id".to_owned());
                ctx.expect(
                    "a malformed id",
                    &op.id,
                    404,
                    request(&path),
                    code_is("NOT_FOUND"),
                );
            }
        }
    }
}

/// Answers any request can get: unknown path, wrong method, oversized body.
pub fn server_wide(ctx: &mut Ctx) {
    if ctx.spec.global.contains_key(&414) {
        ctx.expect(
            "a 9 KiB request target",
            SERVER_WIDE,
            414,
            Request::new("GET", format!("/v1/messages?tag={}", "t".repeat(9 * 1024))),
            code_is("URI_TOO_LONG"),
        );
    }
    if ctx.spec.global.contains_key(&431) {
        ctx.expect(
            "33 KiB of headers",
            SERVER_WIDE,
            431,
            Request::new("GET", "/v1/numbers").header("x-padding", "p".repeat(33 * 1024)),
            code_is("HEADERS_TOO_LARGE"),
        );
    }
    if ctx.spec.global.contains_key(&408) {
        match ctx.options.body_timeout {
            Some(timeout) if !ctx.past_deadline() => {
                let wait = timeout + ctx.options.request_timeout;
                let problems = match ctx.target.send_stalled_body("/v1/messages", wait) {
                    Ok(r) => {
                        let mut problems = check_response(ctx.spec, ctx.schemas, None, &r);
                        if r.status != 408 {
                            problems.push(format!("a stalled body answered {}", r.status));
                        }
                        problems.extend(code_is("REQUEST_TIMEOUT")(&r));
                        if problems.is_empty() {
                            if let Some(body) = r.json.clone() {
                                ctx.observations
                                    .entry((SERVER_WIDE.into(), 408))
                                    .or_insert(body);
                            }
                        }
                        problems
                    }
                    Err(err) => vec![format!("a stalled body: {err:#}")],
                };
                ctx.matrix
                    .record(SERVER_WIDE, 408, "a body that stops half-way", problems);
            }
            _ => ctx.matrix.not_provable(
                SERVER_WIDE,
                408,
                "the deployment's body timeout was not given (--body-timeout)".into(),
            ),
        }
    }
    ctx.expect(
        "an unknown path",
        SERVER_WIDE,
        404,
        Request::new("GET", "/conformance/no-such-path"),
        code_is("NOT_FOUND"),
    );
    ctx.expect(
        "an unknown path with a body",
        SERVER_WIDE,
        404,
        Request::new("POST", "/v1/conformance-nothing").json(json!({})),
        code_is("NOT_FOUND"),
    );
    let mut paths: Vec<String> = ctx
        .spec
        .operations
        .iter()
        .map(|op| op.path.clone())
        .collect();
    paths.dedup();
    for template in paths {
        let allowed = ctx.spec.methods_of(&template);
        let Some(method) = ["PATCH", "PUT", "DELETE", "POST"]
            .into_iter()
            .find(|m| !allowed.iter().any(|a| a == m))
        else {
            continue;
        };
        let path = template.replace(['{', '}'], "");
        let expected_allow = allowed.clone();
        ctx.expect(
            &format!("{method} {template}"),
            SERVER_WIDE,
            405,
            Request::new(method, path),
            move |r| {
                let mut got: Vec<String> = r
                    .header("allow")
                    .unwrap_or_default()
                    .split(',')
                    .map(|m| m.trim().to_uppercase())
                    .filter(|m| !m.is_empty())
                    .collect();
                got.sort();
                if got == expected_allow {
                    vec![]
                } else {
                    vec![format!(
                        "Allow is {got:?}, the spec's methods are {expected_allow:?}"
                    )]
                }
            },
        );
    }
}

/// The operations' own rules and their successful answers.
pub fn behaviour(ctx: &mut Ctx) {
    ctx.expect(
        "liveness",
        "health_view",
        200,
        Request::new("GET", "/healthz").auth(Auth::None),
        no_extra,
    );

    // Consent: opt in, read back, opt out.
    let to = fictional(ctx.area, 0);
    let put = Request::new("PUT", format!("/v1/consents/{to}"))
        .json(json!({"source": "web_form", "evidence": "conformance suite"}));
    let number = to.clone();
    let opted_in = ctx.expect("record an opt-in", "consents_update", 200, put, move |r| {
        let data = data_of(r);
        expect_fields(
            &data,
            &[
                ("phone_number", json!(number)),
                ("status", json!("opted_in")),
                ("source", json!("web_form")),
                ("evidence", json!("conformance suite")),
            ],
        )
    });
    let stored = opted_in.and_then(|r| r.json).map(|b| b["data"].clone());
    ctx.expect(
        "read consent",
        "consents_view",
        200,
        Request::new("GET", format!("/v1/consents/{to}")),
        reads_back(stored, "consent"),
    );
    let opted_out = fictional(ctx.area, 1);
    let put =
        Request::new("PUT", format!("/v1/consents/{opted_out}")).json(json!({"source": "verbal"}));
    ctx.expect("record an opt-in", "consents_update", 200, put, no_extra);
    ctx.expect(
        "record an opt-out",
        "consents_delete",
        200,
        Request::new("DELETE", format!("/v1/consents/{opted_out}")),
        |r| {
            let data = data_of(r);
            expect_fields(&data, &[("status", json!("opted_out"))])
        },
    );

    // Lookups.
    let landline = fictional(ctx.area, 20);
    for (number, line_type) in [
        (landline.clone(), "landline"),
        (fictional(ctx.area, 30), "voip"),
        (to.clone(), "mobile"),
    ] {
        let n = number.clone();
        let created = ctx.expect(
            "look a number up",
            "lookups_create",
            201,
            Request::new("POST", "/v1/lookups").json(json!({"phone_number": number})),
            move |r| {
                let data = data_of(r);
                expect_fields(
                    &data,
                    &[("phone_number", json!(n)), ("line_type", json!(line_type))],
                )
            },
        );
        let stored = created.and_then(|r| r.json).map(|b| b["data"].clone());
        ctx.expect(
            "read the latest lookup",
            "lookups_view",
            200,
            Request::new("GET", format!("/v1/lookups/{number}")),
            reads_back(stored, "lookup"),
        );
    }

    // Send and read back.
    let body = json!({"from": ctx.from, "to": to, "text": "hello from agentmessage", "priority": "default", "tag": "conformance"});
    let sent = body.clone();
    let accepted = ctx.expect(
        "send the seed's example",
        "messages_create",
        202,
        Request::new("POST", "/v1/messages").json(body),
        move |r| {
            let data = data_of(r);
            let mut problems = expect_fields(
                &data,
                &[("status", json!("queued")), ("channel", json!("sms"))],
            );
            for field in ["from", "to", "text", "priority", "tag"] {
                if data[field] != sent[field] {
                    problems.push(format!("{field} is {}, sent {}", data[field], sent[field]));
                }
            }
            problems
        },
    );
    if let Some(message) = accepted.and_then(|r| r.json).map(|b| b["data"].clone()) {
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        ctx.expect(
            "read a message back",
            "messages_view",
            200,
            Request::new("GET", format!("/v1/messages/{id}")),
            move |r| {
                let data = data_of(r);
                let mut problems = vec![];
                for field in [
                    "id",
                    "from",
                    "to",
                    "text",
                    "channel",
                    "priority",
                    "tag",
                    "created_at",
                ] {
                    if data[field] != message[field] {
                        problems.push(format!(
                            "{field} reads back as {}, was {}",
                            data[field], message[field]
                        ));
                    }
                }
                problems
            },
        );
    }

    // The send rules.
    let send = |to: &str, from: &str| {
        Request::new("POST", "/v1/messages")
            .json(json!({"from": from, "to": to, "text": "conformance"}))
    };
    let from = ctx.from.clone();
    ctx.expect(
        "send to a recipient who opted out",
        "messages_create",
        453,
        send(&opted_out, &from),
        code_is("CONSENT_REQUIRED"),
    );
    let never = fictional(ctx.area, 2);
    ctx.expect(
        "record an opt-out",
        "consents_delete",
        200,
        Request::new("DELETE", format!("/v1/consents/{never}")),
        no_extra,
    );
    ctx.expect(
        "send to a recipient without consent",
        "messages_create",
        453,
        send(&never, &from),
        code_is("CONSENT_REQUIRED"),
    );
    let put =
        Request::new("PUT", format!("/v1/consents/{landline}")).json(json!({"source": "api"}));
    ctx.expect("record an opt-in", "consents_update", 200, put, no_extra);
    ctx.expect(
        "send to a number a recent lookup calls a landline",
        "messages_create",
        422,
        send(&landline, &from),
        code_is("LINE_TYPE_BLOCKED"),
    );
    let not_owned = fictional(random_area(), 98);
    ctx.expect(
        "send from a number the organization does not own",
        "messages_create",
        422,
        send(&to, &not_owned),
        details_name("from"),
    );
    ctx.expect(
        "send with a bad recipient",
        "messages_create",
        422,
        send("5554443333", &from),
        move |r| {
            let details = r
                .json
                .as_ref()
                .map(|b| b["error"]["details"].clone())
                .unwrap_or_default();
            if details == json!({"to": "must be E.164"}) {
                vec![]
            } else {
                vec![format!(
                    "details are {details}, expected {{\"to\": \"must be E.164\"}}"
                )]
            }
        },
    );

    idempotency(ctx, &to);

    // Listing and events.
    let sent_id = ctx
        .observations
        .get(&("messages_create".to_owned(), 202))
        .and_then(|b| b["data"]["id"].as_str().map(str::to_owned));
    if let Some(id) = sent_id {
        let wanted = id.clone();
        ctx.expect(
            "list messages",
            "messages_list",
            200,
            Request::new("GET", "/v1/messages?limit=100&tag=conformance"),
            move |r| {
                if r.text.contains(&wanted) {
                    vec![]
                } else {
                    vec![format!("message {wanted} is not listed")]
                }
            },
        );
        ctx.expect(
            "list a message's events",
            "messages_events_list",
            200,
            Request::new("GET", format!("/v1/messages/{id}/events")),
            |r| {
                let first = r
                    .json
                    .as_ref()
                    .map(|b| b["data"][0].clone())
                    .unwrap_or_default();
                if first["status"] == "queued" {
                    vec![]
                } else {
                    vec![format!("the first event is {first}, not queued")]
                }
            },
        );
        ctx.expect(
            "list a message's events with a cursor given twice",
            "messages_events_list",
            400,
            Request::new("GET", format!("/v1/messages/{id}/events?cursor=1&cursor=2")),
            details_name("cursor"),
        );
    }
    ctx.expect(
        "list with a bad limit",
        "messages_list",
        400,
        Request::new("GET", "/v1/messages?limit=0"),
        details_name("limit"),
    );

    // The carrier's callbacks.
    match ctx.options.carrier_secret.clone() {
        Some(secret) => {
            let unknown = format!("conformance-{}", uuid::Uuid::new_v4().simple());
            let receipt = Request::new("POST", "/v1/carrier/receipts")
                .auth(Auth::Key(secret.clone()))
                .json(json!({"carrier_message_id": unknown, "stat": "DELIVRD"}));
            ctx.expect(
                "a receipt for an unknown id",
                "carrier_receipts_create",
                200,
                receipt,
                |r| {
                    let data = data_of(r);
                    expect_fields(&data, &[("matched", json!(false))])
                },
            );
            let inbound = Request::new("POST", "/v1/carrier/inbound")
                .auth(Auth::Key(secret.clone()))
                .json(json!({"from": fictional(ctx.area, 4), "to": ctx.from, "text": "help"}));
            ctx.expect(
                "an inbound HELP",
                "carrier_inbound_create",
                201,
                inbound,
                a_recorded_help,
            );
            // The recipient's own STOP (live: carrier callbacks are live traffic) locks their
            // consent against API opt-ins; a test key proves it through the test helper.
            if !ctx.test_mode {
                let stopped = fictional(ctx.area, 5);
                let stop = Request::new("POST", "/v1/carrier/inbound")
                    .auth(Auth::Key(secret.clone()))
                    .json(json!({"from": stopped, "to": ctx.from, "text": "STOP"}));
                ctx.expect(
                    "an inbound STOP",
                    "carrier_inbound_create",
                    201,
                    stop,
                    |r| expect_fields(&data_of(r), &[("keyword", json!("STOP"))]),
                );
                expect_consent_locked(ctx, &stopped);
            }
        }
        None => {
            ctx.needs_carrier_secret("carrier_receipts_create", 200);
            ctx.needs_carrier_secret("carrier_inbound_create", 201);
            // Only the recipient's own keyword locks a consent; a test key plays the recipient
            // through the test helper.
            if !ctx.test_mode {
                ctx.needs_carrier_secret("consents_update", 409);
            }
        }
    }
    if ctx.test_mode {
        test_helpers(ctx);
    }

    // Keys: listed without secrets.
    let secrets: Vec<String> = ctx.restricted.iter().map(|(_, k, _)| k.clone()).collect();
    let ids: Vec<String> = ctx.restricted.iter().map(|(id, _, _)| id.clone()).collect();
    ctx.expect(
        "list keys",
        "api_keys_list",
        200,
        Request::new("GET", "/v1/api_keys"),
        move |r| {
            let mut problems = vec![];
            if secrets.iter().any(|s| r.text.contains(s.as_str())) {
                problems.push("a listed key shows its secret".to_owned());
            }
            for id in &ids {
                if !r.text.contains(id.as_str()) {
                    problems.push(format!("key {id} is not listed"));
                }
            }
            problems
        },
    );
}

/// Provokes 429 with sends that are refused after the rate limiter (a `from` the organization
/// does not own), so that no message is created; gives up after the budget. Lookups spend the
/// same tokens, so right after the sends' 429 a burst of lookups is refused too.
pub fn rate_limit(ctx: &mut Ctx) {
    let to = fictional(ctx.area, 3);
    let from = fictional(random_area(), 97);
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
    let lookups =
        Request::new("POST", "/v1/lookups").json(json!({"phone_number": fictional(ctx.area, 6)}));
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
    for _ in 0..ctx.options.rate_limit_budget {
        if ctx.past_deadline() {
            ctx.matrix.unfinished(&format!("{op} 429: {case}"));
            return None;
        }
        let response = match ctx.target.send(request) {
            Ok(r) if r.status == passing => continue,
            Ok(r) => r,
            Err(err) => {
                ctx.matrix.record(op, 429, case, vec![format!("{err:#}")]);
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
        ctx.matrix.record(op, 429, case, problems);
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

/// `Idempotency-Key` on the creating operations that take it (a send, a lookup).
fn idempotency(ctx: &mut Ctx, to: &str) {
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
    // Numbers no other case uses (the lookups must not change what other cases see).
    let number = fictional(ctx.area, 35);
    let other = fictional(ctx.area, 36);
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
        &look(&fictional(ctx.area, 37)),
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

pub(crate) fn idempotent_operation(
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
    let key = format!("conformance-{}", uuid::Uuid::new_v4());
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
    for _ in 0..ROUNDS {
        if ctx.past_deadline() {
            ctx.matrix.unfinished(&format!("{op} 409: {case}"));
            return;
        }
        let request = keyed(&format!("conformance-{}", uuid::Uuid::new_v4()), overlap);
        let target = &ctx.target;
        // Released together, so that they reach the server while the first still runs.
        let start = std::sync::Barrier::new(SIMULTANEOUS);
        let answers: Vec<_> = std::thread::scope(|scope| {
            let sends: Vec<_> = (0..SIMULTANEOUS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        target.send(&request)
                    })
                })
                .collect();
            sends.into_iter().filter_map(|s| s.join().ok()).collect()
        });
        let Some(conflict) = answers.into_iter().flatten().find(|r| r.status != success) else {
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
        ctx.matrix.record(op, 409, case, problems);
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

/// An API opt-in for `stopped`, who texted STOP, is refused: 409 `CONSENT_LOCKED`; the
/// organization's own opt-out is recorded without lifting the lock (it shows `locked`), and an
/// opt-in after that is refused too.
fn expect_consent_locked(ctx: &mut Ctx, stopped: &str) {
    let opt_in = || {
        Request::new("PUT", format!("/v1/consents/{stopped}"))
            .json(json!({"source": "web_form", "evidence": "conformance"}))
    };
    ctx.expect(
        "an API opt-in after the recipient's STOP",
        "consents_update",
        409,
        opt_in(),
        code_is("CONSENT_LOCKED"),
    );
    ctx.expect(
        "an API opt-out after the recipient's STOP keeps the lock",
        "consents_delete",
        200,
        Request::new("DELETE", format!("/v1/consents/{stopped}")),
        |r| {
            if data_of(r)["locked"] == json!(true) {
                vec![]
            } else {
                vec![format!("the lock is not shown: {}", data_of(r))]
            }
        },
    );
    ctx.expect(
        "an API opt-in after the recipient's STOP and an API opt-out",
        "consents_update",
        409,
        opt_in(),
        code_is("CONSENT_LOCKED"),
    );
}

/// An inbound HELP as the carrier's and the test helper's answers show it: the keyword, and the
/// message stored inbound and received.
fn a_recorded_help(r: &Response) -> Vec<String> {
    let data = data_of(r);
    let mut problems = expect_fields(&data, &[("keyword", json!("HELP"))]);
    problems.extend(expect_fields(
        &data["message"],
        &[
            ("direction", json!("inbound")),
            ("status", json!("received")),
        ],
    ));
    problems
}

/// With a test key: the recipient's messages through the test helper — HELP recorded, STOP
/// locking the consent against API opt-ins.
fn test_helpers(ctx: &mut Ctx) {
    let from = ctx.from.clone();
    let help = Request::new("POST", "/v1/test_helpers/inbound")
        .json(json!({"from": fictional(ctx.area, 7), "to": from, "text": "help"}));
    ctx.expect(
        "a simulated inbound HELP",
        "test_helpers_inbound_create",
        201,
        help,
        a_recorded_help,
    );
    let stopped = fictional(ctx.area, 8);
    let stop = Request::new("POST", "/v1/test_helpers/inbound")
        .json(json!({"from": stopped, "to": from, "text": "STOP"}));
    ctx.expect(
        "a simulated inbound STOP",
        "test_helpers_inbound_create",
        201,
        stop,
        |r| expect_fields(&data_of(r), &[("keyword", json!("STOP"))]),
    );
    expect_consent_locked(ctx, &stopped);
}

/// Revokes the restricted keys; a revoked key then answers 401.
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
    let mut made = vec![];
    let mut reached = false;
    while made.len() < LIMIT_SEARCH && !ctx.past_deadline() {
        match ctx.send(&create()) {
            Ok(r) if r.status == 201 => match data_of(&r)["id"].as_str() {
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

/// The organization's limit on API keys: keys are added until 409, then revoked.
pub fn key_limit(ctx: &mut Ctx) {
    limit_reached(
        ctx,
        "api_keys_create",
        "API key",
        || {
            Request::new("POST", "/v1/api_keys")
                .json(json!({"name": "conformance (limit)", "scopes": ["numbers:read"]}))
        },
        |id| Request::new("DELETE", format!("/v1/api_keys/{id}")),
    );
}

pub fn cleanup(ctx: &mut Ctx) {
    let keys = std::mem::take(&mut ctx.restricted);
    for (id, key, _) in keys {
        ctx.expect(
            "revoke a key",
            "api_keys_delete",
            200,
            Request::new("DELETE", format!("/v1/api_keys/{id}")),
            |r| {
                let data = data_of(r);
                if data["revoked_at"].is_string() {
                    vec![]
                } else {
                    vec!["revoked_at is not set".to_owned()]
                }
            },
        );
        ctx.expect(
            "a revoked key",
            "numbers_list",
            401,
            Request::new("GET", "/v1/numbers").auth(Auth::Key(key)),
            code_is("UNAUTHORIZED"),
        );
    }
}

/// The `data` of a response body (null when there is none).
pub fn data_of(r: &Response) -> Value {
    r.json
        .as_ref()
        .map(|b| b["data"].clone())
        .unwrap_or_default()
}

/// The response's `data` must equal what an earlier response returned.
pub fn reads_back(
    stored: Option<Value>,
    what: &'static str,
) -> impl FnOnce(&Response) -> Vec<String> {
    move |r| {
        let data = r.json.as_ref().map(|b| b["data"].clone());
        if data == stored {
            vec![]
        } else {
            vec![format!("{what} reads back as {data:?}, was {stored:?}")]
        }
    }
}

/// Differences between `data` and the expected field values.
pub fn expect_fields(data: &Value, fields: &[(&str, Value)]) -> Vec<String> {
    fields
        .iter()
        .filter(|(name, value)| &data[*name] != value)
        .map(|(name, value)| format!("{name} is {}, expected {value}", data[*name]))
        .collect()
}
