//! A channel's contract, as generated code declares it from `channels.json`.

use std::time::Duration;

use courier_schema::{Backoff, Compatibility, Durability, Retention, Transport};

use crate::contract::{Contract, Readable};
use crate::error::Error;

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
    /// When a publish is acknowledged: by the primary alone, or once
    /// replicas confirmed it too (`WAIT`).
    pub durability: Durability,
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

/// A channel as a type: what its consumers read and its producers write.
///
/// Generated code declares one per channel (`channels::billing::Billing`),
/// and [`Producer::of`](crate::Producer::of) and
/// [`Consumer::of`](crate::Consumer::of) take it, so a producer writes only
/// the channel's latest message version and a consumer reads only its
/// message enum: anything else does not compile.
pub trait Channel: 'static {
    /// Every version consumers of the channel read.
    type Message: Readable;
    /// The version producers of the channel write: the newest.
    type Latest: Contract;
    /// The channel's contract.
    const SPEC: &'static ChannelSpec;
}

impl ChannelSpec {
    /// Refuses a message type of another schema than the channel's: what
    /// the untyped constructors check before they publish or consume.
    pub(crate) fn expect_schema(&self, schema: &'static str) -> Result<(), Error> {
        if schema == self.schema {
            return Ok(());
        }
        Err(Error::SchemaMismatch {
            expected: self.schema,
            found: schema.to_string(),
        })
    }

    /// The spec of a channel read from `schemas/` at run time, for tools
    /// that know channels only from the registry (the `courier` CLI). The
    /// strings are leaked: a tool builds each spec once per process.
    /// Generated crates declare the same values as constants; a test checks
    /// that the two agree.
    pub fn from_contract(
        domain: &courier_schema::Domain,
        channel: &courier_schema::Channel,
    ) -> &'static ChannelSpec {
        fn leak(text: &str) -> &'static str {
            Box::leak(text.to_string().into_boxed_str())
        }
        let partitions = channel.partitions.as_ref().map(|p| match p {
            courier_schema::Partitions::Values { field, values } => PartitionSpec::Values {
                field: leak(field),
                values: Box::leak(
                    values
                        .iter()
                        .map(|v| leak(v))
                        .collect::<Vec<_>>()
                        .into_boxed_slice(),
                ),
            },
            courier_schema::Partitions::Buckets { field, buckets } => PartitionSpec::Buckets {
                field: leak(field),
                buckets: *buckets,
            },
        });
        let sla_notice = channel.sla_notice.as_ref().and_then(|target| {
            let target_channel = domain.channels.get(target)?;
            let version = domain
                .messages
                .get(&target_channel.message)?
                .latest()
                .version;
            Some(SlaNoticeSpec {
                channel: ChannelSpec::from_contract(domain, target_channel),
                version,
            })
        });
        Box::leak(Box::new(ChannelSpec {
            domain: leak(&domain.name),
            name: leak(&channel.name),
            schema: leak(&format!("{}.{}", domain.name, channel.message)),
            transport: channel.transport,
            ttl: channel.ttl,
            visibility_timeout: channel.visibility_timeout,
            dedup_window: channel.dedup_window,
            max_attempts: channel.max_attempts,
            backoff: channel.backoff,
            retention: channel.retention,
            max_depth: channel.max_depth,
            sla: channel.sla,
            partitions,
            compatibility: channel.compatibility,
            dependency: channel.dependency.as_ref().map(|d| DependencySpec {
                name: leak(&d.name),
                failure_threshold: d.failure_threshold,
                window: d.window,
                cool_down: d.cool_down,
            }),
            rate_limit: channel.rate_limit.as_ref().map(|r| RateSpec {
                name: r.name.as_deref().map(leak),
                per_second: r.per_second,
                burst: r.burst,
            }),
            sla_notice,
            durability: channel.durability,
        }))
    }

    /// `<domain>.<channel>`, the channel's name in logs, metrics and keys.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.domain, self.name)
    }
}
