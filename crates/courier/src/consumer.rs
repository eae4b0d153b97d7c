//! Consuming a channel: read, check, handle, settle.
//!
//! A [`Consumer`] joins a consumer group and runs one reader per partition
//! on its own connection (a blocking `XREADGROUP` must never sit on the
//! shared connection), up to `concurrency` handlers in flight. Every entry
//! goes through the same steps:
//!
//! 1. checks before the handler, each failure dead-lettered with its
//!    reason: readable envelope, not expired, schema name, version, payload
//!    valid against its schema;
//! 2. an idempotency key already marked done is acknowledged and skipped;
//! 3. the handler's [`Outcome`] is settled by one fenced script: done
//!    (acknowledge + mark done), retry (acknowledge + schedule on the
//!    delayed set with backoff and jitter) or dead-letter.
//!
//! Entries other consumers held past the visibility timeout are reclaimed
//! by any live consumer; one delivered more than `max_attempts` times is
//! dead-lettered as poison. Due retries move back to the stream through a
//! script that every consumer runs safely at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use redis::streams::{StreamClaimReply, StreamPendingCountReply, StreamReadReply};
use redis::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backoff;
use crate::batch::Batcher;
use crate::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::client::{millis, Client, Outbox, PublishOptions};
use crate::contract::{unsupported, Readable};
use crate::dlq::{self, DeadLetter, DeadReason};
use crate::envelope::{self, Attempt, Envelope, TraceContext};
use crate::error::{self, Error};
use crate::keys::ChannelKeys;
use crate::lease::Lease;
use crate::metrics;
use crate::partition;
use crate::ratelimit::RateLimit;
use crate::scripts::{self, MEMBERS, MOVE_DUE, REAP, SETTLE, SETTLE_HELD, SLA, TAKE};
use crate::spec::ChannelSpec;
use crate::spec::SlaNoticeSpec;
use courier_schema::Transport;

/// How often a consumer reads the pause switch and its dependency's
/// breaker: every worker stops taking work within this after either opens.
const GATE_REFRESH: Duration = Duration::from_millis(200);

/// How often the depth and pending gauges are sampled.
const GAUGE_SAMPLE: Duration = Duration::from_secs(2);

/// How often partitions are rebalanced among a group's members.
const REBALANCE: Duration = Duration::from_millis(250);

/// How long a partition lease (and a silent member) lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(2);

/// What a handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: acknowledge it and mark its idempotency key done.
    Done,
    /// Failed for now: try again later, up to the channel's max attempts.
    Retry {
        /// Delay before the next attempt; default: the channel's backoff.
        after: Option<Duration>,
        /// What went wrong, kept in the attempt history.
        error: String,
    },
    /// Failed for good: dead-letter it now.
    Fatal {
        /// What went wrong.
        error: String,
    },
}

impl Outcome {
    /// Retry after the channel's backoff.
    pub fn retry(error: impl fmt::Display) -> Self {
        Outcome::Retry {
            after: None,
            error: error.to_string(),
        }
    }

    /// Retry after `delay`.
    pub fn retry_after(delay: Duration, error: impl fmt::Display) -> Self {
        Outcome::Retry {
            after: Some(delay),
            error: error.to_string(),
        }
    }

    /// Dead-letter now.
    pub fn fatal(error: impl fmt::Display) -> Self {
        Outcome::Fatal {
            error: error.to_string(),
        }
    }
}

/// One message handed to a handler.
#[derive(Debug)]
pub struct Delivery<M> {
    /// The decoded, validated message.
    pub message: M,
    /// Its envelope; the payload is `null` here since `message` holds it.
    pub envelope: Envelope,
    /// The partition it came from.
    pub partition: Option<String>,
}

impl<M> Delivery<M> {
    /// The trace context of this handling: a child of the span that
    /// published the message (or a new trace when it carried none).
    pub fn trace(&self) -> TraceContext {
        let parent = self
            .envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        // Derive the handling span deterministically from the message, so
        // `trace()`, `follow_up()` and the handler's tracing span agree.
        let mut seed = self.envelope.id.clone().into_bytes();
        seed.extend_from_slice(&self.envelope.attempt.to_le_bytes());
        let span_id = partition::fnv1a(&seed).max(1);
        match parent {
            Some(parent) => TraceContext {
                trace_id: parent.trace_id,
                span_id,
            },
            None => TraceContext {
                trace_id: u128::from(span_id) << 64 | u128::from(span_id),
                span_id,
            },
        }
    }

    /// Options for publishing what this message causes: the same
    /// correlation id, and the trace continued from this handling.
    pub fn follow_up(&self) -> PublishOptions {
        PublishOptions {
            correlation_id: Some(
                self.envelope
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| self.envelope.id.clone()),
            ),
            traceparent: Some(self.trace().traceparent()),
            ..PublishOptions::default()
        }
    }

    /// The `courier.handle` span the handler runs in: a child of the span
    /// that published the message.
    fn span(&self, spec: &ChannelSpec) -> tracing::Span {
        let parent = self
            .envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        let span = tracing::info_span!(
            "courier.handle",
            channel = %spec.qualified_name(),
            message_id = %self.envelope.id,
            correlation_id = self.envelope.correlation_id.as_deref().unwrap_or(""),
            attempt = self.envelope.attempt,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        if span.is_disabled() {
            // Nobody listens: skip computing what would be recorded.
            return span;
        }
        let traced = crate::telemetry::handle(&span, parent);
        let trace = traced.unwrap_or_else(|| self.trace());
        span.record("trace_id", trace.trace_hex());
        span.record("span_id", trace.span_hex());
        if let Some(parent) = parent {
            span.record("parent_span_id", parent.span_hex());
        }
        span
    }

    /// The idempotency key: make effects outside courier idempotent on it.
    pub fn key(&self) -> &str {
        &self.envelope.key
    }

    /// The message id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.envelope.attempt
    }
}

/// How a consumer runs; `Default` suits most.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Handlers in flight at once.
    pub concurrency: usize,
    /// Most entries read per `XREADGROUP`.
    pub batch: usize,
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

/// Counters of one consumer, readable while it runs.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    delivered: AtomicU64,
    done: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    duplicates: AtomicU64,
    expired: AtomicU64,
    stale: AtomicU64,
    claimed: AtomicU64,
    lost_by_trim: AtomicU64,
    reaped: AtomicU64,
    sla_breaches: AtomicU64,
    held_back: AtomicU64,
}

/// A snapshot of [`ConsumerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    /// Entries received, first deliveries and reclaims.
    pub delivered: u64,
    /// Handled and acknowledged.
    pub done: u64,
    /// Scheduled for another attempt.
    pub retried: u64,
    /// Dead-lettered, for any reason.
    pub dead: u64,
    /// Skipped because their idempotency key was already done.
    pub duplicates: u64,
    /// Dead-lettered because they expired.
    pub expired: u64,
    /// Settlements refused because another consumer had taken the message.
    pub stale: u64,
    /// Reclaimed after the visibility timeout.
    pub claimed: u64,
    /// Pending entries found trimmed away before they were handled.
    pub lost_by_trim: u64,
    /// Messages returned to the queue from consumers presumed dead (list
    /// and priority channels).
    pub reaped: u64,
    /// Priority messages found waiting past their SLA deadline.
    pub sla_breaches: u64,
    /// Messages put back without using an attempt because the dependency's
    /// breaker was open.
    pub held_back: u64,
}

impl ConsumerStats {
    /// The counters now.
    pub fn snapshot(&self) -> ConsumerReport {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ConsumerReport {
            delivered: get(&self.delivered),
            done: get(&self.done),
            retried: get(&self.retried),
            dead: get(&self.dead),
            duplicates: get(&self.duplicates),
            expired: get(&self.expired),
            stale: get(&self.stale),
            claimed: get(&self.claimed),
            lost_by_trim: get(&self.lost_by_trim),
            reaped: get(&self.reaped),
            sla_breaches: get(&self.sla_breaches),
            held_back: get(&self.held_back),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Consumes the versions `M` reads from one channel, as a member of a
/// consumer group.
pub struct Consumer<M: Readable> {
    client: Client,
    spec: &'static ChannelSpec,
    group: String,
    name: String,
    options: ConsumerOptions,
    stats: Arc<ConsumerStats>,
    _message: PhantomData<fn() -> M>,
}

impl<M: Readable> fmt::Debug for Consumer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("channel", &self.spec.qualified_name())
            .field("group", &self.group)
            .field("versions", &M::VERSIONS)
            .finish()
    }
}

impl<M: Readable> Consumer<M> {
    /// A consumer of `spec`'s channel in consumer group `group`.
    pub fn new(client: &Client, spec: &'static ChannelSpec, group: &str) -> Self {
        debug_assert_eq!(M::SCHEMA, spec.schema, "consumer type and channel disagree");
        Self {
            client: client.clone(),
            spec,
            group: group.to_string(),
            name: format!("{}-{}", client.name(), &envelope::new_id()[..8]),
            options: ConsumerOptions::default(),
            stats: Arc::default(),
            _message: PhantomData,
        }
    }

