//! HTTP tests against the real app on an ephemeral port. Tests written with `on_both_backends!`
//! or `for_each_backend!` run on SQLite and on PostgreSQL; the rest run where their behaviour
//! lives (tests/README.md lists which and why).

#[path = "../common/child.rs"]
mod child;
#[path = "../common/noise.rs"]
mod noise;
#[path = "../common/pg.rs"]
mod pg;
#[path = "../common/receiver.rs"]
#[allow(dead_code)]
mod receiver;
mod support;
#[path = "../common/tools.rs"]
mod tools;

mod api_keys;
mod cli;
mod consents_lookups;
mod docs;
mod faults;
mod idempotency;
mod inbound;
mod isolation;
mod key_cache;
mod lifecycle;
mod limits;
mod listing;
mod media;
mod ops;
mod readme;
mod readme_webhooks;
mod receipts_property;
mod requests;
mod schedule;
mod send;
mod spec;
mod test_mode;
mod webhook_signatures;
mod webhooks;
