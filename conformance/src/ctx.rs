//! What every case works with: the run's options, the context that sends requests and records
//! verdicts, the fictional numbers it sends to, and the checks cases put on a response.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    check::{check_against, check_response},
    client::{Auth, Request, Response, Target},
    listener::Listener,
    matrix::{Matrix, SERVER_WIDE},
    schema::Schemas,
    spec::{Operation, Spec},
};

/// What the run keeps about webhooks: the `--webhook-listen` receiver and its endpoint.
#[derive(Default)]
pub struct WebhookState {
    pub listener: Option<Listener>,
    /// The listener's endpoint and its secret.
    pub endpoint: Option<(String, String)>,
    /// Whether the deployment can register endpoints at all (false: 501).
    pub configured: bool,
}

/// The security scheme of the carrier's callbacks.
pub const CARRIER_SCHEME: &str = "CarrierAuth";
/// The security scheme of the MMS centre's `POST /v1/carrier/mm7`.
pub const MM7_SCHEME: &str = "Mm7Basic";

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
    /// The MMS centre's HTTP Basic credentials (user name, password) for `POST /v1/carrier/mm7`
    /// (without them its answers past 401 and 413 are not provable).
    pub mm7_credentials: Option<(String, String)>,
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
    /// Seeds every choice the run makes (its numbers' area code, ids, keys, property cases):
    /// the same seed, spec and fresh deployment send the same requests. `None`: a random one.
    pub seed: Option<u64>,
    /// The part of the contract the run proves.
    pub profile: crate::pairs::Profile,
    /// Certifying: a pair not provable fails the run.
    pub certify: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_limit_budget: 500,
            property_cases: 32,
            regressions_dir: None,
            carrier_secret: None,
            mm7_credentials: None,
            request_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(300),
            max_shrink_iters: 16,
            body_timeout: None,
            webhook_listen: None,
            webhook_wait: Duration::from_secs(30),
            progress: None,
            seed: None,
            profile: crate::pairs::Profile::Full,
            certify: false,
        }
    }
}

/// One case of [`Ctx::expect_all`].
pub struct Expectation {
    pub case: String,
    pub op: String,
    pub expected: u16,
    pub request: Request,
    pub extra: Check,
}

/// A case's own check of a response (beside the spec's): its problems.
pub type Check = Box<dyn FnOnce(&Response) -> Vec<String> + Send>;

