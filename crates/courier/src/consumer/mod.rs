//! Consuming a channel: read, admit, handle, settle.
//!
//! A [`Consumer`] joins a consumer group and runs one reader per partition
//! on its own connection (a blocking read must never sit on the shared
//! connection), up to `concurrency` handlers in flight. The pipeline is one
//! file per step, in the order a message goes through them:
//!
//! 1. reading, per transport: `streams.rs` (`XREADGROUP`) and `held.rs`
//!    (lists and priority queues, taken into a processing list);
//!    `claim.rs` takes back what others held past the visibility timeout
//!    and what this consumer holds but no handler works on;
//! 2. `dispatch.rs`: a handler slot per message, and the hand-off;
//! 3. `admit.rs`: every check before a handler, each failure dead-lettered
//!    with its reason; an idempotency key already done is acknowledged and
//!    skipped;
//! 4. `gate.rs`: pause, dependency breaker and shared rate, which decide
//!    whether a handler may start now;
//! 5. `process.rs`: the handler runs and its [`Outcome`] becomes an action;
//! 6. `settle.rs`: one fenced script per partition and batch acknowledges,
//!    retries (through the delayed set, with backoff) or dead-letters.
//!
//! Beside the pipeline, `maintenance.rs` runs the background duties (due
//! retries, gauges, reaping, SLA checks) and `partitions.rs` shares a
//! partitioned channel's partitions among the group's members. The public
//! types are in `delivery.rs` ([`Delivery`], [`Outcome`]), `options.rs` and
//! `stats.rs`; `shutdown.rs` the stop signals of [`Consumer::run`]. This
//! file holds the [`Consumer`] and the state its tasks share.

mod admit;
mod claim;
mod dispatch;
mod gate;
mod held;
mod maintenance;
mod options;
mod partitions;
mod process;
mod settle;
mod shutdown;
mod stats;
mod streams;

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::delivery::{Delivery, Outcome};
pub(crate) use admit::admit;
pub use options::{ConsumerOptions, Dependency, Rate};
pub use stats::{ConsumerReport, ConsumerStats};

