//! Named carrier connections and the routes between them. A deployment has one or more
//! connections (an SMSC over SMPP, an MMSC over MM7, the simulated carrier), each under its own
//! name; a route takes the live messages of one channel whose recipient starts with its prefix
//! (the longest prefix wins) to an ordered list of connections. A message goes to the first
//! connection of its route that is not passed over: one unbound for longer than the failover
//! setting is passed over until it binds again, and meanwhile the next one takes its traffic.
//! Test-mode messages always go to the test connection (a simulated carrier).
//!
//! A connection's `throughput` (messages a second) holds across every worker: on PostgreSQL
//! each worker leases the tokens it is about to spend from the connection's shared bucket; on
//! SQLite (one process) the process keeps the rate itself.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use governor::{clock::Clock, Quota, RateLimiter};

use super::carrier::Carrier;
use crate::{
    domain::{
        message::{Channel, KeyMode},
        submission::{ConnectionHealth, ConnectionState, DeliveryHealth},
    },
    service::Services,
};

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// One named connection: its carrier, its throughput and how long it has been unbound.
pub struct Connection {
    carrier: Arc<dyn Carrier>,
    /// Messages a second across every worker; 0 for no limit.
    throughput: u32,
    /// This process's limiter, used where the database keeps no shared bucket (SQLite).
    local: Option<Limiter>,
    unbound_since: Mutex<Option<Instant>>,
    passed_over: AtomicBool,
    /// One lane of the process takes tokens at a time (the others wait their turn rather than
    /// asking the database too).
    turn: tokio::sync::Mutex<()>,
}

/// The most tokens a connection's bucket holds: a fifth of a second's throughput (at least
/// one), so that an idle spell saves up little and the rate holds over any few seconds.
pub fn burst_of(throughput: u32) -> u32 {
    (throughput / 5).max(1)
}

impl Connection {
    /// The connection of `carrier` (named as the carrier is), at most `throughput` messages a
    /// second (0: no limit).
    pub fn new(carrier: Arc<dyn Carrier>, throughput: u32) -> Arc<Connection> {
        let local = std::num::NonZeroU32::new(throughput).map(|rate| {
            let burst = std::num::NonZeroU32::new(burst_of(throughput)).expect("at least one");
            RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
        });
        Arc::new(Connection {
            carrier,
            throughput,
            local,
            unbound_since: Mutex::new(None),
            passed_over: AtomicBool::new(false),
            turn: tokio::sync::Mutex::new(()),
        })
    }

    pub fn name(&self) -> &str {
        self.carrier.name()
    }

    pub fn carrier(&self) -> &Arc<dyn Carrier> {
        &self.carrier
    }

    /// Its state now: bound, unbound for less than `failover_after`, or passed over.
    fn observe(&self, failover_after: Duration) -> ConnectionState {
        let mut since = self.unbound_since.lock().unwrap_or_else(|e| e.into_inner());
        if self.carrier.health().ready() {
            *since = None;
            if self.passed_over.swap(false, Ordering::AcqRel) {
                tracing::info!(
                    connection = self.name(),
                    "the connection is bound again: its routes use it again"
                );
            }
            return ConnectionState::Bound;
        }
        let at = *since.get_or_insert_with(Instant::now);
        if at.elapsed() < failover_after {
            return ConnectionState::Unbound;
        }
        if !self.passed_over.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                connection = self.name(),
                unbound_for = ?at.elapsed(),
                "the connection is passed over: its routes use their next connection until it binds again"
            );
            metrics::counter!(
                "agentmessage_connection_failovers_total",
                "connection" => self.name().to_owned()
            )
            .increment(1);
        }
        ConnectionState::PassedOver
    }

    /// Up to `most` messages of the connection's throughput, waiting at most `wait` for the
    /// first: `most` when it has no limit, none when no token came in time.
    pub async fn tokens(&self, services: &Services, most: usize, wait: Duration) -> usize {
        if self.throughput == 0 || most == 0 {
            return most;
        }
        let rate = f64::from(self.throughput);
        let burst = f64::from(burst_of(self.throughput));
        let deadline = Instant::now() + wait;
        let Ok(_turn) = tokio::time::timeout(wait, self.turn.lock()).await else {
            return 0;
        };
        loop {
            let next = match self.take(services, rate, burst, most).await {
                Ok((n, _)) if n > 0 => return n,
                Ok((_, next)) => next,
                Err(err) => {
                    tracing::warn!(%err, connection = self.name(), "the connection's throughput could not be read; nothing is submitted through it now");
                    return 0;
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return 0;
            }
            tokio::time::sleep(next.max(Duration::from_millis(1)).min(left)).await;
        }
    }

    /// Takes up to `most` tokens now, from the shared bucket (PostgreSQL) or this process's
    /// limiter: how many, and about how long until the next one when none was left.
    async fn take(
        &self,
        services: &Services,
        rate: f64,
        burst: f64,
        most: usize,
    ) -> Result<(usize, Duration), crate::service::Error> {
        let refill = Duration::from_secs_f64(1.0 / rate.max(1.0));
        if let Some((granted, available)) = services
            .lease_connection_tokens(self.name(), rate, burst, most as f64)
            .await?
        {
            // None left: ask again once several have come (half the bucket, or what is wanted),
            // so that a throttled process asks the database a few times a second, not per token.
            let worth = (most as f64).min(burst / 2.0).max(1.0);
            let next = Duration::from_secs_f64((worth - available).max(0.0) / rate.max(1.0));
            return Ok((
                granted.max(0.0) as usize,
                next.max(Duration::from_millis(1)),
            ));
        }
        let Some(limiter) = &self.local else {
            return Ok((most, Duration::ZERO));
        };
        let mut taken = 0;
        while taken < most {
            match limiter.check() {
                Ok(()) => taken += 1,
                Err(not_until) => {
                    let next =
                        not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                    return Ok((taken, next));
                }
            }
        }
        Ok((taken, refill))
    }
}