    /// Sets the options.
    pub fn with_options(mut self, options: ConsumerOptions) -> Self {
        self.options = options;
        self
    }

    /// The channel's contract.
    pub fn spec(&self) -> &'static ChannelSpec {
        self.spec
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This consumer's name in the group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Live counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// The dependency: the options', else the channel contract's.
    fn dependency(&self) -> Option<Dependency> {
        self.options.dependency.clone().or_else(|| {
            self.spec.dependency.map(|d| Dependency {
                name: d.name.to_string(),
                breaker: BreakerConfig {
                    failure_threshold: d.failure_threshold,
                    window: d.window,
                    cool_down: d.cool_down,
                    ..BreakerConfig::default()
                },
            })
        })
    }

    /// The rate limit: the options', else the channel contract's.
    fn rate(&self) -> Option<Rate> {
        self.options.rate_limit.clone().or_else(|| {
            self.spec.rate_limit.map(|r| Rate {
                name: r.name.map_or_else(
                    || format!("channel.{}", self.spec.qualified_name()),
                    str::to_string,
                ),
                per_second: r.per_second,
                burst: r.burst,
            })
        })
    }

    /// Moves this consumer group's position in a stream channel to `at`
    /// (creating the group there if new): messages published since then
    /// are delivered again, except those this group already handled (their
    /// idempotency keys are done). A new subscriber of a durable broadcast
    /// uses it to start from a point in time.
    pub async fn replay_from(&self, at: chrono::DateTime<Utc>) -> Result<(), Error> {
        if self.spec.transport != Transport::Stream {
            return Err(Error::NotSupported {
                channel: self.spec.qualified_name(),
                operation: "replay from a point in time (it needs a stream channel)",
            });
        }
        let position = format!("{}-0", at.timestamp_millis().max(0));
        for partition in partition::all(self.spec) {
            let stream = self.client.keys(self.spec, partition.as_deref()).stream();
            let created: Result<(), Error> = self
                .client
                .query(
                    redis::cmd("XGROUP")
                        .arg("CREATE")
                        .arg(&stream)
                        .arg(&self.group)
                        .arg(&position)
                        .arg("MKSTREAM"),
                )
                .await;
            match created {
                Err(Error::Redis(e)) if e.code() == Some("BUSYGROUP") => {
                    let _: () = self
                        .client
                        .query(
                            redis::cmd("XGROUP")
                                .arg("SETID")
                                .arg(&stream)
                                .arg(&self.group)
                                .arg(&position),
                        )
                        .await?;
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Runs `handler` on every message until Ctrl-C.
    pub async fn run<F, Fut>(&self, handler: F) -> Result<ConsumerReport, Error>
    where
        F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        let signal = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        let report = self.run_until(handler, shutdown).await;
        signal.abort();
        report
    }

    /// Runs `handler` on every message until `shutdown` is cancelled, then
    /// stops reading, waits up to the grace period for handlers in flight,
    /// and leaves anything unfinished pending for other consumers.
    pub async fn run_until<F, Fut>(
        &self,
        handler: F,
        shutdown: CancellationToken,
    ) -> Result<ConsumerReport, Error>
    where
        F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let partitions: Vec<ChannelKeys> = partition::all(self.spec)
            .into_iter()
            .filter(|p| match (&self.options.partitions, p) {
                (Some(wanted), Some(p)) => wanted.contains(p),
                _ => true,
            })
            .map(|p| self.client.keys(self.spec, p.as_deref()))
            .collect();
        let settler = {
            let (client, transport) = (self.client.clone(), self.spec.transport);
            let (group, name) = (self.group.clone(), self.name.clone());
            Batcher::new(BATCH_LIMIT, move |batch| {
                settle_batch(
                    client.clone(),
                    transport,
                    group.clone(),
                    name.clone(),
                    batch,
                )
            })
        };
        let checker = {
            let client = self.client.clone();
            Batcher::new(BATCH_LIMIT, move |done| check_batch(client.clone(), done))
        };
        let ctx = Arc::new(Ctx {
            holding: std::sync::Mutex::default(),
            settler,
            checker,
            client: self.client.clone(),
            spec: self.spec,
            group: self.group.clone(),
            name: self.name.clone(),
            options: self.options.clone(),
            stats: self.stats.clone(),
            handler,
            semaphore: Arc::new(Semaphore::new(self.options.concurrency.max(1))),
            settling: Arc::new(Semaphore::new(4 * self.options.concurrency.max(1))),
            tracker: TaskTracker::new(),
            shutdown: shutdown.clone(),
            hard_stop: CancellationToken::new(),
            pause_switch: Breaker::channel(&self.client, self.spec, BreakerConfig::default())?,
            dependency: match self.dependency() {
                Some(dependency) => Some(Breaker::new(
                    &self.client,
                    &dependency.name,
                    dependency.breaker,
                )?),
                None => None,
            },
            rate: match self.rate() {
                Some(rate) => Some(RateLimit::new(
                    &self.client,
                    &rate.name,
                    rate.per_second,
                    rate.burst,
                )?),
                None => None,
            },
            gate_closed: AtomicBool::new(false),
            ordered: self
                .options
                .ordered
                .unwrap_or(self.spec.partitions.is_some()),
            _message: PhantomData,
        });
        ctx.refresh_gate().await;
        for keys in &partitions {
            ctx.join(keys).await?;
        }
        let mut readers = tokio::task::JoinSet::new();
        if self.spec.partitions.is_some() && self.options.partitions.is_none() {
            // Partitions are shared out among the group's live members.
            readers.spawn(ctx.clone().coordinate(partitions.clone()));
        } else {
            for keys in partitions.iter().cloned() {
                readers.spawn(ctx.clone().read_loop(keys, shutdown.clone()));
            }
        }
        readers.spawn(ctx.clone().maintain(partitions));
        while readers.join_next().await.is_some() {}

        ctx.tracker.close();
        if tokio::time::timeout(ctx.options.grace, ctx.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                channel = %self.spec.qualified_name(),
                "grace period over; unfinished messages stay pending for other consumers"
            );
            ctx.hard_stop.cancel();
            ctx.tracker.wait().await;
        }
        Ok(self.stats.snapshot())
    }
}

/// Everything the consumer's tasks share.
struct Ctx<M, F> {
    client: Client,
    spec: &'static ChannelSpec,
    group: String,
    name: String,
    options: ConsumerOptions,
    stats: Arc<ConsumerStats>,
    handler: F,
    /// One permit per handler in flight.
    semaphore: Arc<Semaphore>,
    /// One permit per handled message still being settled: a handler's
    /// permit is freed once its handler returned, so the next message
    /// starts while this one settles, up to this many settling.
    settling: Arc<Semaphore>,
    /// The handler tasks, to wait for them at shutdown.
    tracker: TaskTracker,
    /// Stops reading.
    shutdown: CancellationToken,
    /// Abandons handlers still running after the grace period.
    hard_stop: CancellationToken,
    /// The channel's manual pause, a breaker only tools open.
    pause_switch: Breaker,
    /// The handler's dependency breaker, if any.
    dependency: Option<Breaker>,
    /// The shared rate handlers start at, if limited.
    rate: Option<RateLimit>,
    /// Whether messages of a partition are handled one at a time, in order.
    ordered: bool,
    /// Whether the pause or the dependency's breaker stops taking work;
    /// refreshed by the maintenance loop, so every worker stops within one
    /// refresh.
    gate_closed: AtomicBool,
    /// What this consumer's handlers hold right now (stream entry ids,
    /// held elements), so that recovery takes back only the rest.
    holding: std::sync::Mutex<HashSet<String>>,
    /// Settlements of handlers in flight, sent together.
    settler: Batcher<Settlement, String>,
    /// Done-mark checks of handlers in flight, sent together.
    checker: Batcher<String, bool>,
    _message: PhantomData<fn() -> M>,
}

/// The done marks of a read batch, checked in one round trip while the
/// batch's handlers start: each entry's index into the shared answer.
type DoneHints = futures_util::future::Shared<DoneCheck>;

/// The round trip behind [`DoneHints`]: per entry, its key and whether it
/// is done (`None`: no hint).
type DoneCheck =
    std::pin::Pin<Box<dyn std::future::Future<Output = Arc<Vec<Option<(String, bool)>>>> + Send>>;

/// A message just taken from its queue, before its handler runs.
struct Taken {
    /// How it is held.
    handle: Handle,
    /// The envelope text, as stored.
    raw: Option<String>,
    /// Its attempts so far.
    history: Vec<Attempt>,
    /// Its delivery count.
    deliveries: usize,
    /// Its read batch's done check.
    done_hint: Option<(DoneHints, usize)>,
}

/// One message's settlement, for the settle batcher.
struct Settlement {
    /// The channel partition's keys.
    keys: ChannelKeys,
    /// Which delivery, fenced as its transport requires.
    handle: Handle,
    /// The delivery count the stream fence expects.
    deliveries: usize,
    /// The done key of its idempotency key.
    done: String,
    /// The action and its four arguments.
    action: [String; 5],
}

/// Most settlements or done checks sent in one batch.
const BATCH_LIMIT: usize = 128;

/// Sends settlements in one pipeline: one script call per partition and
/// transport fence, each settling all of its messages.
async fn settle_batch(
    client: Client,
    transport: Transport,
    group: String,
    name: String,
    batch: Vec<Settlement>,
) -> Result<Vec<String>, Error> {
    // Group by partition, keeping each message's place in the batch.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, settlement) in batch.iter().enumerate() {
        let partition = settlement.keys.partition();
        match groups
            .iter_mut()
            .find(|g| batch[g[0]].keys.partition() == partition)
        {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut pipe = redis::pipe();
    for g in &groups {
        let keys = &batch[g[0]].keys;
        let (delayed, dlq) = (keys.delayed(), keys.dlq());
        let fenced = match transport {
            Transport::Stream => keys.stream(),
            _ => keys.processing(&name),
        };
        let mut script_keys = vec![fenced.as_str(), delayed.as_str(), dlq.as_str()];
        script_keys.extend(g.iter().map(|&i| batch[i].done.as_str()));
        let mut cmd = match transport {
            Transport::Stream => {
                let mut cmd = scripts::evalsha(&SETTLE, &script_keys);
                cmd.arg(&group).arg(&name);
                cmd
            }
            _ => scripts::evalsha(&SETTLE_HELD, &script_keys),
        };
        for &i in g {
            let settlement = &batch[i];
            match &settlement.handle {
                Handle::Stream { id } => cmd.arg(id).arg(settlement.deliveries),
                Handle::Listed { element } => cmd.arg(element),
            };
            cmd.arg(&settlement.action[..]);
        }
        pipe.add_command(cmd);
    }
    let replies: Vec<Vec<String>> = client.pipeline(&pipe).await?;
    let mut statuses = vec![String::new(); batch.len()];
    for (g, reply) in groups.iter().zip(replies) {
        if reply.len() != g.len() {
            return Err(Error::UnexpectedReply {
                script: "settle",
                reply: format!("{reply:?}"),
            });
        }
        for (&i, status) in g.iter().zip(reply) {
            statuses[i] = status;
        }
    }
    Ok(statuses)
}

/// Checks done marks in one pipeline.
async fn check_batch(client: Client, done: Vec<String>) -> Result<Vec<bool>, Error> {
    let mut pipe = redis::pipe();
    for key in &done {
        pipe.cmd("EXISTS").arg(key);
    }
    client.pipeline(&pipe).await
}

/// What a settle script is asked to do.
enum Action {
    Done {
        ttl: Duration,
    },
    Skip,
    Retry {
        delay: Duration,
        delayed: String,
    },
    /// A retry that uses no attempt: the dependency's breaker opened.
    HoldBack {
        delay: Duration,
        delayed: String,
    },
    Dead {
        letter: String,
        reason: DeadReason,
    },
}

impl<M, F, Fut> Ctx<M, F>
where
    M: Readable,
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    /// Joins a partition: on streams, creates the consumer group; on list
    /// and priority channels, registers this consumer and its heartbeat.
    async fn join(&self, keys: &ChannelKeys) -> Result<(), Error> {
        match self.spec.transport {
            Transport::Stream => self.ensure_group(keys).await,
            Transport::List | Transport::Priority => self.heartbeat(keys).await,
            Transport::Pubsub => Ok(()),
        }
    }

    /// Proves this consumer alive for one visibility timeout, and keeps the
    /// keys it holds work in from expiring.
    async fn heartbeat(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let retention = millis(self.spec.retention.max_age);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(keys.alive(&self.name))
            .arg(1)
            .arg("PX")
            .arg(millis(self.spec.visibility_timeout))
            .ignore()
            .cmd("SADD")
            .arg(keys.consumers())
            .arg(&self.name)
            .ignore()
            .cmd("PEXPIRE")
            .arg(keys.consumers())
            .arg(retention)
            .ignore()
            .cmd("PEXPIRE")
            .arg(keys.processing(&self.name))
            .arg(retention)
            .ignore();
        self.client.pipeline::<()>(&pipe).await
    }

    /// Creates the group (reading from the stream's start, so messages
    /// published before the first consumer are not missed) and gives a new
    /// stream its TTL.
    async fn ensure_group(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let created: Result<(), Error> = self
            .client
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(keys.stream())
                    .arg(&self.group)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Err(Error::Redis(e)) if e.code() == Some("BUSYGROUP") => {}
            other => other?,
        }
        let _: i64 = self
            .client
            .query(
                redis::cmd("PEXPIRE")
                    .arg(keys.stream())
                    .arg(millis(self.spec.retention.max_age))
                    .arg("NX"),
            )
            .await?;
        Ok(())
    }

