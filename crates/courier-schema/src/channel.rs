//! The model of `channels.json`: one [`Channel`] per declared channel, with
//! every default filled in so that later stages never guess.

use std::time::Duration;

use serde::Deserialize;

/// How a channel moves its messages through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A Redis Stream read by consumer groups.
    Stream,
    /// A reliable list queue with per-consumer processing lists.
    List,
    /// A sorted set ordered by priority, then age, with an SLA.
    Priority,
    /// Pub/Sub broadcast: at most once, for notices that may be missed.
    Pubsub,
}

impl Transport {
    /// The name used in `channels.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stream => "stream",
            Transport::List => "list",
            Transport::Priority => "priority",
            Transport::Pubsub => "pubsub",
        }
    }
}

/// Which readers and writers a new message version must keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    /// A consumer on the new version reads messages of the previous one.
    Backward,
    /// As `Backward`, against every earlier version.
    BackwardTransitive,
    /// A consumer on the previous version reads messages of the new one.
    Forward,
    /// As `Forward`, against every earlier version.
    ForwardTransitive,
    /// Both `Backward` and `Forward`.
    Full,
    /// Both, against every earlier version.
    FullTransitive,
    /// No check.
    None,
}

impl Compatibility {
    /// Whether every new version's messages are valid under the previous
    /// version's schema, so a consumer may read a version newer than it
    /// knows as its newest one (the subset relation chains across versions).
    pub fn reads_newer(self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// The name used in `channels.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::Backward => "backward",
            Compatibility::BackwardTransitive => "backward_transitive",
            Compatibility::Forward => "forward",
            Compatibility::ForwardTransitive => "forward_transitive",
            Compatibility::Full => "full",
            Compatibility::FullTransitive => "full_transitive",
            Compatibility::None => "none",
        }
    }
}

/// Retry delays: exponential from `initial`, capped at `max`, with full
/// jitter applied by the runtime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Upper bound of the first retry's delay.
    pub initial: Duration,
    /// Upper bound of any retry's delay.
    pub max: Duration,
    /// Growth of the bound per attempt.
    pub multiplier: f64,
}

/// How long a stream keeps entries, whatever their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Approximate maximum number of entries (`XADD MAXLEN ~`).
    pub max_len: Option<u64>,
    /// Entries older than this are trimmed (`XADD MINID ~`).
    pub max_age: Duration,
}

/// When a publish is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once the primary has written it: a failover before a replica copied
    /// it can lose it.
    #[default]
    Primary,
    /// Once `replicas` replicas have it too (`WAIT replicas timeout`); a
    /// publish that fewer replicas confirmed within `timeout` fails as
    /// transient, and its retry with the same key does not duplicate it.
    Replicated {
        /// Replicas that must confirm the write.
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

/// How a channel splits into partitions, each with its own keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitions {
    /// One partition per value of a string field (regions, tenants).
    Values {
        /// JSON pointer to the payload field that names the partition.
        field: String,
        /// The partition names, in declared order.
        values: Vec<String>,
    },
    /// `buckets` partitions chosen by a hash of a payload field.
    Buckets {
        /// JSON pointer to the payload field that is hashed.
        field: String,
        /// How many partitions.
        buckets: u32,
    },
}

impl Partitions {
    /// JSON pointer to the payload field that routes a message.
    pub fn field(&self) -> &str {
        match self {
            Partitions::Values { field, .. } | Partitions::Buckets { field, .. } => field,
        }
    }
}

/// A downstream dependency of a channel's consumers, guarded by a circuit
/// breaker every worker shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyContract {
    /// The breaker's name, shared by every channel that calls it.
    pub name: String,
    /// Failures within the window that open the breaker.
    pub failure_threshold: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long the breaker stays open before probing.
    pub cool_down: Duration,
}

/// A rate limit shared by every worker consuming the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct RateContract {
    /// The limit's name: channels with one name share one limit; default:
    /// the channel's own limit.
    pub name: Option<String>,
    /// Handler starts per second.
    pub per_second: f64,
    /// How many may start at once after a quiet period.
    pub burst: u32,
}