/// One route: the live messages of `channel` whose recipient starts with `prefix` (and with
/// none of the longer prefixes other routes of the channel take), to `connections` in order.
#[derive(Clone)]
pub struct Route {
    pub channel: Channel,
    pub prefix: String,
    excluded: Vec<String>,
    connections: Vec<Arc<Connection>>,
}

impl Route {
    pub fn new(
        channel: Channel,
        prefix: impl Into<String>,
        connections: Vec<Arc<Connection>>,
    ) -> Route {
        Route {
            channel,
            prefix: prefix.into(),
            excluded: Vec::new(),
            connections,
        }
    }
}

/// What one claim takes: the queued messages of these modes and channels whose recipient
/// starts with `prefix` and with none of `excluded`, for `connection`.
pub struct Claim {
    pub connection: Arc<Connection>,
    pub modes: Vec<KeyMode>,
    pub channels: Vec<Channel>,
    pub prefix: String,
    pub excluded: Vec<String>,
}

/// One (connection, mode, channel, prefix, exclusions) a claim takes.
type Wanted = (Arc<Connection>, KeyMode, Channel, String, Vec<String>);

/// Every route of a worker, the test connection and the failover setting.
#[derive(Clone)]
pub struct Routing {
    routes: Vec<Route>,
    test: Arc<Connection>,
    failover_after: Duration,
}

impl Routing {
    /// `routes` (each channel's prefixes made exclusive: the longest wins), test-mode messages
    /// to `test`, and connections passed over once unbound for `failover_after`.
    pub fn new(routes: Vec<Route>, test: Arc<Connection>, failover_after: Duration) -> Routing {
        let mut routing = Routing {
            routes,
            test,
            failover_after,
        };
        routing.exclusive();
        routing
    }

    /// One connection for every live message, and test mode's too.
    pub fn single(carrier: Arc<dyn Carrier>) -> Routing {
        let connection = Connection::new(carrier, 0);
        let routes = Channel::ALL
            .iter()
            .map(|c| Route::new(*c, "", vec![connection.clone()]))
            .collect();
        Routing::new(
            routes,
            connection,
            crate::defaults::duration(crate::defaults::FAILOVER_AFTER),
        )
    }

    /// The same routing with test-mode messages to `carrier`.
    pub fn with_test(mut self, carrier: Arc<dyn Carrier>) -> Routing {
        self.test = Connection::new(carrier, 0);
        self
    }

    /// The same routing with every live message of `channel` to `carrier`.
    pub fn with_channel(mut self, channel: Channel, carrier: Arc<dyn Carrier>) -> Routing {
        self.routes.retain(|r| r.channel != channel);
        self.routes
            .push(Route::new(channel, "", vec![Connection::new(carrier, 0)]));
        self.exclusive();
        self
    }

    /// Each route's exclusions: the longer prefixes of its channel that start with its own.
    fn exclusive(&mut self) {
        let all: Vec<(Channel, String)> = self
            .routes
            .iter()
            .map(|r| (r.channel, r.prefix.clone()))
            .collect();
        for route in &mut self.routes {
            route.excluded = all
                .iter()
                .filter(|(c, p)| {
                    *c == route.channel
                        && p.len() > route.prefix.len()
                        && p.starts_with(&route.prefix)
                })
                .map(|(_, p)| p.clone())
                .collect();
        }
    }

