//! Autoscaling a consumer role from telemetry: a [`Scaler`] runs a pool of
//! consumer instances of one channel and group, each with its own handlers
//! (`ConsumerOptions::concurrency`), and grows or shrinks the pool between
//! a minimum and a maximum from what it reads every `interval`:
//!
//! - the channel's **backlog** for the group, messages not yet delivered to
//!   it (a stream's lag, a list or priority queue's length), and the
//!   **oldest** one's age, through [`Client::channel_state`];
//! - how **busy** the pool's handlers were since the last reading: the
//!   growth of their handler time ([`ConsumerStats::handler_time`]) over
//!   the interval times the handlers there are, or the share running now
//!   if that is more (a handler longer than the interval has not returned
//!   yet to count).
//!
//! The rules, with their hysteresis and cool-downs, are in [`policy`].
//! Each decision is logged (`info`, target `courier::scaler`) with its
//! reason, and the desired count is the gauge
//! `courier_scaler_desired_instances{channel, group}` (the running count
//! `courier_scaler_instances`), so that an external autoscaler can act on
//! the same signal as the in-process one: run one courier process per
//! desired instance instead of one pool.
//!
//! A new instance is a new member of the group; a removed one stops as a
//! consumer stops (it finishes its handlers within the grace period and
//! leaves anything unfinished pending for the others). On a partitioned
//! channel the pool grows at most to the partition count: the group's
//! members share the partitions out, one member each at a time, so a
//! member beyond the count would be given none.

pub mod policy;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::consumer::{Consumer, ConsumerReport, ConsumerStats};
use crate::contract::Readable;
use crate::error::Error;
use crate::handler::Handler;
use crate::metrics;
use crate::spec::ChannelSpec;

pub use policy::{Decision, Policy, ScalerConfig, Signals};

/// How many decisions a pool keeps for [`ScalerHandle::decisions`] and its
/// report: the latest.
pub const KEPT_DECISIONS: usize = 1000;

/// Sizes of a running pool, readable while it runs.
#[derive(Debug, Default)]
pub struct ScalerHandle {
    running: AtomicUsize,
    desired: AtomicUsize,
    decisions: Mutex<Vec<(Duration, Decision)>>,
}

impl ScalerHandle {
    /// Instances running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Instances the policy wants now.
    pub fn desired(&self) -> usize {
        self.desired.load(Ordering::Relaxed)
    }