    /// Reads one partition until `stop` (shutdown, or the partition was
    /// assigned to another consumer).
    async fn read_loop(self: Arc<Self>, keys: ChannelKeys, stop: CancellationToken) {
        match self.spec.transport {
            Transport::Stream => self.read_stream(keys, stop).await,
            Transport::List | Transport::Priority => self.read_held(keys, stop).await,
            // Broadcasts are read by a `Subscriber`, not a consumer group.
            Transport::Pubsub => {}
        }
    }

    /// Waits for a free handler slot, then takes as many more as are free,
    /// up to a batch; `None` at shutdown.
    async fn permits(&self, stop: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
        // Paused or the dependency's breaker open: take nothing, so every
        // message stays queued until it closes.
        while self.gate_closed.load(Ordering::Relaxed) {
            tokio::select! {
                () = tokio::time::sleep(GATE_REFRESH / 2) => {}
                () = stop.cancelled() => return None,
            }
        }
        let first = tokio::select! {
            permit = self.semaphore.clone().acquire_owned() => permit.ok()?,
            () = stop.cancelled() => return None,
        };
        let mut permits = vec![first];
        while permits.len() < self.options.batch.max(1) {
            match self.semaphore.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        Some(permits)
    }

    /// Reads a list or priority channel: takes waiting messages into this
    /// consumer's processing list (atomically), waiting with a blocking
    /// `BLMOVE` on lists and short polls on priority queues.
    async fn read_held(self: Arc<Self>, keys: ChannelKeys, stop: CancellationToken) {
        let transport = self.spec.transport;
        let (queue, processing, sla) = (keys.queue(), keys.processing(&self.name), keys.sla());
        let mut conn = None;
        let mut pause = Duration::from_millis(50);
        let mut idle = Duration::from_millis(5);
        // At start, and after a read whose reply may have been lost, take
        // back what this consumer holds but no handler works on.
        let mut recover = true;
        while let Some(mut permits) = self.permits(&stop).await {
            if recover {
                recover = self.recover_held(&keys, &mut permits).await;
                if permits.is_empty() {
                    continue;
                }
            }
            let taken: Result<Vec<Vec<u8>>, Error> = self
                .client
                .query(
                    scripts::evalsha(&TAKE, &[&queue, &processing, &sla])
                        .arg(permits.len())
                        .arg(transport.as_str())
                        .arg(millis(self.spec.retention.max_age)),
                )
                .await;
            let mut taken = match taken {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "taking messages failed; retrying");
                    recover = true;
                    drop(permits);
                    self.pause(&stop, &mut pause).await;
                    continue;
                }
            };
            pause = Duration::from_millis(50);
            if taken.is_empty() {
                if transport == Transport::Priority {
                    // A sorted set has no atomic blocking move; poll, from
                    // a few ms up to the blocking read's time while
                    // nothing arrives.
                    drop(permits);
                    tokio::select! {
                        () = tokio::time::sleep(idle) => {}
                        () = stop.cancelled() => return,
                    }
                    idle = (idle * 2).min(self.options.block);
                    continue;
                }
                if conn.is_none() {
                    conn = self.client.dedicated(self.options.block).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    drop(permits);
                    self.pause(&stop, &mut pause).await;
                    continue;
                };
                let moved: Result<Option<Vec<u8>>, redis::RedisError> = redis::cmd("BLMOVE")
                    .arg(&queue)
                    .arg(&processing)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .arg(self.options.block.as_secs_f64())
                    .query_async(c)
                    .await;
                match moved {
                    Ok(Some(element)) => taken.push(element),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "reading failed");
                        conn = None;
                        recover = true;
                        drop(permits);
                        self.pause(&stop, &mut pause).await;
                        continue;
                    }
                }
            }
            idle = Duration::from_millis(5);
            for element in taken {
                let Some(permit) = permits.pop() else { break };
                let (raw, history, reaped) = held_record(transport, &element);
                let handle = Handle::Listed { element };
                let taken = Taken {
                    handle,
                    raw,
                    history,
                    deliveries: 1 + reaped,
                    done_hint: None,
                };
                self.dispatch(&keys, taken, permit).await;
            }
        }
    }

    async fn read_stream(self: Arc<Self>, keys: ChannelKeys, stop: CancellationToken) {
        let claim_every = self.options.claim_interval.unwrap_or_else(|| {
            (self.spec.visibility_timeout / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(5))
        });
        let mut last_claim: Option<Instant> = None;
        let mut claim_cursor = "-".to_string();
        let mut conn = None;
        let mut pause = Duration::from_millis(50);
        // At start, and after a read whose reply may have been lost, take
        // back what this consumer holds but no handler works on.
        let mut recover = true;
        while let Some(mut permits) = self.permits(&stop).await {
            if recover {
                recover = self.recover_held(&keys, &mut permits).await;
                if permits.is_empty() {
                    continue;
                }
            }
            if last_claim.is_none_or(|at| at.elapsed() >= claim_every) {
                last_claim = Some(Instant::now());
                match self.claim(&keys, &mut claim_cursor, &mut permits).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "reclaiming idle messages failed")
                    }
                }
                if permits.is_empty() {
                    continue;
                }
            }

            if conn.is_none() {
                match self.client.dedicated(self.options.block).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot connect for reading; retrying");
                        drop(permits);
                        self.pause(&stop, &mut pause).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let read: Result<Option<StreamReadReply>, redis::RedisError> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg(&self.name)
                .arg("COUNT")
                .arg(permits.len())
                .arg("BLOCK")
                .arg(millis(self.options.block))
                .arg("STREAMS")
                .arg(keys.stream())
                .arg(">")
                .query_async(c)
                .await;
            match read {
                Ok(reply) => {
                    pause = Duration::from_millis(50);
                    let entries: Vec<_> = reply
                        .into_iter()
                        .flat_map(|r| r.keys)
                        .flat_map(|k| k.ids)
                        .map(|entry| {
                            let (raw, history) = stream_fields(&entry.map);
                            (entry.id, raw, history)
                        })
                        .collect();
                    let hints = self.done_hints(&keys, &entries);
                    for (i, (id, raw, history)) in entries.into_iter().enumerate() {
                        let Some(permit) = permits.pop() else { break };
                        let hint = Some((hints.clone(), i));
                        let taken = Taken {
                            handle: Handle::Stream { id },
                            raw,
                            history,
                            deliveries: 1,
                            done_hint: hint,
                        };
                        self.dispatch(&keys, taken, permit).await;
                    }
                }
                Err(e) if e.code() == Some("NOGROUP") => {
                    // The stream expired or was deleted; start it again.
                    drop(permits);
                    if let Err(e) = self.ensure_group(&keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot recreate the consumer group");
                        self.pause(&stop, &mut pause).await;
                    }
                }
                Err(e) => {
                    if !error::is_transient(&e) {
                        tracing::error!(channel = %self.spec.qualified_name(), error = %e, "reading failed");
                    }
                    recover = true;
                    conn = None;
                    drop(permits);
                    self.pause(&stop, &mut pause).await;
                }
            }
        }
    }

    /// [`recover`](Self::recover), logging a failure; returns whether
    /// recovery must run again.
    async fn recover_held(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> bool {
        match self.recover(keys, permits).await {
            Ok(all) => !all,
            Err(e) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot look for held messages; retrying");
                true
            }
        }
    }

    /// Takes back messages this consumer holds that no handler of it works
    /// on: a read whose reply was lost (Redis moved the messages to this
    /// consumer, the reply never came) leaves them so, and neither the
    /// reaper (this consumer is alive) nor reclaiming (which skips a
    /// consumer's own entries) would. Uses up to `permits`; returns whether
    /// it found nothing more than they could take.
    async fn recover(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> Result<bool, Error> {
        // What handlers hold now, taken before looking at Redis: a message
        // settled in between is gone from Redis by then, and only this
        // reader starts new handlers on this partition.
        let Ok(held_now) = self.holding.lock().map(|h| h.clone()) else {
            return Ok(true);
        };
        let holding = |identity: &str| held_now.contains(&held_key(keys, identity));
        if self.spec.transport == Transport::Stream {
            let pending: StreamPendingCountReply = self
                .client
                .query(
                    redis::cmd("XPENDING")
                        .arg(keys.stream())
                        .arg(&self.group)
                        .arg("-")
                        .arg("+")
                        .arg(permits.len() * 4 + 16)
                        .arg(&self.name),
                )
                .await?;
            let orphans: HashMap<String, usize> = pending
                .ids
                .into_iter()
                .filter(|p| !holding(&p.id))
                .map(|p| (p.id, p.times_delivered))
                .collect();
            if orphans.is_empty() {
                return Ok(true);
            }
            let all = orphans.len() <= permits.len();
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(keys.stream())
                .arg(&self.group)
                .arg(&self.name)
                .arg(0);
            for id in orphans.keys().take(permits.len()) {
                cmd.arg(id);
            }
            let claimed: StreamClaimReply = self.client.query(&cmd).await?;
            self.dispatch_claimed(keys, claimed, &orphans, permits)
                .await;
            return Ok(all);
        }
        let held: Vec<Vec<u8>> = self
            .client
            .query(
                redis::cmd("LRANGE")
                    .arg(keys.processing(&self.name))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let orphans: Vec<Vec<u8>> = held
            .into_iter()
            .filter(|e| !holding(&String::from_utf8_lossy(e)))
            .collect();
        let all = orphans.len() <= permits.len();
        for element in orphans {
            let Some(permit) = permits.pop() else { break };
            let (raw, history, reaped) = held_record(self.spec.transport, &element);
            let taken = Taken {
                handle: Handle::Listed { element },
                raw,
                history,
                deliveries: 1 + reaped,
                done_hint: None,
            };
            self.dispatch(keys, taken, permit).await;
        }
        Ok(all)
    }

    /// Sleeps with exponential backoff, waking early on shutdown.
    async fn pause(&self, stop: &CancellationToken, pause: &mut Duration) {
        tokio::select! {
            () = tokio::time::sleep(*pause) => {}
            () = stop.cancelled() => {}
        }
        *pause = (*pause * 2).min(Duration::from_secs(2));
    }

    /// Reclaims entries other consumers have held past the visibility
    /// timeout, one per permit.
    ///
    /// `XAUTOCLAIM` would also take back this consumer's own entries whose
    /// handler is merely slow, and run them twice here; so candidates come
    /// from `XPENDING ... IDLE`, this consumer's own are skipped, and
    /// `XCLAIM` takes each only if it is still idle (another consumer may
    /// have been faster). A candidate that `XCLAIM` drops and that left the
    /// pending list was trimmed away before anyone handled it: counted as
    /// lost, never ignored.
    async fn claim(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        cursor: &mut String,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> Result<(), Error> {
        let idle = millis(self.spec.visibility_timeout);
        let scan = permits.len() * 4 + 16;
        let pending: StreamPendingCountReply = self
            .client
            .query(
                redis::cmd("XPENDING")
                    .arg(keys.stream())
                    .arg(&self.group)
                    .arg("IDLE")
                    .arg(idle)
                    .arg(&*cursor)
                    .arg("+")
                    .arg(scan),
            )
            .await?;
        *cursor = match pending.ids.last() {
            Some(last) if pending.ids.len() == scan => format!("({}", last.id),
            _ => "-".to_string(),
        };
        let candidates: HashMap<String, usize> = pending
            .ids
            .into_iter()
            .filter(|p| p.consumer != self.name)
            .take(permits.len())
            .map(|p| (p.id, p.times_delivered))
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(keys.stream())
            .arg(&self.group)
            .arg(&self.name)
            .arg(idle);
        for id in candidates.keys() {
            cmd.arg(id);
        }
        let claimed: StreamClaimReply = self.client.query(&cmd).await?;
        let taken: HashSet<&str> = claimed.ids.iter().map(|e| e.id.as_str()).collect();
        let dropped: Vec<&String> = candidates
            .keys()
            .filter(|id| !taken.contains(id.as_str()))
            .collect();
        if !dropped.is_empty() {
            self.count_trimmed(keys, &dropped).await?;
        }
        bump(&self.stats.claimed, claimed.ids.len() as u64);
        self.dispatch_claimed(keys, claimed, &candidates, permits)
            .await;
        Ok(())
    }

    /// Hands entries `XCLAIM` returned to handlers, one per permit;
    /// `delivered` holds each entry's delivery count before the claim.
    async fn dispatch_claimed(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        claimed: StreamClaimReply,
        delivered: &HashMap<String, usize>,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) {
        for entry in claimed.ids {
            let Some(permit) = permits.pop() else { break };
            // XCLAIM counted this delivery.
            let deliveries = delivered.get(&entry.id).map_or(2, |count| count + 1);
            let (raw, history) = stream_fields(&entry.map);
            let taken = Taken {
                handle: Handle::Stream { id: entry.id },
                raw,
                history,
                deliveries,
                done_hint: None,
            };
            self.dispatch(keys, taken, permit).await;
        }
    }

    /// Of candidates `XCLAIM` did not return, those no longer pending were
    /// trimmed from the stream while pending (Redis 7 drops them from the
    /// pending list then); the others went to a faster consumer.
    async fn count_trimmed(&self, keys: &ChannelKeys, dropped: &[&String]) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        for id in dropped {
            pipe.cmd("XPENDING")
                .arg(keys.stream())
                .arg(&self.group)
                .arg(*id)
                .arg(*id)
                .arg(1);
        }
        let replies: Vec<StreamPendingCountReply> = self.client.pipeline(&pipe).await?;
        let lost = replies.iter().filter(|r| r.ids.is_empty()).count();
        if lost > 0 {
            bump(&self.stats.lost_by_trim, lost as u64);
            metrics::lost_by_trim(self.spec, lost as u64);
            // Kept in Redis too, for `courier status` and other workers.
            let mut record = redis::pipe();
            record
                .cmd("INCRBY")
                .arg(keys.lost_by_trim())
                .arg(lost)
                .ignore()
                .cmd("PEXPIRE")
                .arg(keys.lost_by_trim())
                .arg(millis(self.spec.retention.max_age))
                .ignore();
            if let Err(e) = self.client.pipeline::<()>(&record).await {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot record messages lost by trim");
            }
            tracing::error!(
                channel = %self.spec.qualified_name(),
                lost,
                "pending messages were trimmed away before they were handled; raise the channel's retention"
            );
        }
        Ok(())
    }

    /// Checks the done marks of a read batch in one round trip, so that
    /// each handler need not. A key seen twice in the batch gets no hint
    /// (its second message must see the first one's mark), nor does an
    /// entry whose key cannot be read; those are checked when handled.
    fn done_hints(
        &self,
        keys: &ChannelKeys,
        entries: &[(String, Option<String>, Vec<Attempt>)],
    ) -> DoneHints {
        #[derive(serde::Deserialize)]
        struct KeyOnly {
            key: String,
        }
        let mut seen = HashSet::new();
        let wanted: Vec<Option<String>> = entries
            .iter()
            .map(|(_, raw, _)| {
                let key = serde_json::from_str::<KeyOnly>(raw.as_deref()?).ok()?.key;
                seen.insert(key.clone()).then_some(key)
            })
            .collect();
        let mut pipe = redis::pipe();
        for key in wanted.iter().flatten() {
            pipe.cmd("EXISTS").arg(keys.done(&self.group, key));
        }
        let client = self.client.clone();
        let checked = async move {
            let done: Vec<bool> = if pipe.is_empty() {
                Vec::new()
            } else {
                client.pipeline(&pipe).await.unwrap_or_default()
            };
            // A failed check gives no hints: each handler checks its own.
            let mut done = done.into_iter();
            let hints: Vec<Option<(String, bool)>> = wanted
                .into_iter()
                .map(|key| {
                    let key = key?;
                    Some((key, done.next()?))
                })
                .collect();
            Arc::new(hints)
        };
        let boxed: DoneCheck = Box::pin(checked);
        futures_util::FutureExt::shared(boxed)
    }

    /// Hands a taken message to the handler: inline, one at a time, when
    /// the channel keeps order (partitions); on a task of its own otherwise.
    async fn dispatch(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        taken: Taken,
        permit: OwnedSemaphorePermit,
    ) {
        let Taken {
            handle,
            raw,
            history,
            deliveries,
            done_hint,
        } = taken;
        bump(&self.stats.delivered, 1);
        metrics::consumed(self.spec);
        metrics::in_flight(self.spec, 1.0);
        let ctx = self.clone();
        let keys = keys.clone();
        let held = held_key(&keys, &handle.identity());
        if let Ok(mut holding) = self.holding.lock() {
            holding.insert(held.clone());
        }
        let work = async move {
            let entry = Entry {
                permit: std::sync::Mutex::new(Some(permit)),
                keys: &keys,
                handle: &handle,
                deliveries,
                raw: raw.as_deref(),
                history,
                done_hint,
            };
            tokio::select! {
                () = ctx.hard_stop.cancelled() => {}
                () = ctx.process(&entry) => {}
            }
            if let Ok(mut holding) = ctx.holding.lock() {
                holding.remove(&held);
            }
            metrics::in_flight(ctx.spec, -1.0);
        };
        if self.ordered {
            work.await;
        } else {
            self.tracker.spawn(work);
        }
    }

    /// One message, from the checks to its settlement.
    async fn process(&self, entry: &Entry<'_>) {
        let (keys, deliveries) = (entry.keys, entry.deliveries);

        if deliveries > self.spec.max_attempts as usize {
            let error = format!(
                "delivered {deliveries} times without being settled (max attempts {})",
                self.spec.max_attempts
            );
            return self.dead(entry, "-", DeadReason::Poison, error, None).await;
        }
        let Some(raw) = entry.raw else {
            let error = "the message has no envelope (none, or not UTF-8 text)".to_string();
            return self
                .dead(entry, "-", DeadReason::InvalidPayload, error, None)
                .await;
        };
        let (message, envelope) = match admit::<M>(self.spec, raw) {
            Ok(admitted) => admitted,
            Err(rejected) => {
                if rejected.reason == DeadReason::Expired {
                    bump(&self.stats.expired, 1);
                    metrics::expired(self.spec);
                }
                return self
                    .dead(entry, &rejected.key, rejected.reason, rejected.error, None)
                    .await;
            }
        };
        let key = envelope.key.clone();

        let hinted = match &entry.done_hint {
            Some((hints, i)) => match hints.clone().await.get(*i) {
                Some(Some((hinted, done))) if *hinted == key => Some(*done),
                _ => None,
            },
            None => None,
        };
        let done = match hinted {
            Some(done) => Ok(done),
            None => {
                self.persist(|| self.checker.call(keys.done(&self.group, &key)))
                    .await
            }
        };
        match done {
            Ok(true) => {
                bump(&self.stats.duplicates, 1);
                return self.settle(entry, &key, Action::Skip).await;
            }
            Ok(false) => {}
            // Unsure whether it was handled, for longer than the visibility
            // timeout: leave it held, for another consumer to reclaim.
            Err(e) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot check the idempotency key; leaving the message pending");
                return;
            }
        }

        // A half-open breaker admits a few probes; the others wait on the
        // delayed set without using an attempt.
        if let Some(breaker) = &self.dependency {
            if !breaker.allow().await.unwrap_or(false) {
                return self.hold_back(entry, &key, raw, breaker).await;
            }
        }
        if let Some(rate) = &self.rate {
            // Waiting is the point; a Redis fault here must not stop work.
            if let Err(e) = rate.acquire().await {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "rate limit unavailable; not waiting");
            }
        }
        let attempt = envelope.attempt;
        let expires_at = envelope.expires_at.clone();
        let delivery = Delivery {
            message,
            envelope,
            partition: keys.partition().map(str::to_string),
        };
        let created_at = delivery.envelope.created_at.clone();
        let span = delivery.span(self.spec);
        let started = Instant::now();
        let outcome = match AssertUnwindSafe((self.handler)(delivery).instrument(span))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                Outcome::retry(format!("handler panicked: {text}"))
            }
        };

        metrics::handler_duration(self.spec, started.elapsed().as_secs_f64());
        // The handler returned: the next message may start while this one
        // settles (within the settling bound).
        let _settling = self.settling.clone().acquire_owned().await.ok();
        drop(entry.permit.lock().map(|mut p| p.take()));
        if outcome == Outcome::Done {
            if let Ok(created) = chrono::DateTime::parse_from_rfc3339(&created_at) {
                let waited = Utc::now() - created.with_timezone(&Utc);
                metrics::end_to_end(
                    self.spec,
                    waited.num_microseconds().unwrap_or(0) as f64 / 1e6,
                );
            }
        }
        if let Some(breaker) = &self.dependency {
            let success = !matches!(outcome, Outcome::Retry { .. });
            let state = breaker.record(success).await;
            // A failure that opened (or found open) the breaker is the
            // dependency's fault, not the message's: it waits out the
            // cool-down without using an attempt.
            if !success && matches!(state, Ok(BreakerState::Open { .. } | BreakerState::Paused)) {
                self.gate_closed.store(true, Ordering::Relaxed);
                return self.hold_back(entry, &key, raw, breaker).await;
            }
        }
        match outcome {
            Outcome::Done => {
                // The done mark must outlive every redelivery that could
                // still be handled, i.e. until the message expires.
                let remaining = chrono::DateTime::parse_from_rfc3339(&expires_at)
                    .ok()
                    .and_then(|at| (at.with_timezone(&Utc) - Utc::now()).to_std().ok())
                    .unwrap_or(self.spec.ttl);
                let ttl = remaining + self.spec.visibility_timeout;
                self.settle(entry, &key, Action::Done { ttl }).await;
            }
            Outcome::Fatal { error } => {
                self.dead(entry, &key, DeadReason::Fatal, error, Some(attempt))
                    .await
            }
            Outcome::Retry { error, .. } if attempt >= self.spec.max_attempts => {
                self.dead(entry, &key, DeadReason::MaxAttempts, error, Some(attempt))
                    .await
            }
            Outcome::Retry { after, error } => {
                let delay = after.unwrap_or_else(|| backoff::delay(&self.spec.backoff, attempt));
                let mut history = entry.history.clone();
                history.push(self.attempt_record(attempt, error, Some(delay)));
                match next_attempt(raw, &history, true) {
                    Ok(delayed) => {
                        self.settle(entry, &key, Action::Retry { delay, delayed })
                            .await
                    }
                    Err(e) => {
                        self.dead(entry, &key, DeadReason::InvalidPayload, e.to_string(), None)
                            .await
                    }
                }
            }
        }
    }

    /// Puts a message back on the delayed set for the breaker's cool-down,
    /// keeping its attempt count: the dependency failed, not the message.
    async fn hold_back(&self, entry: &Entry<'_>, key: &str, raw: &str, breaker: &Breaker) {
        bump(&self.stats.held_back, 1);
        let delay = breaker.config().cool_down.min(Duration::from_secs(1));
        match next_attempt(raw, &entry.history, false) {
            Ok(delayed) => {
                self.settle(entry, key, Action::HoldBack { delay, delayed })
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot hold a message back; it stays held and will be reclaimed")
            }
        }
    }

    fn attempt_record(&self, attempt: u32, error: String, delay: Option<Duration>) -> Attempt {
        Attempt {
            attempt,
            at: envelope::timestamp(Utc::now()),
            consumer: self.name.clone(),
            error,
            retry_in_ms: delay.map(millis),
        }
    }

    /// Dead-letters an entry; `attempt` is the failed handler attempt to add
    /// to the history, when a handler ran.
    async fn dead(
        &self,
        entry: &Entry<'_>,
        key: &str,
        reason: DeadReason,
        error: String,
        attempt: Option<u32>,
    ) {
        let mut history = entry.history.clone();
        if let Some(attempt) = attempt {
            history.push(self.attempt_record(attempt, error.clone(), None));
        }
        tracing::warn!(channel = %self.spec.qualified_name(), %reason, %error, "dead-lettering a message");
        let letter = DeadLetter::new(
            self.spec,
            entry.keys.partition(),
            (&self.group, &self.name),
            entry.handle.describe(),
            entry.raw,
            (reason, error),
            history,
        );
        match serde_json::to_string(&letter) {
            Ok(letter) => {
                self.settle(entry, key, Action::Dead { letter, reason })
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a dead letter; leaving the message pending")
            }
        }
    }

    /// Runs the settle script, retrying passing Redis faults for up to the
    /// visibility timeout; after that the message stays pending and is
    /// reclaimed, which is safe.
    async fn settle(&self, entry: &Entry<'_>, key: &str, action: Action) {
        // A hold-back is counted when decided (`held_back`); this counter
        // is bumped once the script settled the message.
        let unused = AtomicU64::new(0);
        let (counter, args) = match &action {
            Action::Done { ttl } => (
                &self.stats.done,
                [
                    "done".into(),
                    millis(*ttl).to_string(),
                    String::new(),
                    "0".into(),
                    "0".into(),
                ],
            ),
            Action::Skip => (
                &self.stats.done,
                [
                    "skip".into(),
                    "0".into(),
                    String::new(),
                    "0".into(),
                    "0".into(),
                ],
            ),
            Action::Retry { delay, delayed } | Action::HoldBack { delay, delayed } => (
                if matches!(action, Action::Retry { .. }) {
                    &self.stats.retried
                } else {
                    &unused
                },
                [
                    "retry".into(),
                    u64::try_from(delay.as_millis())
                        .unwrap_or(u64::MAX)
                        .to_string(),
                    delayed.clone(),
                    millis(self.spec.retention.max_age).to_string(),
                    "0".into(),
                ],
            ),
            Action::Dead { letter, .. } => (
                &self.stats.dead,
                [
                    "dead".into(),
                    "0".into(),
                    letter.clone(),
                    millis(dlq::RETENTION).to_string(),
                    dlq::MAX_LEN.to_string(),
                ],
            ),
        };
        let settlement = || Settlement {
            keys: entry.keys.clone(),
            handle: entry.handle.clone(),
            deliveries: entry.deliveries,
            done: entry.keys.done(&self.group, key),
            action: args.clone(),
        };
        match self.persist(|| self.settler.call(settlement())).await {
            Ok(status) if status == "ok" => {
                if !matches!(action, Action::Skip) {
                    bump(counter, 1);
                }
                match &action {
                    Action::Done { .. } => metrics::acknowledged(self.spec),
                    Action::Skip => metrics::duplicate_skipped(self.spec),
                    Action::Retry { .. } => metrics::retried(self.spec),
                    Action::HoldBack { .. } => {}
                    Action::Dead { reason, .. } => {
                        metrics::dead_lettered(self.spec, reason.as_str())
                    }
                }
            }
            Ok(_) => {
                bump(&self.stats.stale, 1);
                tracing::info!(channel = %self.spec.qualified_name(), entry = %entry.handle.describe(), "another consumer took this message over; not settling it");
            }
            Err(e) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot settle a message; it stays pending and will be reclaimed");
            }
        }
    }

    /// Runs `call`, retrying passing Redis faults (a restart, a dropped
    /// connection) for up to the visibility timeout: within it, this
    /// consumer still owns the message, so giving up early would leave it
    /// held by a live consumer that no longer works on it.
    async fn persist<T, Call>(&self, mut call: impl FnMut() -> Call) -> Result<T, Error>
    where
        Call: std::future::Future<Output = Result<T, Error>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match call().await {
                Err(e) if e.is_transient() && started.elapsed() < self.spec.visibility_timeout => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// Shares the channel's partitions among the group's live members and
    /// reads this member's share: partition `i` of the declared order goes
    /// to member `i mod n` of the members sorted by name, rebalanced every
    /// [`REBALANCE`] as members join and leave. A member reads a partition
    /// only while it holds the partition's lease, so a newly assigned member
    /// starts only after the previous one released it (finishing the message
    /// in hand) or its lease expired: ordering holds across rebalances.
    async fn coordinate(self: Arc<Self>, partitions: Vec<ChannelKeys>) {
        let members_key = self.client.keys(self.spec, None).members(&self.group);
        let mut owned: HashMap<String, (CancellationToken, Lease, tokio::task::JoinHandle<()>)> =
            HashMap::new();
        let membership = |join: bool| {
            let mut cmd = scripts::evalsha(&MEMBERS, &[&members_key]);
            cmd.arg(&self.name)
                .arg(millis(LEASE_TTL))
                .arg(if join { "1" } else { "0" });
            cmd
        };
        loop {
            let mut members: Vec<String> = match self.client.query(&membership(true)).await {
                Ok(members) => members,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot renew group membership");
                    Vec::new()
                }
            };
            members.sort();
            let wanted: HashSet<String> = match members.iter().position(|m| *m == self.name) {
                Some(me) => partitions
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % members.len() == me)
                    .filter_map(|(_, keys)| keys.partition().map(str::to_string))
                    .collect(),
                // Unsure of the membership: keep what is held, take nothing.
                None => owned.keys().cloned().collect(),
            };
            let held: Vec<String> = owned.keys().cloned().collect();
            for partition in held {
                let keep = wanted.contains(&partition)
                    && match owned.get(&partition) {
                        Some((_, lease, _)) => lease.extend(LEASE_TTL).await.unwrap_or(false),
                        None => false,
                    };
                if !keep {
                    if let Some((stop, lease, reader)) = owned.remove(&partition) {
                        stop.cancel();
                        let _ = reader.await;
                        let _ = lease.release().await;
                    }
                }
            }
            for keys in &partitions {
                let Some(partition) = keys.partition() else {
                    continue;
                };
                if !wanted.contains(partition) || owned.contains_key(partition) {
                    continue;
                }
                match Lease::acquire(&self.client, &self.lease_name(partition), LEASE_TTL).await {
                    Ok(Some(lease)) => {
                        let stop = self.shutdown.child_token();
                        let reader =
                            tokio::spawn(self.clone().read_loop(keys.clone(), stop.clone()));
                        owned.insert(partition.to_string(), (stop, lease, reader));
                    }
                    // Still held by the previous owner: try again next round.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot take a partition lease")
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(REBALANCE) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        for (_, (stop, lease, reader)) in owned {
            stop.cancel();
            let _ = reader.await;
            let _ = lease.release().await;
        }
        let _: Result<Vec<String>, Error> = self.client.query(&membership(false)).await;
    }

    /// The lease that makes one member the reader of a partition.
    fn lease_name(&self, partition: &str) -> String {
        format!(
            "partition.{}.{}#{partition}.{}",
            self.spec.domain, self.spec.name, self.group
        )
    }

    /// Background duties until shutdown: move due retries and scheduled
    /// messages to the queue; on list and priority channels, keep the
    /// heartbeat, return the work of dead consumers, and report SLA
    /// breaches.
    async fn maintain(self: Arc<Self>, partitions: Vec<ChannelKeys>) {
        let held = matches!(self.spec.transport, Transport::List | Transport::Priority);
        let beat_every = self.spec.visibility_timeout / 3;
        let reap_every = self.spec.visibility_timeout / 2;
        let sla_every = Duration::from_millis(250);
        let (mut beat, mut reap, mut sla) = (Instant::now(), Instant::now(), Instant::now());
        let mut gate = Instant::now();
        let mut gauges = Instant::now() - GAUGE_SAMPLE;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.options.poll_interval) => {}
                () = self.shutdown.cancelled() => return,
            }
            if gate.elapsed() >= GATE_REFRESH {
                gate = Instant::now();
                self.refresh_gate().await;
            }
            if gauges.elapsed() >= GAUGE_SAMPLE {
                gauges = Instant::now();
                for keys in &partitions {
                    self.sample(keys).await;
                }
            }
            for keys in &partitions {
                self.move_due(keys).await;
            }
            if held && beat.elapsed() >= beat_every {
                beat = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.heartbeat(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "heartbeat failed");
                    }
                }
            }
            if held && reap.elapsed() >= reap_every {
                reap = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.reap(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "returning dead consumers' work failed");
                    }
                }
            }
            if self.spec.transport == Transport::Priority && sla.elapsed() >= sla_every {
                sla = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.check_sla(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "checking SLA deadlines failed");
                    }
                }
            }
        }
    }

    /// Samples a partition's depth and this group's pending count into the
    /// gauges.
    async fn sample(&self, keys: &ChannelKeys) {
        let inbox = keys.inbox(self.spec.transport);
        let sampled: Result<(u64, u64, Option<u64>), Error> = async {
            Ok(match self.spec.transport {
                Transport::Stream => {
                    let depth: u64 = self.client.query(redis::cmd("XLEN").arg(&inbox)).await?;
                    let groups: redis::streams::StreamInfoGroupsReply = self
                        .client
                        .query(redis::cmd("XINFO").arg("GROUPS").arg(&inbox))
                        .await?;
                    let mine = groups.groups.iter().find(|g| g.name == self.group);
                    (
                        depth,
                        mine.map_or(0, |g| g.pending as u64),
                        mine.and_then(|g| g.lag).map(|l| l as u64),
                    )
                }
                Transport::List => (
                    self.client.query(redis::cmd("LLEN").arg(&inbox)).await?,
                    self.client
                        .query(redis::cmd("LLEN").arg(keys.processing(&self.name)))
                        .await?,
                    None,
                ),
                Transport::Priority => (
                    self.client.query(redis::cmd("ZCARD").arg(&inbox)).await?,
                    self.client
                        .query(redis::cmd("LLEN").arg(keys.processing(&self.name)))
                        .await?,
                    None,
                ),
                Transport::Pubsub => (0, 0, None),
            })
        }
        .await;
        if let Ok((depth, pending, lag)) = sampled {
            metrics::depth(self.spec, keys.partition(), depth, pending, lag);
        }
    }

    /// Reads the pause switch and the dependency's breaker; either one
    /// open closes the gate. An unreadable state keeps the last decision.
    async fn refresh_gate(&self) {
        let paused = self.pause_switch.state().await;
        let dependency = match &self.dependency {
            Some(breaker) => Some(breaker.state().await),
            None => None,
        };
        let paused_now = matches!(paused, Ok(BreakerState::Paused));
        let dependency_open = match (&self.dependency, &dependency) {
            (Some(breaker), Some(Ok(state))) => {
                Some((breaker.name(), !matches!(state, BreakerState::Closed)))
            }
            _ => None,
        };
        metrics::gate(self.spec, paused_now, dependency_open);
        let closed = match (paused, dependency) {
            (Ok(BreakerState::Paused), _) => true,
            (_, Some(Ok(BreakerState::Open { .. } | BreakerState::Paused))) => true,
            (Ok(_), None | Some(Ok(_))) => false,
            (Err(e), _) | (_, Some(Err(e))) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot read the pause or breaker state");
                return;
            }
        };
        self.gate_closed.store(closed, Ordering::Relaxed);
    }

    /// Moves due messages of the delayed set to the queue, in chunks.
    async fn move_due(&self, keys: &ChannelKeys) {
        const CHUNK: usize = 100;
        let (delayed, inbox) = (keys.delayed(), keys.inbox(self.spec.transport));
        loop {
            let moved: Result<usize, Error> = self
                .client
                .query(
                    scripts::evalsha(&MOVE_DUE, &[&delayed, &inbox])
                        .arg(CHUNK)
                        .arg(self.spec.retention.max_len.unwrap_or(0))
                        .arg(millis(self.spec.retention.max_age))
                        .arg(self.spec.transport.as_str()),
                )
                .await;
            match moved {
                Ok(moved) if moved == CHUNK => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "moving due messages failed");
                    return;
                }
            }
        }
    }

    /// Returns the messages held by consumers whose heartbeat expired.
    async fn reap(&self, keys: &ChannelKeys) -> Result<(), Error> {
        const CHUNK: usize = 100;
        let members: Vec<String> = self
            .client
            .query(redis::cmd("SMEMBERS").arg(keys.consumers()))
            .await?;
        let others: Vec<&String> = members.iter().filter(|m| **m != self.name).collect();
        if others.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for member in &others {
            pipe.cmd("EXISTS").arg(keys.alive(member));
        }
        let alive: Vec<bool> = self.client.pipeline(&pipe).await?;
        let (queue, consumers) = (keys.queue(), keys.consumers());
        for (member, _) in others.iter().zip(alive).filter(|(_, alive)| !alive) {
            let (processing, heartbeat) = (keys.processing(member), keys.alive(member));
            loop {
                let moved: i64 = self
                    .client
                    .query(
                        scripts::evalsha(&REAP, &[&processing, &queue, &heartbeat, &consumers])
                            .arg(member.as_str())
                            .arg(self.spec.transport.as_str())
                            .arg(CHUNK)
                            .arg(millis(self.spec.retention.max_age)),
                    )
                    .await?;
                if moved > 0 {
                    bump(&self.stats.reaped, moved as u64);
                    tracing::warn!(channel = %self.spec.qualified_name(), consumer = %member, moved, "returned the work of a consumer that stopped beating");
                }
                if moved < CHUNK as i64 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reports (and escalates, if configured) priority messages waiting
    /// past their SLA deadline.
    async fn check_sla(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let (sla, queue, counter) = (keys.sla(), keys.queue(), keys.sla_breaches());
        let late: Vec<String> = self
            .client
            .query(
                scripts::evalsha(&SLA, &[&sla, &queue, &counter])
                    .arg(100)
                    .arg(if self.options.escalate_sla_breaches {
                        "1"
                    } else {
                        "0"
                    })
                    .arg(millis(dlq::RETENTION)),
            )
            .await?;
        for pair in late.chunks(2) {
            let [record, deadline] = pair else { continue };
            bump(&self.stats.sla_breaches, 1);
            metrics::sla_breached(self.spec);
            let Ok(envelope) = Envelope::from_json(record) else {
                continue;
            };
            tracing::warn!(channel = %self.spec.qualified_name(), message = %envelope.id, "SLA breached: still waiting past its deadline");
            if let Some(notice) = self.spec.sla_notice {
                if let Err(e) = self.announce(notice, &envelope, deadline).await {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot announce an SLA breach");
                }
            }
        }
        Ok(())
    }

    /// Publishes courier's SLA notice for a late message on the notice
    /// channel, keyed by the message so it is announced once.
    async fn announce(
        &self,
        notice: SlaNoticeSpec,
        late: &Envelope,
        deadline_ms: &str,
    ) -> Result<(), Error> {
        let deadline = deadline_ms
            .parse::<f64>()
            .ok()
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
            .unwrap_or_else(Utc::now);
        let payload = serde_json::json!({
            "message_id": late.id,
            "key": late.key,
            "channel": self.spec.qualified_name(),
            "deadline": envelope::timestamp(deadline),
            "priority": late.priority.unwrap_or(0),
        });
        crate::envelope::check_sla_notice(&payload)?;
        let outbox = Outbox {
            client: &self.client,
            spec: notice.channel,
        };
        let options = PublishOptions::default();
        let prepared = outbox.prepare(
            notice.channel.schema,
            notice.version,
            payload,
            format!("sla:{}", late.id),
            &options,
            crate::envelope::HeaderCheck::Full,
        )?;
        outbox.send(vec![prepared], &options).await?;
        Ok(())
    }
}

/// How a delivered message is held, which decides how it is settled.
#[derive(Debug, Clone)]
enum Handle {
    /// A stream entry, pending for this consumer.
    Stream {
        /// The entry id.
        id: String,
    },
    /// An element of this consumer's processing list.
    Listed {
        /// The element exactly as held: bytes, since a foreign writer may
        /// have put anything there, and settling removes it by value.
        element: Vec<u8>,
    },
}

impl Handle {
    /// Where the message was, for dead letters and logs.
    fn describe(&self) -> String {
        match self {
            Handle::Stream { id } => id.clone(),
            Handle::Listed { .. } => "processing list".to_string(),
        }
    }

    /// What tells this delivery apart among the consumer's holdings.
    fn identity(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Handle::Stream { id } => id.into(),
            Handle::Listed { element } => String::from_utf8_lossy(element),
        }
    }
}

/// The envelope, history and reap count of a held element; an element
/// that is not UTF-8 text has no envelope (it is dead-lettered).
fn held_record(transport: Transport, element: &[u8]) -> (Option<String>, Vec<Attempt>, usize) {
    match std::str::from_utf8(element) {
        Ok(text) => parse_record(transport, text),
        Err(_) => (None, Vec::new(), 0),
    }
}

/// A held message's name in [`Ctx::holding`]: its partition and identity
/// (stream entry ids repeat across partitions' streams).
fn held_key(keys: &ChannelKeys, identity: &str) -> String {
    format!("{}/{identity}", keys.partition().unwrap_or(""))
}

/// The envelope (`m`) and attempt history (`h`) fields of a stream entry.
fn stream_fields(fields: &HashMap<String, Value>) -> (Option<String>, Vec<Attempt>) {
    let field = |name: &str| {
        fields
            .get(name)
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
    };
    let history = field("h")
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or_default();
    (field("m"), history)
}

/// A held list or priority element as (envelope text, history, times
/// reaped); priority elements carry their score before a `|`.
fn parse_record(transport: Transport, element: &str) -> (Option<String>, Vec<Attempt>, usize) {
    let record = match transport {
        Transport::Priority => element
            .split_once('|')
            .map_or(element, |(_, record)| record),
        _ => element,
    };
    let record = envelope::parse_record(record);
    (Some(record.envelope), record.history, record.reaped)
}

/// Why a message cannot reach a handler.
pub(crate) struct Rejected {
    /// The dead-letter reason.
    pub(crate) reason: DeadReason,
    /// The error text.
    pub(crate) error: String,
    /// Its idempotency key, when the envelope was readable.
    pub(crate) key: String,
}

/// The checks every message passes before a handler sees it, on every
/// transport, in this order: a readable envelope, not expired, the
/// channel's schema, a readable version, a payload valid against that
/// version's schema. Returns the decoded message and its envelope (payload
/// taken out).
pub(crate) fn admit<M: Readable>(spec: &ChannelSpec, raw: &str) -> Result<(M, Envelope), Rejected> {
    let rejected = |reason, error: String, key: &str| Rejected {
        reason,
        error,
        key: key.to_string(),
    };
    let mut envelope = Envelope::from_json(raw)
        .map_err(|e| rejected(DeadReason::InvalidPayload, e.to_string(), "-"))?;
    let key = envelope.key.clone();
    if envelope.is_expired(Utc::now()) {
        let error = format!("expired at {}", envelope.expires_at);
        return Err(rejected(DeadReason::Expired, error, &key));
    }
    if envelope.schema != M::SCHEMA {
        let error = Error::SchemaMismatch {
            expected: M::SCHEMA,
            found: envelope.schema.clone(),
        };
        return Err(rejected(
            DeadReason::SchemaMismatch,
            error.to_string(),
            &key,
        ));
    }
    let Some(version) = readable_as::<M>(envelope.version, spec) else {
        let error = unsupported::<M>(envelope.version).to_string();
        return Err(rejected(DeadReason::VersionUnsupported, error, &key));
    };
    let payload = std::mem::take(&mut envelope.payload);
    let message = M::decode(version, &payload)
        .map_err(|e| rejected(DeadReason::InvalidPayload, e.to_string(), &key))?;
    Ok((message, envelope))
}

/// The version to decode a message of `version` as: its own when the
/// consumer knows it; the consumer's newest when the message is newer and
/// the channel's mode guarantees newer messages are valid under older
/// schemas (the payload is still validated against that schema); none
/// otherwise.
fn readable_as<M: Readable>(version: u32, spec: &ChannelSpec) -> Option<u32> {
    let newest = M::VERSIONS.iter().copied().max()?;
    if M::VERSIONS.contains(&version) {
        Some(version)
    } else if version > newest && spec.compatibility.reads_newer() {
        Some(newest)
    } else {
        None
    }
}

/// One message being processed.
struct Entry<'a> {
    keys: &'a ChannelKeys,
    handle: &'a Handle,
    deliveries: usize,
    /// The envelope text, as stored.
    raw: Option<&'a str>,
    history: Vec<Attempt>,
    /// Whether its idempotency key was already done, checked with the
    /// rest of its read batch: the batch's answer and its place in it.
    done_hint: Option<(DoneHints, usize)>,
    /// Its handler permit, given back when the handler returned.
    permit: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

/// The delayed-set member for the next attempt: the envelope with its
/// attempt raised (when `count`), and the history so far.
fn next_attempt(raw: &str, history: &[Attempt], count: bool) -> Result<String, Error> {
    let mut envelope = Envelope::from_json(raw)?;
    if count {
        envelope.attempt += 1;
    }
    Ok(serde_json::json!({
        "m": envelope.to_json()?,
        "h": serde_json::to_string(history)?,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_schema::Compatibility;

    /// A reader generated for versions 1 and 2.
    struct Twice;

    impl Readable for Twice {
        const SCHEMA: &'static str = "shop.order";
        const VERSIONS: &'static [u32] = &[1, 2];

        fn decode(_version: u32, _payload: &serde_json::Value) -> Result<Self, Error> {
            Ok(Twice)
        }
    }

    fn check(mode: Compatibility, version: u32, expected: Option<u32>) {
        let spec = ChannelSpec {
            compatibility: mode,
            ..crate::keys::tests::SPEC
        };
        assert_eq!(
            readable_as::<Twice>(version, &spec),
            expected,
            "{mode:?} v{version}"
        );
    }

    #[test]
    fn newer_versions_are_read_as_the_newest_only_under_forward_modes() {
        check(Compatibility::Backward, 2, Some(2));
        check(Compatibility::Backward, 3, None);
        check(Compatibility::None, 3, None);
        check(Compatibility::BackwardTransitive, 3, None);
        check(Compatibility::Forward, 3, Some(2));
        check(Compatibility::ForwardTransitive, 7, Some(2));
        check(Compatibility::Full, 3, Some(2));
        check(Compatibility::FullTransitive, 1, Some(1));
        check(Compatibility::Full, 0, None);
    }
}