    /// Every connection, each once: the routes' in order, then the test connection.
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<Arc<Connection>> = Vec::new();
        for c in self
            .routes
            .iter()
            .flat_map(|r| r.connections.iter())
            .chain(std::iter::once(&self.test))
        {
            if !all.iter().any(|known| Arc::ptr_eq(known, c)) {
                all.push(c.clone());
            }
        }
        all
    }

    /// The route a live message of `channel` to `to` takes: the longest prefix of it.
    fn route_of(&self, channel: Channel, to: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.channel == channel && to.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
    }

    /// The connection a message goes to now (the first of its route not passed over; the test
    /// connection in test mode), or `None` when its route has none or no route takes it.
    pub fn choose(&self, mode: KeyMode, channel: Channel, to: &str) -> Option<Arc<Connection>> {
        if mode == KeyMode::Test {
            return Some(self.test.clone());
        }
        let route = self.route_of(channel, to)?;
        route
            .connections
            .iter()
            .find(|c| c.observe(self.failover_after) != ConnectionState::PassedOver)
            .cloned()
    }

    /// What to claim now: for each route, the first of its connections not passed over, when it
    /// is bound (a route whose choice is briefly unbound waits for it); test mode's messages
    /// for the test connection. Claims for one connection with one prefix are made one
    /// statement where their modes and channels allow.
    pub fn claims(&self) -> Vec<Claim> {
        let mut states: Vec<(Arc<Connection>, ConnectionState)> = Vec::new();
        let mut state_of = |c: &Arc<Connection>| -> ConnectionState {
            if let Some((_, s)) = states.iter().find(|(k, _)| Arc::ptr_eq(k, c)) {
                return *s;
            }
            let s = c.observe(self.failover_after);
            states.push((c.clone(), s));
            s
        };
        let mut wanted: Vec<Wanted> = Vec::new();
        for route in &self.routes {
            let chosen = route
                .connections
                .iter()
                .map(|c| (c, state_of(c)))
                .find(|(_, s)| *s != ConnectionState::PassedOver);
            if let Some((c, ConnectionState::Bound)) = chosen {
                wanted.push((
                    c.clone(),
                    KeyMode::Live,
                    route.channel,
                    route.prefix.clone(),
                    route.excluded.clone(),
                ));
            }
        }
        if state_of(&self.test) == ConnectionState::Bound {
            for channel in Channel::ALL {
                wanted.push((
                    self.test.clone(),
                    KeyMode::Test,
                    *channel,
                    String::new(),
                    Vec::new(),
                ));
            }
        }
        let mut claims: Vec<Claim> = Vec::new();
        let mut done = vec![false; wanted.len()];
        for i in 0..wanted.len() {
            if done[i] {
                continue;
            }
            let (c, _, _, prefix, excluded) = &wanted[i];
            let group: Vec<usize> = (i..wanted.len())
                .filter(|&j| {
                    !done[j]
                        && Arc::ptr_eq(&wanted[j].0, c)
                        && &wanted[j].3 == prefix
                        && &wanted[j].4 == excluded
                })
                .collect();
            let mut modes: Vec<KeyMode> = Vec::new();
            let mut channels: Vec<Channel> = Vec::new();
            for &j in &group {
                if !modes.contains(&wanted[j].1) {
                    modes.push(wanted[j].1);
                }
                if !channels.contains(&wanted[j].2) {
                    channels.push(wanted[j].2);
                }
            }
            if modes.len() * channels.len() == group.len() {
                // Every mode with every channel: one statement.
                for &j in &group {
                    done[j] = true;
                }
                claims.push(Claim {
                    connection: c.clone(),
                    modes,
                    channels,
                    prefix: prefix.clone(),
                    excluded: excluded.clone(),
                });
            } else {
                done[i] = true;
                claims.push(Claim {
                    connection: c.clone(),
                    modes: vec![wanted[i].1],
                    channels: vec![wanted[i].2],
                    prefix: prefix.clone(),
                    excluded: excluded.clone(),
                });
            }
        }
        claims
    }

    /// Every connection's state, the first connection of the default SMS route, and whether
    /// every route has a bound connection.
    pub fn health(&self) -> DeliveryHealth {
        let connections: Vec<ConnectionHealth> = self
            .connections()
            .into_iter()
            .map(|c| ConnectionHealth {
                name: c.name().to_owned(),
                health: c.carrier.health(),
                state: c.observe(self.failover_after),
                throughput: c.throughput,
            })
            .collect();
        let bound = |c: &Arc<Connection>| {
            connections
                .iter()
                .any(|h| h.name == c.name() && h.state == ConnectionState::Bound)
        };
        let ready = self.routes.iter().all(|r| r.connections.iter().any(bound));
        let primary = self
            .route_of(Channel::Sms, "")
            .or(self.routes.first())
            .and_then(|r| r.connections.first())
            .unwrap_or(&self.test);
        DeliveryHealth {
            primary: primary.carrier.health(),
            connections,
            ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{
        carrier::{Capabilities, Room, Submission, SubmitError},
        CarrierHealth,
    };

    /// A carrier whose one session is bound or not as the test says.
    struct Fake {
        name: &'static str,
        bound: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Carrier for Fake {
        fn name(&self) -> &str {
            self.name
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities { mms: true }
        }
        fn health(&self) -> CarrierHealth {
            CarrierHealth {
                kind: "smpp",
                sessions: 1,
                bound: u32::from(self.bound.load(Ordering::Relaxed)),
            }
        }
        async fn submit_in(
            &self,
            _: &Submission,
            _: &crate::domain::message::Part,
            room: Room,
        ) -> (Result<String, SubmitError>, Room) {
            (Ok("id".into()), room)
        }
    }

    fn fake(name: &'static str) -> Arc<Fake> {
        Arc::new(Fake {
            name,
            bound: AtomicBool::new(true),
        })
    }

    /// Each claim as `connection mode,… channel,… prefix -excluded,…`.
    fn described(routing: &Routing) -> Vec<String> {
        routing
            .claims()
            .iter()
            .map(|c| {
                let modes: Vec<&str> = c.modes.iter().map(|m| m.as_str()).collect();
                let channels: Vec<&str> = c.channels.iter().map(|m| m.as_str()).collect();
                format!(
                    "{} {} {} {}-{}",
                    c.connection.name(),
                    modes.join(","),
                    channels.join(","),
                    c.prefix,
                    c.excluded.join(",")
                )
            })
            .collect()
    }

    #[test]
    fn one_carrier_for_everything_is_one_claim() {
        let routing = Routing::single(fake("simulated"));
        assert_eq!(described(&routing), ["simulated live,test sms,mms -"]);
    }

    #[test]
    fn the_longest_prefix_wins_and_a_passed_over_connection_hands_its_routes_on() {
        let (a, b, c, t) = (fake("a"), fake("b"), fake("c"), fake("test"));
        let (ca, cb, cc) = (
            Connection::new(a.clone(), 0),
            Connection::new(b.clone(), 10),
            Connection::new(c.clone(), 0),
        );
        let routes = vec![
            Route::new(Channel::Sms, "+44", vec![ca.clone(), cb.clone()]),
            Route::new(Channel::Sms, "+4420", vec![cb.clone()]),
            Route::new(Channel::Sms, "", vec![cb.clone(), ca.clone()]),
            Route::new(Channel::Mms, "", vec![cc.clone()]),
        ];
        let routing = Routing::new(routes, Connection::new(t, 0), Duration::from_millis(50));
        assert_eq!(
            described(&routing),
            [
                "a live sms +44-+4420",
                "b live sms +4420-",
                "b live sms -+44,+4420",
                "c live mms -",
                "test test sms,mms -",
            ]
        );
        let to = |n: &str| {
            routing
                .choose(KeyMode::Live, Channel::Sms, n)
                .map(|c| c.name().to_owned())
        };
        assert_eq!(to("+447700900123").as_deref(), Some("a"));
        assert_eq!(to("+442071234567").as_deref(), Some("b"));
        assert_eq!(to("+12125550100").as_deref(), Some("b"));
        // Unbound for less than the failover setting: its route waits for it.
        a.bound.store(false, Ordering::Relaxed);
        assert_eq!(
            described(&routing),
            [
                "b live sms +4420-",
                "b live sms -+44,+4420",
                "c live mms -",
                "test test sms,mms -"
            ]
        );
        assert!(routing.health().ready, "every route has a bound connection");
        c.bound.store(false, Ordering::Relaxed);
        assert!(
            !routing.health().ready,
            "the MMS route has no bound connection"
        );
        c.bound.store(true, Ordering::Relaxed);
        // Past it: passed over, its route goes to the next connection.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            described(&routing),
            [
                "b live sms +44-+4420",
                "b live sms +4420-",
                "b live sms -+44,+4420",
                "c live mms -",
                "test test sms,mms -"
            ]
        );
        assert_eq!(to("+447700900123").as_deref(), Some("b"));
        let health = routing.health();
        assert!(health.ready);
        let state = |n: &str| {
            health
                .connections
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.state)
        };
        assert_eq!(state("a"), Some(ConnectionState::PassedOver));
        assert_eq!(
            health
                .connections
                .iter()
                .find(|c| c.name == "b")
                .map(|c| c.throughput),
            Some(10)
        );
        assert_eq!(health.primary.kind, "smpp");
        // Bound again: back to it.
        a.bound.store(true, Ordering::Relaxed);
        assert_eq!(to("+447700900123").as_deref(), Some("a"));
        assert_eq!(described(&routing)[0], "a live sms +44-+4420");
        // Test mode never reaches a live connection.
        assert_eq!(
            routing
                .choose(KeyMode::Test, Channel::Sms, "+447700900123")
                .map(|c| c.name().to_owned())
                .as_deref(),
            Some("test")
        );
    }
}
