//! A channel's contract, as generated code declares it from `channels.json`.

use std::time::Duration;

use courier_schema::{Backoff, Compatibility, Retention, Transport};

/// Everything the runtime needs to know about one channel. Generated crates
/// declare one `SPEC` constant per channel; nothing else builds these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelSpec {
    /// The schema domain.
    pub domain: &'static str,
    /// Channel name, unique in the domain.
    pub name: &'static str,
    /// `<domain>.<message>` of the message it carries.
    pub schema: &'static str,
    /// How messages move.
    pub transport: Transport,
    /// Lifetime of a message.
    pub ttl: Duration,
    /// How long a consumer may hold a message before it can be reclaimed.
    pub visibility_timeout: Duration,
    /// How long an idempotency key refuses a second publish.
    pub dedup_window: Duration,
    /// Deliveries before a failing message is dead-lettered.
    pub max_attempts: u32,
    /// Retry delays.
    pub backoff: Backoff,
    /// Stream trimming.
    pub retention: Retention,
    /// Depth past which publishing is refused or waits.
    pub max_depth: Option<u64>,
    /// Time a priority message may wait before it breaches its SLA.
    pub sla: Option<Duration>,
    /// Partitioning, if any.
    pub partitions: Option<PartitionSpec>,
    /// How message versions on this channel relate; with a forward mode a
    /// consumer reads versions newer than it knows as its newest one.
    pub compatibility: Compatibility,
    /// The downstream dependency consumers call, guarded by a shared
    /// circuit breaker.
    pub dependency: Option<DependencySpec>,
    /// The shared rate consumers start handlers at.
    pub rate_limit: Option<RateSpec>,
    /// Where SLA breaches are announced (priority channels).
    pub sla_notice: Option<SlaNoticeSpec>,
}

/// The channel a priority channel announces SLA breaches on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaNoticeSpec {
    /// The notice channel.
    pub channel: &'static ChannelSpec,
    /// The version of its message the notice is written as.
    pub version: u32,
}

/// A dependency from `channels.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencySpec {
    /// The breaker's name.
    pub name: &'static str,
    /// Failures within the window that open it.
    pub failure_threshold: u32,
    /// The counting window.
    pub window: Duration,
    /// How long it stays open before probing.
    pub cool_down: Duration,
}

/// A rate limit from `channels.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSpec {
    /// The limit's name; `None` for the channel's own.
    pub name: Option<&'static str>,
    /// Handler starts per second, across all workers.
    pub per_second: f64,
    /// Starts allowed at once after a quiet period.
    pub burst: u32,
}

/// How a channel splits into partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionSpec {
    /// One partition per value of a string field.
    Values {
        /// JSON pointer to the routing field.
        field: &'static str,
        /// Partition names.
        values: &'static [&'static str],
    },
    /// A hash of a field picks one of `buckets` partitions.
    Buckets {
        /// JSON pointer to the hashed field.
        field: &'static str,
        /// Number of partitions.
        buckets: u32,
    },
}

impl ChannelSpec {
    /// `<domain>.<channel>`, the channel's name in logs, metrics and keys.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.domain, self.name)
    }
}