/// One channel of a domain, as declared in `channels.json`, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Channel name, unique in its domain.
    pub name: String,
    /// What the channel is for.
    pub description: String,
    /// The message it carries (`<message>.v<N>.json` in the same domain).
    pub message: String,
    /// How messages move.
    pub transport: Transport,
    /// Lifetime of a message; after it the message is dead-lettered as expired.
    pub ttl: Duration,
    /// How long a consumer may hold a message before another may reclaim it.
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
    pub partitions: Option<Partitions>,
    /// Compatibility rule between message versions.
    pub compatibility: Compatibility,
    /// Roles allowed to publish.
    pub producers: Vec<String>,
    /// Roles allowed to consume.
    pub consumers: Vec<String>,
    /// The downstream dependency consumers call, if declared.
    pub dependency: Option<DependencyContract>,
    /// The shared rate consumers start handlers at, if limited.
    pub rate_limit: Option<RateContract>,
    /// The channel SLA breaches are announced on (priority channels).
    pub sla_notice: Option<String>,
    /// When a publish is acknowledged.
    pub durability: Durability,
}

/// Defaults for what a channel leaves out; the README's channel reference
/// lists the same values.
pub mod defaults {
    use std::time::Duration;

    /// Message lifetime.
    pub const TTL: Duration = Duration::from_secs(24 * 3600);
    /// Visibility timeout.
    pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Deliveries before dead-lettering.
    pub const MAX_ATTEMPTS: u32 = 5;
    /// First retry's delay bound.
    pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
    /// Largest retry delay bound.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
    /// Growth per attempt.
    pub const BACKOFF_MULTIPLIER: f64 = 2.0;
    /// Stream retention, as a multiple of the TTL: an entry is trimmed only
    /// well after it expired, so a pending entry is not trimmed away before
    /// a consumer could dead-letter it as expired.
    pub const RETENTION_TTL_FACTOR: u32 = 2;
    /// Dependency failures within the window that open its breaker.
    pub const FAILURE_THRESHOLD: u32 = 5;
    /// The window dependency failures are counted in.
    pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
    /// How long an open breaker waits before probing.
    pub const COOL_DOWN: Duration = Duration::from_secs(30);
    /// Replicas a replicated publish waits for.
    pub const REPLICAS: u32 = 1;
    /// How long a replicated publish waits for its replicas.
    pub const REPLICATION_TIMEOUT: Duration = Duration::from_secs(2);
}

/// The shape of `channels.json` after its meta-schema passed.
#[derive(Debug, Deserialize)]
pub(crate) struct RawChannels {
    pub domain: String,
    pub description: String,
    pub channels: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawChannel {
    pub description: String,
    pub message: String,
    pub transport: Transport,
    pub ttl: Option<String>,
    pub visibility_timeout: Option<String>,
    pub dedup_window: Option<String>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<RawBackoff>,
    pub retention: Option<RawRetention>,
    pub max_depth: Option<u64>,
    pub sla: Option<String>,
    pub partitions: Option<RawPartitions>,
    pub compatibility: Compatibility,
    pub producers: Vec<String>,
    pub consumers: Vec<String>,
    pub dependency: Option<RawDependency>,
    pub rate_limit: Option<RawRate>,
    pub sla_notice: Option<String>,
    pub durability: Option<RawDurability>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawDurability {
    Named(String),
    Replicated {
        replicas: Option<u32>,
        timeout: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawDependency {
    pub name: String,
    pub failure_threshold: Option<u32>,
    pub window: Option<String>,
    pub cool_down: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawRate {
    pub name: Option<String>,
    pub per_second: f64,
    pub burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawBackoff {
    pub initial: Option<String>,
    pub max: Option<String>,
    pub multiplier: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawRetention {
    pub max_len: Option<u64>,
    pub max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawPartitions {
    pub field: String,
    pub values: Option<Vec<String>>,
    pub buckets: Option<u32>,
}
