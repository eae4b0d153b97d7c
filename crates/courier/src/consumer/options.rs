//! How a consumer runs: [`ConsumerOptions`], with the shared [`Rate`] and
//! the guarded [`Dependency`] it may name.
//!
//! Kept apart from the pipeline so that every tunable is read in one
//! place; `Default` suits most consumers.

use std::time::Duration;

use crate::breaker::BreakerConfig;

/// How a consumer runs; `Default` suits most.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Handlers in flight at once.
    pub concurrency: usize,
    /// Most messages read at once (per `XREADGROUP` on streams).
    pub batch: usize,
    /// Messages read beyond the free handler slots, waiting for one
    /// (default 0: a read takes only what free slots can start at once).
    /// Many short handlers drain faster with fuller reads; the cost is that
    /// a read-ahead message not started when the consumer stops stays
    /// pending until it is reclaimed after the visibility timeout. One that
    /// waits half the visibility timeout for a slot is not started (another
    /// consumer could reclaim it meanwhile and act on it too): it is taken
    /// back and handled later.
    pub read_ahead: usize,
    /// How long one blocking read waits for new entries; also bounds how
    /// long shutdown takes to notice.
    pub block: Duration,
    /// How often due retries are moved back to the stream.
    pub poll_interval: Duration,
    /// How often idle entries are reclaimed; default a quarter of the
    /// visibility timeout, between 50 ms and 5 s.
    pub claim_interval: Option<Duration>,
    /// How long shutdown waits for handlers in flight before leaving their
    /// messages pending for other consumers.
    pub grace: Duration,
    /// Partitions to consume; default all.
    pub partitions: Option<Vec<String>>,
    /// On priority channels, raise a message that breached its SLA to the
    /// highest priority (keeping its age order).
    pub escalate_sla_breaches: bool,
    /// A downstream dependency guarded by a circuit breaker shared by every
    /// worker: handler retries count as its failures; while it is open no
    /// worker takes work, and messages wait without using up attempts.
    pub dependency: Option<Dependency>,
    /// A rate shared by every worker that names it: handlers wait instead
    /// of exceeding it.
    pub rate_limit: Option<Rate>,
    /// Handle each partition's messages one at a time, in order; default:
    /// yes on partitioned channels. A retried message goes back to the end.
    pub ordered: Option<bool>,
}

/// A rate limit shared, by name, by every worker that uses it.
#[derive(Debug, Clone)]
pub struct Rate {
    /// The limit's name: a channel's or a downstream dependency's.
    pub name: String,
    /// Steady handler starts per second, across all workers.
    pub per_second: f64,
    /// How many may start at once after a quiet period.
    pub burst: u32,
}

/// A dependency of a consumer's handler, guarded by a shared breaker.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// The breaker's name, shared by every consumer that calls it.
    pub name: String,
    /// When it opens and closes.
    pub breaker: BreakerConfig,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            batch: 64,
            read_ahead: 0,
            block: Duration::from_millis(500),
            poll_interval: Duration::from_millis(50),
            claim_interval: None,
            grace: Duration::from_secs(10),
            partitions: None,
            escalate_sla_breaches: true,
            dependency: None,
            rate_limit: None,
            ordered: None,
        }
    }
}
