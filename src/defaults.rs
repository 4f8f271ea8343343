//! Every setting's default, written once. The flags and their environment variables
//! (`config`) take these as their default text, and the settings' `Default` impls — what the
//! library and the tests start from — read the same values, so a default cannot differ between
//! a command line and a test.

use std::time::Duration;

/// A default duration written as a flag would take it (`30s`, `24h`, …).
pub fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).expect("a default written as a valid duration")
}

// The database.
pub const DATABASE_URL: &str = "sqlite://agentmessage.db";
pub const DB_MAX_CONNECTIONS: u32 = 16;
pub const DB_ACQUIRE_TIMEOUT: &str = "5s";
pub const DB_CONNECT_TIMEOUT: &str = "5s";
pub const DB_BUSY_TIMEOUT: &str = "5s";
pub const DB_STARTUP_RETRY: &str = "30s";

// The rules.
pub const LOOKUP_MAX_AGE: &str = "30d";
pub const LOOKUP_REUSE: &str = "24h";
pub const IDEMPOTENCY_RETENTION: &str = "24h";
pub const UNMATCHED_RECEIPT_RETENTION: &str = "7d";

// What one organization may hold, per mode.
pub const MAX_WEBHOOK_ENDPOINTS: u64 = 16;
pub const MAX_API_KEYS: u64 = 100;
/// The most bytes one MMS's media may add up to (5 MiB).
pub const MMS_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// How long fetching one message's media may take, all items together.
pub const MEDIA_FETCH_TIMEOUT: &str = "10s";

// The worker.
pub const RECEIPT_DELAY: &str = "500ms";
pub const VALIDITY: &str = "48h";
pub const RETRY_BACKOFF: &str = "5s";
pub const LEASE: &str = "30s";
pub const POLL: &str = "100ms";
pub const SWEEP_EVERY: &str = "500ms";
pub const BATCH_SIZE: u64 = 128;
pub const LANES: usize = 8;

// Webhooks.
pub const WEBHOOK_TIMEOUT: &str = "15s";
pub const WEBHOOK_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,14h,20h,24h";
pub const WEBHOOK_RETENTION: &str = "30d";
pub const WEBHOOK_SECRET_OVERLAP: &str = "24h";
pub const WEBHOOK_CONCURRENCY: u64 = 256;
pub const WEBHOOK_PER_ENDPOINT: u64 = 32;
pub const WEBHOOK_PER_ORGANIZATION: u64 = 64;
pub const WEBHOOK_POLL: &str = "100ms";
pub const WEBHOOK_RETRY_AFTER_FLOOR: &str = "5s";

// The carrier.
pub const CARRIER: &str = "simulated";
pub const SMPP_BINDS: u32 = 1;
pub const SMPP_WINDOW: u32 = 10;
pub const SMPP_THROUGHPUT: u32 = 0;
pub const SMPP_ENQUIRE_LINK: &str = "30s";
pub const SMPP_RESPONSE_TIMEOUT: &str = "30s";
pub const SMPP_RECONNECT_MIN: &str = "1s";
pub const SMPP_RECONNECT_MAX: &str = "60s";
pub const SMPP_THROTTLE_PAUSE: &str = "1s";
pub const SMPP_REASSEMBLY_TIMEOUT: &str = "60s";
pub const SMPP_REASSEMBLY_MAX_SETS: u64 = 1000;
pub const SMPP_REASSEMBLY_MAX_BYTES: u64 = 1024 * 1024;
pub const SMPP_CLOSE_TIMEOUT: &str = "10s";
/// How long a named connection may stay unbound before its routes pass over it.
pub const FAILOVER_AFTER: &str = "30s";
pub const SMPP_SOURCE_TON: u8 = 1;
pub const SMPP_SOURCE_NPI: u8 = 1;
pub const SMPP_DEST_TON: u8 = 1;
pub const SMPP_DEST_NPI: u8 = 1;
pub const MM7_VERSION: &str = "6.8.0";

// Scheduling.
pub const SCHEDULE_MIN_LEAD: &str = "5m";
pub const SCHEDULE_MAX_LEAD: &str = "35d";
pub const MM7_TIMEOUT: &str = "30s";
pub const MM7_CONCURRENCY: u32 = 8;

// The processes.
pub const OPS_LISTEN: &str = "127.0.0.1:9090";
pub const SHUTDOWN_GRACE: &str = "10s";
pub const LISTEN: &str = "127.0.0.1:8080";
pub const HEADER_READ_TIMEOUT: &str = "10s";
pub const IDLE_TIMEOUT: &str = "60s";
pub const BODY_READ_TIMEOUT: &str = "30s";
pub const MAX_CONNECTIONS: u64 = 1024;
pub const MAX_CONNECTIONS_PER_ADDRESS: u64 = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every default written as a duration or a schedule reads as one.
    #[test]
    fn every_duration_default_reads() {
        for text in [
            DB_ACQUIRE_TIMEOUT,
            DB_CONNECT_TIMEOUT,
            DB_BUSY_TIMEOUT,
            DB_STARTUP_RETRY,
            LOOKUP_MAX_AGE,
            LOOKUP_REUSE,
            IDEMPOTENCY_RETENTION,
            UNMATCHED_RECEIPT_RETENTION,
            RECEIPT_DELAY,
            VALIDITY,
            RETRY_BACKOFF,
            LEASE,
            POLL,
            SWEEP_EVERY,
            WEBHOOK_TIMEOUT,
            WEBHOOK_RETENTION,
            WEBHOOK_SECRET_OVERLAP,
            WEBHOOK_POLL,
            WEBHOOK_RETRY_AFTER_FLOOR,
            SMPP_ENQUIRE_LINK,
            SMPP_RESPONSE_TIMEOUT,
            SMPP_RECONNECT_MIN,
            SMPP_RECONNECT_MAX,
            SMPP_THROTTLE_PAUSE,
            SMPP_REASSEMBLY_TIMEOUT,
            SMPP_CLOSE_TIMEOUT,
            FAILOVER_AFTER,
            MM7_TIMEOUT,
            SCHEDULE_MIN_LEAD,
            SCHEDULE_MAX_LEAD,
            SHUTDOWN_GRACE,
            HEADER_READ_TIMEOUT,
            IDLE_TIMEOUT,
            BODY_READ_TIMEOUT,
        ] {
            assert!(duration(text) > Duration::ZERO, "{text}");
        }
        for step in WEBHOOK_SCHEDULE.split(',') {
            assert!(duration(step) > Duration::ZERO, "{step}");
        }
    }

    /// The webhook retry schedule's default is the Standard Webhooks schedule.
    #[test]
    fn the_webhook_schedule_is_the_standard_one() {
        let schedule: Vec<Duration> = WEBHOOK_SCHEDULE.split(',').map(duration).collect();
        assert_eq!(schedule, crate::domain::webhooks::DEFAULT_SCHEDULE.to_vec());
    }
}
