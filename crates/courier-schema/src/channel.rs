//! The model of `channels.json`: one [`ChannelSpec`] per declared channel,
//! with every default filled in so that later stages never guess. The same
//! type is what generated code declares and what the runtime runs a channel
//! by (see [`ChannelSpec`]).

use std::borrow::Cow;
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
pub enum PartitionSpec {
    /// One partition per value of a string field (regions, tenants).
    Values {
        /// JSON pointer to the payload field that names the partition.
        field: Text,
        /// The partition names, in declared order.
        values: List,
    },
    /// `buckets` partitions chosen by a hash of a payload field.
    Buckets {
        /// JSON pointer to the payload field that is hashed.
        field: Text,
        /// How many partitions.
        buckets: u32,
    },
}

impl PartitionSpec {
    /// JSON pointer to the payload field that routes a message.
    pub fn field(&self) -> &str {
        match self {
            PartitionSpec::Values { field, .. } | PartitionSpec::Buckets { field, .. } => field,
        }
    }
}

/// A downstream dependency of a channel's consumers, guarded by a circuit
/// breaker every worker shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencySpec {
    /// The breaker's name, shared by every channel that calls it.
    pub name: Text,
    /// Failures within the window that open the breaker.
    pub failure_threshold: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long the breaker stays open before probing.
    pub cool_down: Duration,
}

/// A rate limit shared by every worker consuming the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSpec {
    /// The limit's name: channels with one name share one limit; `None`:
    /// the channel's own limit.
    pub name: Option<Text>,
    /// Handler starts per second, across all workers.
    pub per_second: f64,
    /// How many may start at once after a quiet period.
    pub burst: u32,
}

/// The channel a priority channel announces SLA breaches on, and the
/// version of its message the notice is written as.
///
/// It holds the notice channel's whole spec, not only its name, so that the
/// consumer publishing a notice needs nothing beyond the spec of the channel
/// it consumes (no lookup by name, no second argument).
#[derive(Debug, Clone, PartialEq)]
pub struct SlaNoticeSpec {
    /// The notice channel, a channel of the same domain.
    pub channel: ChannelRef,
    /// The version of its message the notice is written as (the newest).
    pub version: u32,
}

/// A reference to another channel's spec: a constant in generated code, an
/// owned copy in a registry loaded at run time. It dereferences to the
/// [`ChannelSpec`]; two are equal when the specs are.
#[derive(Clone)]
pub enum ChannelRef {
    /// A spec with a static lifetime, as generated code declares it
    /// (`ChannelRef::Static(&super::sla_breaches::SPEC)`).
    Static(&'static ChannelSpec),
    /// A spec owned here, as the registry builds it from `channels.json`.
    Owned(Box<ChannelSpec>),
}

impl std::ops::Deref for ChannelRef {
    type Target = ChannelSpec;

    fn deref(&self) -> &ChannelSpec {
        match self {
            ChannelRef::Static(spec) => spec,
            ChannelRef::Owned(spec) => spec,
        }
    }
}

impl PartialEq for ChannelRef {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for ChannelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Text of a [`ChannelSpec`]: borrowed for the `'static` strings of a
/// constant in generated code, owned when the registry parsed it.
pub type Text = Cow<'static, str>;

/// A list of [`Text`], borrowed or owned like it.
pub type List = Cow<'static, [Text]>;

/// One channel of a domain, as declared in `channels.json`, defaults applied.
///
/// This is the one model of a channel: the registry parses it from
/// `channels.json`, the code generator renders it as a `pub const SPEC` of
/// the generated crate (`courier-codegen`'s `spec_literal`), the docs and
/// the CLI read it, and the runtime (`courier::ChannelSpec` is this type)
/// runs a channel by it. Text and lists are [`Cow`]s so that one type can be
/// both a `const` of generated code and the owned result of parsing. A new
/// setting is a field here, its parsing in the registry, a property in
/// `schemas/courier/channels.schema.json` and a line in the renderer; a test
/// (`courier-codegen`'s `one_channel_model`) keeps it that way.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    /// The schema domain (the folder under `schemas/`).
    pub domain: Text,
    /// Channel name, unique in its domain.
    pub name: Text,
    /// `<domain>.<message>`: the schema name of the message it carries
    /// (`message` in `channels.json`, a `<message>.v<N>.json` of the domain).
    pub schema: Text,
    /// What the channel is for.
    pub description: Text,
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
    pub partitions: Option<PartitionSpec>,
    /// How message versions on this channel relate; with a forward mode a
    /// consumer reads versions newer than it knows as its newest one.
    pub compatibility: Compatibility,
    /// Roles allowed to publish.
    pub producers: List,
    /// Roles allowed to consume.
    pub consumers: List,
    /// The downstream dependency consumers call, guarded by a shared
    /// circuit breaker.
    pub dependency: Option<DependencySpec>,
    /// The shared rate consumers start handlers at, if limited.
    pub rate_limit: Option<RateSpec>,
    /// Where SLA breaches are announced (priority channels).
    pub sla_notice: Option<SlaNoticeSpec>,
    /// When a publish is acknowledged: by the primary alone, or once
    /// replicas confirmed it too (`WAIT`).
    pub durability: Durability,
}

impl ChannelSpec {
    /// A channel with every setting at the default `channels.json` gives
    /// it, `backward` compatibility and no description or roles: the start
    /// of a spec written by hand (tests, tools). At run time, set fields
    /// with `ChannelSpec { ttl, ..ChannelSpec::new(..) }`; a `const` or
    /// `static` starts from another constant instead (`..OTHER::SPEC`),
    /// because a constant cannot drop the fields it replaces in a value a
    /// function returned.
    pub const fn new(
        domain: &'static str,
        name: &'static str,
        schema: &'static str,
        transport: Transport,
    ) -> ChannelSpec {
        ChannelSpec {
            domain: Cow::Borrowed(domain),
            name: Cow::Borrowed(name),
            schema: Cow::Borrowed(schema),
            description: Cow::Borrowed(""),
            transport,
            ttl: defaults::TTL,
            visibility_timeout: defaults::VISIBILITY_TIMEOUT,
            dedup_window: defaults::TTL,
            max_attempts: defaults::MAX_ATTEMPTS,
            backoff: Backoff {
                initial: defaults::BACKOFF_INITIAL,
                max: defaults::BACKOFF_MAX,
                multiplier: defaults::BACKOFF_MULTIPLIER,
            },
            retention: Retention {
                max_len: None,
                max_age: Duration::from_secs(
                    defaults::TTL.as_secs() * defaults::RETENTION_TTL_FACTOR as u64,
                ),
            },
            max_depth: None,
            sla: None,
            partitions: None,
            compatibility: Compatibility::Backward,
            producers: Cow::Borrowed(&[]),
            consumers: Cow::Borrowed(&[]),
            dependency: None,
            rate_limit: None,
            sla_notice: None,
            durability: Durability::Primary,
        }
    }

    /// `<domain>.<channel>`, the channel's name in logs, metrics and keys.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.domain, self.name)
    }

    /// The message's name within its domain (`message` in `channels.json`):
    /// the schema name after `<domain>.`.
    pub fn message(&self) -> &str {
        self.schema
            .split_once('.')
            .map_or(&*self.schema, |(_, message)| message)
    }
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