    /// The decisions so far (the latest [`KEPT_DECISIONS`]), with the
    /// time since the pool started.
    pub fn decisions(&self) -> Vec<(Duration, Decision)> {
        self.decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What a pool did, when it stopped.
#[derive(Debug, Clone, Default)]
pub struct ScalerReport {
    /// Every instance's counters, added up.
    pub consumers: ConsumerReport,
    /// Its changes of size (the latest [`KEPT_DECISIONS`]), with the time
    /// since the pool started.
    pub decisions: Vec<(Duration, Decision)>,
    /// The most instances that ran at once.
    pub peak: usize,
}

/// A pool of consumers of one channel and group, sized by a [`Policy`].
pub struct Scaler<M: Readable> {
    template: Consumer<M>,
    config: ScalerConfig,
    handle: Arc<ScalerHandle>,
}

impl<M: Readable> std::fmt::Debug for Scaler<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler")
            .field("consumer", &self.template)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One running instance.
struct Instance {
    /// Its task, to tell which instance ended.
    task: tokio::task::Id,
    stop: CancellationToken,
    stats: Arc<ConsumerStats>,
    /// Its handler time at the last reading.
    seen: Duration,
}

impl<M: Readable> Scaler<M> {
    /// A pool of instances like `template` (its channel, group, options
    /// and client; each instance gets a name of its own), sized by
    /// `config`.
    pub fn new(template: Consumer<M>, config: ScalerConfig) -> Scaler<M> {
        Scaler {
            template,
            config,
            handle: Arc::default(),
        }
    }

    /// The pool's sizes, to watch it run.
    pub fn handle(&self) -> Arc<ScalerHandle> {
        self.handle.clone()
    }

    /// The most instances that can do work: the config's maximum or, on a
    /// partitioned channel whose partitions the group's members share out,
    /// the partition count (a member beyond it would be given none); one
    /// when the instances are told which partitions to read and handle
    /// them in order (each would read the same ones).
    pub fn ceiling(&self) -> usize {
        let spec = self.template.spec();
        let options = self.template.options();
        let ordered = options.ordered.unwrap_or(spec.partitions.is_some());
        match (&spec.partitions, &options.partitions) {
            (Some(_), None) => self.config.max.min(crate::partition::all(spec).len()),
            // Every instance reads the partitions it is given: more than
            // one would break their order.
            (Some(_), Some(_)) if ordered => 1,
            _ => self.config.max,
        }
    }

    /// Runs the pool until `shutdown` is cancelled, each instance with a
    /// handler from `handler`, then stops every instance as a consumer
    /// stops. Fails when an instance fails to start (a channel of another
    /// schema, a bad rate limit): the same errors as
    /// [`Consumer::run_until`].
    pub async fn run_until<F, H>(
        self,
        handler: F,
        shutdown: CancellationToken,
    ) -> Result<ScalerReport, Error>
    where
        F: Fn() -> H,
        H: Handler<M>,
    {
        let spec = self.template.spec();
        let group = self.template.group().to_string();
        let client = self.template.client().clone();
        let mut policy = Policy::new(self.config.clone(), self.ceiling());
        // The instances stop with the caller's token, or with this one when
        // one of them fails: the caller's other work goes on.
        let pool_stop = shutdown.child_token();
        let started = Instant::now();
        let mut tasks: JoinSet<Result<ConsumerReport, Error>> = JoinSet::new();
        let mut pool: Vec<Instance> = Vec::new();
        let mut report = ScalerReport::default();
        let mut last = Instant::now();
        let concurrency = self.template.options().concurrency.max(1);
        let gauges = metrics::ScalerGauges::new(spec, &group);
        let mut faults = crate::retry::Backoff::new();
        loop {
            // Match the pool to the policy, then wait for the next reading.
            while pool.len() < policy.current() {
                let consumer = self.template.sibling();
                let stop = pool_stop.child_token();
                let stats = consumer.stats();
                let handler = handler();
                let task = {
                    let stop = stop.clone();
                    tasks.spawn(async move { consumer.run_until(handler, stop).await })
                };
                pool.push(Instance {
                    task: task.id(),
                    seen: stats.handler_time(),
                    stop,
                    stats,
                });
            }
            while pool.len() > policy.current() {
                if let Some(instance) = pool.pop() {
                    instance.stop.cancel();
                }
            }
            self.handle.running.store(pool.len(), Ordering::Relaxed);
            self.handle
                .desired
                .store(policy.current(), Ordering::Relaxed);
            gauges.set(pool.len(), policy.current());
            report.peak = report.peak.max(pool.len());
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.interval) => {}
                Some(ended) = tasks.join_next_with_id() => {
                    let (task, ended) = match ended {
                        Ok((task, ended)) => (task, Ok(ended)),
                        Err(e) => (e.id(), Err(e)),
                    };
                    // An instance that ended is no longer in the pool: the
                    // next turn starts another if the policy still wants it.
                    pool.retain(|instance| instance.task != task);
                    match ended {
                        Ok(Ok(counters)) => report.consumers += counters,
                        // Redis away while it started: try again after a
                        // pause, as every other loop does.
                        Ok(Err(e)) if e.is_transient() => {
                            tracing::warn!(channel = %spec.qualified_name(), %group, error = %e, "an instance stopped on a passing fault; starting another");
                            if !faults.pause(&shutdown).await {
                                break;
                            }
                        }
                        // It cannot run (another schema, a bad rate limit):
                        // none can; stop the pool with the error.
                        Ok(Err(e)) => {
                            pool_stop.cancel();
                            while tasks.join_next().await.is_some() {}
                            self.handle.running.store(0, Ordering::Relaxed);
                            return Err(e);
                        }
                        Err(panic) => {
                            tracing::error!(channel = %spec.qualified_name(), %group, error = %panic, "an instance panicked; starting another");
                        }
                    }
                    continue;
                }
            }
            let signals = match read(&client, spec, &group, &mut pool, concurrency, &mut last).await
            {
                Ok(signals) => {
                    faults.reset();
                    signals
                }
                Err(e) => {
                    tracing::warn!(channel = %spec.qualified_name(), %group, error = %e, "scaler cannot read the channel; keeping the pool as it is");
                    continue;
                }
            };
            if let Some(decision) = policy.decide(&signals, Instant::now()) {
                tracing::info!(
                    target: "courier::scaler",
                    channel = %spec.qualified_name(),
                    %group,
                    from = decision.from,
                    to = decision.to,
                    reason = %decision.reason,
                    "scaling"
                );
                let mut decisions = self
                    .handle
                    .decisions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // A pool that runs for months keeps its latest decisions.
                if decisions.len() == KEPT_DECISIONS {
                    decisions.remove(0);
                }
                decisions.push((started.elapsed(), decision));
            }
        }
        for instance in &pool {
            instance.stop.cancel();
        }
        while let Some(ended) = tasks.join_next().await {
            if let Ok(Ok(counters)) = ended {
                report.consumers += counters;
            }
        }
        self.handle.running.store(0, Ordering::Relaxed);
        gauges.set(0, policy.current());
        report.decisions = self.handle.decisions();
        Ok(report)
    }
}