impl Expectation {
    pub fn new(
        case: &str,
        op: &str,
        expected: u16,
        request: Request,
        extra: impl FnOnce(&Response) -> Vec<String> + Send + 'static,
    ) -> Expectation {
        Expectation {
            case: case.to_owned(),
            op: op.to_owned(),
            expected,
            request,
            extra: Box::new(extra),
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
    pub webhooks: WebhookState,
    /// The seed the run's choices come from (given, or drawn at the start).
    pub seed: u64,
    /// The exchanges (indices into the target's log) that decided each pair.
    pub evidence: BTreeMap<(String, u16), Vec<usize>>,
    /// The state of the run's random choices (splitmix64 over the seed).
    rng: std::cell::Cell<u64>,
}

/// The fictional numbers the cases share, as the last two digits of `+1 AAA 555-01XX` (each
/// area of cases uses its own, so that none changes what another sees).
pub mod numbers {
    /// Opted in: the seed's example send goes to it.
    pub const OPTED_IN: u8 = 0;
    /// Opted in, then opted out through the API.
    pub const OPTED_OUT: u8 = 1;
    /// Never opted in (an opt-out recorded first).
    pub const NEVER: u8 = 2;
    /// The recipient of the rate limit's burst of sends.
    pub const RATE_LIMITED: u8 = 3;
    /// Texts HELP through the carrier's callback.
    pub const HELP: u8 = 4;
    /// Texts STOP through the carrier's callback.
    pub const STOPPED: u8 = 5;
    /// Looked up in the rate limit's burst of lookups.
    pub const RATE_LIMITED_LOOKUP: u8 = 6;
    /// Texts HELP through the test helper.
    pub const TEST_HELP: u8 = 7;
    /// Texts STOP through the test helper.
    pub const TEST_STOPPED: u8 = 8;
    /// Sends an MMS through the MMS centre (MM7).
    pub const MMS_SENDER: u8 = 9;
    /// A lookup calls it a landline (the number ends in 20–29 in the simulated lookup).
    pub const LANDLINE: u8 = 20;
    /// A lookup calls it voip.
    pub const VOIP: u8 = 30;
    /// Looked up under an Idempotency-Key, and another body under the same key.
    pub const IDEMPOTENT_LOOKUP: [u8; 3] = [35, 36, 37];
    /// The test-number table's undelivered recipient (a simulated carrier's receipt says
    /// UNDELIV), sent to for the `message.undelivered` event.
    pub const UNDELIVERED: u8 = 45;
    /// The test-number table's refused recipient (a simulated carrier refuses it), sent to for
    /// the `message.failed` event.
    pub const REFUSED: u8 = 55;
    /// Path values of generic cases that name nothing.
    pub const NOBODY: u8 = 90;
    pub const NOBODY_WITH_BODY: u8 = 91;
}

/// A fictional North American test number `+1 AAA 555-01XX`.
pub fn fictional(area: u16, suffix: u8) -> String {
    format!("+1{area}55501{suffix:02}")
}

/// A random area code from 201 to 989 (for tools that need no seed).
pub fn random_area() -> u16 {
    area_from(uuid::Uuid::new_v4().as_u128() as u64)
}

fn area_from(random: u64) -> u16 {
    201 + (random % 789) as u16
}

/// A seed drawn at random, for a run not given one.
pub fn random_seed() -> u64 {
    // Small enough to type back on a command line.
    (uuid::Uuid::new_v4().as_u128() as u64) % 1_000_000_000
}

impl<'a> Ctx<'a> {
    pub fn new(
        target: &'a Target,
        spec: &'a Spec,
        schemas: &'a Schemas,
        options: Options,
    ) -> Ctx<'a> {
        let options_deadline = options.deadline;
        let seed = options.seed.unwrap_or_else(random_seed);
        let rng = std::cell::Cell::new(seed);
        let area = area_from(next_random(&rng));
        let matrix = Matrix::for_profile(spec, options.profile);
        Ctx {
            target,
            spec,
            schemas,
            options,
            matrix,
            observations: BTreeMap::new(),
            from: String::new(),
            area,
            restricted: Vec::new(),
            ends_at: Instant::now() + options_deadline,
            test_mode: target.api_key.starts_with("am_test_"),
            webhooks: Default::default(),
            seed,
            rng,
            evidence: BTreeMap::new(),
        }
    }

    /// The run's next random number (from its seed).
    pub fn random(&self) -> u64 {
        next_random(&self.rng)
    }

    /// A random area code from the run's seed, other than the run's own.
    pub fn random_area(&self) -> u16 {
        loop {
            let area = area_from(self.random());
            if area != self.area {
                return area;
            }
        }
    }

    /// A version-4 UUID from the run's seed.
    pub fn uuid(&self) -> uuid::Uuid {
        let bytes = ((u128::from(self.random()) << 64) | u128::from(self.random())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
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
        if !self.may_send(case, op_id, expected) {
            return None;
        }
        let mark = self.target.mark();
        // Only a case proving 429 sees a 429 as its answer; any other waits it out.
        let sent = if expected == 429 {
            self.target.send(&request)
        } else {
            self.send(&request)
        };
        self.judge(case, op_id, expected, &request, sent, extra, mark)
    }

    /// Whether a case may send: its operation is in the spec (else a failure is recorded) and
    /// the deadline has not passed (else it is noted unfinished).
    fn may_send(&mut self, case: &str, op_id: &str, expected: u16) -> bool {
        if self.spec.operation(op_id).is_none() && op_id != SERVER_WIDE {
            self.matrix.record(
                op_id,
                expected,
                case,
                vec![format!("the spec has no operation {op_id}")],
            );
            return false;
        }
        if self.past_deadline() {
            self.matrix
                .unfinished(&format!("{op_id} {expected}: {case}"));
            return false;
        }
        true
    }

    /// Several independent cases at once (each as [`Ctx::expect`], none proving 429): their
    /// requests are sent together, so that a deployment leaving them unanswered costs one
    /// request timeout, not one each; their exchanges are kept, and their verdicts recorded, in
    /// the order given.
    pub fn expect_all(&mut self, cases: Vec<Expectation>) {
        let cases: Vec<Expectation> = cases.into_iter().filter(|c| c.expected != 429).collect();
        let cases: Vec<Expectation> = {
            let mut kept = vec![];
            for c in cases {
                if self.may_send(&c.case, &c.op, c.expected) {
                    kept.push(c);
                }
            }
            kept
        };
        let target = self.target;
        let exchanges: Vec<_> = std::thread::scope(|scope| {
            let sends: Vec<_> = cases
                .iter()
                .map(|c| {
                    let request = &c.request;
                    scope.spawn(move || target.exchange(request))
                })
                .collect();
            sends
                .into_iter()
                .map(|s| s.join().expect("a send does not panic"))
                .collect()
        });
        for (c, exchange) in cases.into_iter().zip(exchanges) {
            let mark = self.target.mark();
            let answer = exchange.response.clone();
            self.target.keep(vec![exchange]);
            let sent = match answer {
                // A 429 says only that the deployment's limit is lower than the batch: the
                // case is sent again on its own, waiting the limit out.
                Ok(r) if r.status == 429 => self.send(&c.request),
                Ok(r) => Ok(r),
                Err(err) => Err(anyhow::anyhow!("{err}")),
            };
            self.judge(&c.case, &c.op, c.expected, &c.request, sent, c.extra, mark);
        }
    }

    /// Checks an answer to `request` against the spec, `expected` and `extra`, and records the
    /// verdict under (`op_id`, `expected`) with the exchanges since `mark` as its evidence.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        case: &str,
        op_id: &str,
        expected: u16,
        request: &Request,
        sent: anyhow::Result<Response>,
        extra: impl FnOnce(&Response) -> Vec<String>,
        mark: usize,
    ) -> Option<Response> {
        let spec = self.spec;
        let op = spec.operation(op_id);
        let response = match sent {
            Ok(r) => r,
            Err(err) => {
                let problem = format!("{}: {err:#}", request.describe());
                self.record(op_id, expected, case, vec![problem], mark);
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
        self.record(op_id, expected, case, problems, mark);
        if ok {
            if let Some(body) = &response.json {
                self.observations
                    .entry((op_id.to_owned(), expected))
                    .or_insert_with(|| body.clone());
            }
        }
        (response.status == expected).then_some(response)
    }

    /// Records a verdict for (`op`, `status`) as [`Matrix::record`] does, keeping as its
    /// evidence the exchanges made since `mark` (the last four of them) when they decided it: a
    /// failure's always, a pass's when it is the pair's first.
    pub fn record(
        &mut self,
        op: &str,
        status: u16,
        case: &str,
        problems: Vec<String>,
        mark: usize,
    ) {
        let now = self.target.mark();
        self.record_between(op, status, case, problems, mark..now);
    }

    /// [`Ctx::record`] with the exchanges in `exchanges` (the last four of them) as evidence.
    pub fn record_between(
        &mut self,
        op: &str,
        status: u16,
        case: &str,
        problems: Vec<String>,
        exchanges: std::ops::Range<usize>,
    ) {
        let failed = !problems.is_empty();
        let before = self.matrix.verdict(op, status).cloned();
        self.matrix.record(op, status, case, problems);
        let after = self.matrix.verdict(op, status);
        let decided = failed || (before != after.cloned() && after.is_some());
        if !decided {
            return;
        }
        let from = exchanges.start.max(exchanges.end.saturating_sub(4));
        // The last exchange answered with the pair's status, when it is older than the last
        // four (a round of simultaneous requests whose answer came early).
        let answered = self.target.log.lock().ok().and_then(|log| {
            (exchanges.start..exchanges.end.min(log.len()))
                .rev()
                .find(|&i| log[i].response.as_ref().is_ok_and(|r| r.status == status))
        });
        let kept = self.evidence.entry((op.to_owned(), status)).or_default();
        let indices = answered
            .filter(|i| *i < from)
            .into_iter()
            .chain(from..exchanges.end);
        for index in indices {
            if kept.len() < 16 && !kept.contains(&index) {
                kept.push(index);
            }
        }
    }

    /// The fictional number `suffix` of this run's area (see [`numbers`]).
    pub fn number(&self, suffix: u8) -> String {
        fictional(self.area, suffix)
    }

    /// Sends a request the next cases depend on but do not prove (a consent recorded, a lookup
    /// made): it must answer `expected`, else the reason (`setup: …`) that what depends on it
    /// is not provable.
    pub fn prepare(&self, step: &str, request: Request, expected: u16) -> Result<Response, String> {
        if self.past_deadline() {
            return Err(format!("setup: {step}: the run's deadline passed first"));
        }
        match self.send(&request) {
            Ok(r) if r.status == expected => Ok(r),
            Ok(r) => Err(format!(
                "setup: {step} ({}) answered {}, expected {expected}",
                request.describe(),
                r.status
            )),
            Err(err) => Err(format!("setup: {step} ({}): {err:#}", request.describe())),
        }
    }

    /// Marks `pairs` not provable for `reason` (a setup step they depend on failed); pairs
    /// already decided keep their verdict.
    pub fn not_provable_after(&mut self, pairs: &[(&str, u16)], reason: &str) {
        for (op, status) in pairs {
            self.matrix.not_provable(op, *status, reason.to_owned());
        }
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
            fictional(self.random_area(), 99)
        } else {
            self.uuid().to_string()
        }
    }
}

/// splitmix64: one step of the run's random sequence.
fn next_random(state: &std::cell::Cell<u64>) -> u64 {
    let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
    state.set(next);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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

pub fn no_extra(_: &Response) -> Vec<String> {
    vec![]
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