use crate::batch::Batcher;
use crate::breaker::BreakerConfig;
use crate::client::Client;
use crate::contract::Readable;
use crate::envelope;
use crate::error::Error;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::metrics::ChannelMetrics;
use crate::partition;
use crate::spec::{Channel, ChannelSpec};
use courier_schema::Transport;
use gate::Gate;
use settle::{check_batch, settle_batch, Settlement, BATCH_LIMIT};

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
    /// A consumer of channel `C` in consumer group `group`, reading every
    /// version of its message; generated `consumer()` functions call this.
    /// Another message type does not compile.
    pub fn of<C: Channel<Message = M>>(client: &Client, group: &str) -> Self {
        Self::untyped(client, C::SPEC, group)
    }

    /// A consumer of `spec`'s channel in consumer group `group`, for tools
    /// and tests that build a channel's contract at run time. Nothing
    /// checks at compile time that `M` is the channel's message: `run`
    /// refuses to start with [`Error::SchemaMismatch`] when it is not.
    /// Agents use [`of`](Self::of).
    pub fn untyped(client: &Client, spec: &'static ChannelSpec, group: &str) -> Self {
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

    /// Its options.
    pub fn options(&self) -> &ConsumerOptions {
        &self.options
    }

    /// The client it reads through.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Another member of the same group with the same options, under a
    /// name of its own and with counters of its own: an instance of a
    /// scaler's pool.
    pub(crate) fn sibling(&self) -> Consumer<M> {
        Consumer::untyped(&self.client, self.spec, &self.group).with_options(self.options.clone())
    }

    /// The dependency: the options', else the channel contract's.
    fn dependency(&self) -> Option<Dependency> {
        self.options.dependency.clone().or_else(|| {
            self.spec.dependency.as_ref().map(|d| Dependency {
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
            self.spec.rate_limit.as_ref().map(|r| Rate {
                name: r.name.as_deref().map_or_else(
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

    /// Runs `handler` on every message until Ctrl-C or, on unix, SIGTERM,
    /// then shuts down as [`run_until`](Self::run_until) does. After it
    /// returns, the process keeps handling SIGTERM (see `shutdown.rs`): it
    /// no longer ends the process by itself.
    pub async fn run<F>(&self, handler: F) -> Result<ConsumerReport, Error>
    where
        F: Handler<M>,
    {
        let shutdown = CancellationToken::new();
        let signal = shutdown::on_stop_signal(shutdown.clone());
        let report = self.run_until(handler, shutdown).await;
        signal.abort();
        report
    }

    /// Runs `handler` on every message until `shutdown` is cancelled, then
    /// stops reading, waits up to the grace period for handlers in flight,
    /// and leaves anything unfinished pending for other consumers.
    pub async fn run_until<F>(
        &self,
        handler: F,
        shutdown: CancellationToken,
    ) -> Result<ConsumerReport, Error>
    where
        F: Handler<M>,
    {
        crate::spec::expect_schema(self.spec, M::SCHEMA)?;
        let partitions: Vec<ChannelKeys> = partition::all(self.spec)
            .into_iter()
            .filter(|p| match (&self.options.partitions, p) {
                (Some(wanted), Some(p)) => wanted.contains(p),
                _ => true,
            })
            .map(|p| self.client.keys(self.spec, p.as_deref()))
            .collect();
        let settler = {
            let (client, spec) = (self.client.clone(), self.spec);
            let (group, name) = (self.group.clone(), self.name.clone());
            Batcher::new(BATCH_LIMIT, move |batch| {
                settle_batch(client.clone(), spec, group.clone(), name.clone(), batch)
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
            window: Arc::new(Semaphore::new(
                self.options.concurrency.max(1) + self.options.read_ahead,
            )),
            left_unstarted: std::sync::atomic::AtomicU64::new(0),
            settling: Arc::new(Semaphore::new(4 * self.options.concurrency.max(1))),
            tracker: TaskTracker::new(),
            shutdown: shutdown.clone(),
            hard_stop: CancellationToken::new(),
            gate: Gate::new(&self.client, self.spec, self.dependency(), self.rate())?,
            metrics: ChannelMetrics::new(self.spec),
            ordered: self
                .options
                .ordered
                .unwrap_or(self.spec.partitions.is_some()),
            _message: PhantomData,
        });
        ctx.gate.refresh().await;
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
    /// One permit per message this consumer holds between its read and
    /// its handler's return: concurrency plus the read-ahead.
    window: Arc<Semaphore>,
    /// Counts messages read ahead and left unstarted (they waited too long
    /// for a handler slot): a reader that sees it move takes back what
    /// this consumer holds but no handler works on.
    left_unstarted: std::sync::atomic::AtomicU64,
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
    /// Pause, dependency breaker and shared rate: whether a handler may
    /// start now.
    gate: Gate,
    /// Whether messages of a partition are handled one at a time, in order.
    ordered: bool,
    /// The per-message metrics' handles.
    metrics: ChannelMetrics,
    /// What this consumer's handlers hold right now (stream entry ids,
    /// held elements), so that recovery takes back only the rest.
    holding: std::sync::Mutex<HashSet<String>>,
    /// Settlements of handlers in flight, sent together.
    settler: Batcher<Settlement, String>,
    /// Done-mark checks of handlers in flight, sent together.
    checker: Batcher<String, bool>,
    _message: PhantomData<fn() -> M>,
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Joins a partition: on streams, creates the consumer group; on list
    /// and priority channels, registers this consumer and its heartbeat.
    pub(super) async fn join(&self, keys: &ChannelKeys) -> Result<(), Error> {
        match self.spec.transport {
            Transport::Stream => self.ensure_group(keys).await,
            Transport::List | Transport::Priority => self.heartbeat(keys).await,
            Transport::Pubsub => Ok(()),
        }
    }

    /// Reads one partition until `stop` (shutdown, or the partition was
    /// assigned to another consumer).
    pub(super) async fn read_loop(self: Arc<Self>, keys: ChannelKeys, stop: CancellationToken) {
        match self.spec.transport {
            Transport::Stream => self.read_stream(keys, stop).await,
            Transport::List | Transport::Priority => self.read_held(keys, stop).await,
            // Broadcasts are read by a `Subscriber`, not a consumer group.
            Transport::Pubsub => {}
        }
    }
}