/// The signals now: the group's backlog and oldest message, and how busy
/// the pool's handlers (`concurrency` per instance) were since the last
/// reading, at `last` (updated, as is each instance's handler time: an
/// instance removed since takes its own time with it).
async fn read(
    client: &Client,
    spec: &ChannelSpec,
    group: &str,
    pool: &mut [Instance],
    concurrency: usize,
    last: &mut Instant,
) -> Result<Signals, Error> {
    let state = client.channel_state(spec, Some(group)).await?;
    let mut busy = Duration::ZERO;
    for instance in pool.iter_mut() {
        let now = instance.stats.handler_time();
        busy += now.saturating_sub(instance.seen);
        instance.seen = now;
    }
    let running: u64 = pool.iter().map(|i| i.stats.handling()).sum();
    let now = Instant::now();
    let elapsed = now.duration_since(std::mem::replace(last, now));
    Ok(Signals {
        backlog: state.total.waiting.unwrap_or(0),
        oldest: state.total.oldest,
        busy: busy_ratio(busy, elapsed, running, pool.len() * concurrency),
    })
}

/// Handler time `busy` over the time `elapsed` that `handlers` had, or the
/// share of them `running` now if that is more (a handler longer than the
/// interval has not returned yet to be counted); within 0 and 1.
fn busy_ratio(busy: Duration, elapsed: Duration, running: u64, handlers: usize) -> f64 {
    let handlers = handlers.max(1) as f64;
    let over_time = busy.as_secs_f64() / (elapsed.as_secs_f64().max(1e-3) * handlers);
    over_time.max(running as f64 / handlers).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_handler_time_over_the_time_the_handlers_had() {
        let second = Duration::from_secs(1);
        // 8 handlers for 1 s, busy 4 s in all: half.
        assert_eq!(busy_ratio(4 * second, second, 0, 8), 0.5);
        // Nothing returned yet, but 6 of 8 running: three quarters.
        assert_eq!(busy_ratio(Duration::ZERO, second, 6, 8), 0.75);
        // Never over 1, and an empty pool is not a division by zero.
        assert_eq!(busy_ratio(20 * second, second, 0, 8), 1.0);
        assert_eq!(busy_ratio(Duration::ZERO, Duration::ZERO, 0, 0), 0.0);
    }
}
