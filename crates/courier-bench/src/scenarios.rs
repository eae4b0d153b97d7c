//! The scenarios. Each has a courier side, through the public API with
//! every guarantee on, and up to three others ([`Side`]):
//!
//! - the same-work baseline, in every scenario: the `redis` crate sending
//!   the commands a careful hand-written producer or consumer would send
//!   for courier's work (an idempotency key with a TTL, the stream append
//!   with trim and expiry, the done check, the done mark and the
//!   acknowledgement), batched as courier batches, without courier's
//!   atomicity, validation or fencing;
//! - the pipelined baseline ([`crate::pipelined`]), in publish_batch,
//!   end_to_end and latency_1k_per_s: the fastest straightforward
//!   hand-written queue, doing less work with larger batches and 50
//!   readers;
//! - BullMQ ([`crate::peers`]), in end_to_end with `--peers`.
//!
//! Enqueueing in batches, courier's side hands all its messages to one
//! `publish_many`, as a user with a batch would; courier sends them 500
//! per script call, encoding the next 500 while Redis writes the last.
//! The baselines send 500 per pipeline and wait for each.
//!
//! The baselines are floors courier is compared with, not equals.
//! Throughput scenarios also report the client's CPU per message
//! ([`crate::cpu`]) on each side.
//!
//! Payloads are contact-center interactions of about 256 bytes of JSON, on
//! a stream channel shaped like intake without its partitions and rate
//! limit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use chrono::Utc;
use contact_center_contracts::channels;
use contact_center_contracts::{Interaction, InteractionV1};
use courier::{
    CancellationToken, ChannelSpec, Client, Consumer, ConsumerOptions, Outcome, Producer,
    PublishOptions,
};
use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use serde_json::json;

use crate::cpu::CpuSpan;
use crate::peers::Peers;
use crate::pipelined::{self, PipelinedQueue};

/// Every scenario, in the order they run.
pub const ALL: &[&str] = &[
    "publish_one",
    "publish_batch",
    "end_to_end",
    "latency_1k_per_s",
    "memory",
];

/// The benchmark channel: intake's contract without partitions, rate limit
/// or breaker, so that one stream and one group carry everything.
pub const SPEC: ChannelSpec = ChannelSpec {
    domain: Cow::Borrowed("bench"),
    name: Cow::Borrowed("events"),
    partitions: None,
    rate_limit: None,
    dependency: None,
    sla_notice: None,
    ..channels::intake::SPEC
};

/// The same channel with a one-second dedup window, to watch idempotency
/// keys expire.
pub static SHORT_WINDOW: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("short_window"),
    dedup_window: Duration::from_secs(1),
    ..SPEC
};

/// Handlers in flight in the consuming scenarios.
const IN_FLIGHT: usize = 50;
/// Most messages courier reads at once in the consuming scenarios, as many
/// as each of the pipelined baseline's reads (its read-ahead lets a read
/// take that many with 50 handlers in flight).
const READ_BATCH: usize = 100;

/// What one figure measures.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Its name.
    pub name: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Whether more is better.
    pub higher_is_better: bool,
}

const fn metric(name: &'static str, unit: &'static str, higher_is_better: bool) -> Metric {
    Metric {
        name,
        unit,
        higher_is_better,
    }
}

/// Who does a scenario's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// courier, through its public API, every guarantee on.
    Courier,
    /// Hand-written `redis` calls doing courier's Redis work.
    SameWork,
    /// The fastest straightforward hand-written queue ([`PipelinedQueue`]).
    Pipelined,
    /// BullMQ in Node, with `--peers`.
    Bullmq,
}

/// One metric's values in one round, by side; `None` where a side does not
/// run the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// What was measured.
    pub metric: Metric,
    /// courier's value.
    pub courier: f64,
    /// The same-work baseline's value.
    pub same_work: f64,
    /// The pipelined baseline's value.
    pub pipelined: Option<f64>,
    /// BullMQ's value.
    pub bullmq: Option<f64>,
}

/// The figures of one scenario in one round.
#[derive(Debug, Default)]
pub struct Measured {
    /// One sample per metric.
    pub values: Vec<Sample>,
}

/// Client CPU per message, user+sys of this process (or BullMQ's).
const CPU: Metric = metric("client CPU", "µs/msg", false);

const PUBLISH_ONE: &[Metric] = &[
    metric("throughput", "msg/s", true),
    metric("latency p50", "µs", false),
    metric("latency p99", "µs", false),
];
const PUBLISH_BATCH: &[Metric] = &[metric("throughput", "msg/s", true), CPU];
const END_TO_END: &[Metric] = &[
    metric("enqueue", "msg/s", true),
    metric("drain", "msg/s", true),
    metric("enqueue client CPU", "µs/msg", false),
    metric("drain client CPU", "µs/msg", false),
];
const LATENCY: &[Metric] = &[
    metric("p50", "µs", false),
    metric("p99", "µs", false),
    metric("p99.9", "µs", false),
    CPU,
];
const MEMORY: &[Metric] = &[
    metric("stream", "B/msg", false),
    metric("idempotency key", "B/msg", false),
    metric("total", "B/msg", false),
    metric("envelope", "B/msg", false),
    metric("total / envelope", "×", false),
    metric("idem keys after window", "keys", false),
];

fn metrics(scenario: &str) -> &'static [Metric] {
    match scenario {
        "publish_one" => PUBLISH_ONE,
        "publish_batch" => PUBLISH_BATCH,
        "end_to_end" => END_TO_END,
        "latency_1k_per_s" => LATENCY,
        _ => MEMORY,
    }
}

/// Connections and counts shared by the scenarios.
#[allow(missing_debug_implementations)] // holds connections
pub struct Bench {
    /// The Redis every side uses.
    url: String,
    /// The baselines' shared connection (and the harness's own queries).
    raw: MultiplexedConnection,
    /// For the baselines' reader connections.
    raw_client: redis::Client,
    /// Smaller counts.
    quick: bool,
    /// This run's tag in every namespace.
    run: String,
    /// Numbers namespaces and salts.
    seq: AtomicUsize,
    /// BullMQ, installed with `--peers` when Node is there.
    peers: Option<Peers>,
    /// Only courier's side runs (`--courier-only`).
    pub courier_only: bool,
}

impl Bench {
    /// Connects the baselines' connection; courier clients are made per
    /// scenario, each in a namespace of its own. With `peers`, BullMQ runs
    /// beside the others in end_to_end.
    pub async fn connect(url: &str, quick: bool, peers: Option<Peers>) -> Result<Bench> {
        let raw_client = redis::Client::open(url).context("opening the Redis URL")?;
        let raw = raw_client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Bench {
            url: url.to_string(),
            raw,
            raw_client,
            quick,
            run: uuid::Uuid::new_v4().to_string()[..8].to_string(),
            seq: AtomicUsize::new(0),
            peers,
            courier_only: false,
        })
    }

    /// A command on the baseline's connection.
    pub async fn raw_query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        Ok(cmd.query_async(&mut self.raw.clone()).await?)
    }

    fn count(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// The sides that run `scenario`, in the order they run in `round`:
    /// rotated each round, so that no side always runs first on a cold
    /// server or last on a fragmented one.
    pub fn sides(&self, scenario: &str, round: usize) -> Vec<Side> {
        if self.courier_only {
            return vec![Side::Courier];
        }
        let mut sides = vec![Side::Courier, Side::SameWork];
        if matches!(
            scenario,
            "publish_batch" | "end_to_end" | "latency_1k_per_s"
        ) {
            sides.push(Side::Pipelined);
        }
        if scenario == "end_to_end" && self.peers.is_some() {
            sides.push(Side::Bullmq);
        }
        let len = sides.len();
        sides.rotate_left(round % len);
        sides
    }

    /// Runs every side of one scenario, in `round`'s order.
    pub async fn run(&self, scenario: &str, round: usize) -> Result<Measured> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let metrics = metrics(scenario);
        let mut by_side: HashMap<&'static str, Vec<f64>> = HashMap::new();
        for side in self.sides(scenario, round) {
            let (tag, name) = match side {
                Side::Courier => ("courier", "bench"),
                Side::SameWork => ("same-work", "rawbench"),
                Side::Pipelined => ("pipelined", "pipebench"),
                Side::Bullmq => ("bullmq", "bullbench"),
            };
            let namespace = format!("{name}-{}-{n}", self.run);
            let figures = self.side(scenario, side, &namespace).await?;
            if figures.len() != metrics.len() {
                bail!("{scenario}: {tag} measured the wrong number of figures");
            }
            by_side.insert(tag, figures);
        }
        let value = |tag: &str, i: usize| by_side.get(tag).map(|v| v[i]);
        Ok(Measured {
            values: metrics
                .iter()
                .enumerate()
                .map(|(i, metric)| Sample {
                    metric: *metric,
                    courier: value("courier", i).unwrap_or(f64::NAN),
                    same_work: value("same-work", i).unwrap_or(f64::NAN),
                    pipelined: value("pipelined", i),
                    bullmq: value("bullmq", i),
                })
                .collect(),
        })
    }

    /// One side of a scenario in its own namespace, deleted afterwards.
    async fn side(&self, scenario: &str, side: Side, namespace: &str) -> Result<Vec<f64>> {
        let salt = self.seq.fetch_add(1, Ordering::Relaxed) as u64;
        let figures = match (scenario, side) {
            ("publish_one", Side::Courier) => self.courier_publish_one(namespace, salt).await,
            ("publish_one", Side::SameWork) => self.raw_publish_one(namespace, salt).await,
            ("publish_batch", Side::Courier) => self.courier_publish_batch(namespace, salt).await,
            ("publish_batch", Side::SameWork) => self.raw_publish_batch(namespace, salt).await,
            ("publish_batch", Side::Pipelined) => self.pipe_publish_batch(namespace, salt).await,
            ("end_to_end", Side::Courier) => self.courier_end_to_end(namespace, salt).await,
            ("end_to_end", Side::SameWork) => self.raw_end_to_end(namespace, salt).await,
            ("end_to_end", Side::Pipelined) => self.pipe_end_to_end(namespace, salt).await,
            ("end_to_end", Side::Bullmq) => self.bullmq_end_to_end(namespace).await,
            ("latency_1k_per_s", Side::Courier) => self.courier_latency(namespace, salt).await,
            ("latency_1k_per_s", Side::SameWork) => self.raw_latency(namespace, salt).await,
            ("latency_1k_per_s", Side::Pipelined) => self.pipe_latency(namespace, salt).await,
            ("memory", Side::Courier) => self.courier_memory(namespace, salt).await,
            ("memory", Side::SameWork) => self.raw_memory(namespace, salt).await,
            _ => bail!("scenario {scenario} has no side {side:?}"),
        };
        self.delete(namespace).await?;
        figures
    }

    /// Every key matching `pattern`.
    async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.raw.clone();
        let (mut cursor, mut found) = (0u64, Vec::new());
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            found.extend(keys);
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// Deletes every key of a namespace.
    async fn delete(&self, namespace: &str) -> Result<()> {
        for keys in self.scan(&format!("{namespace}:*")).await?.chunks(1000) {
            let _: i64 = self.raw_query(redis::cmd("UNLINK").arg(keys)).await?;
        }
        Ok(())
    }

    /// Deletes whatever a failed run may have left behind.
    pub async fn cleanup(&self) -> Result<()> {
        for name in ["bench", "rawbench", "pipebench", "bullbench"] {
            self.delete(&format!("{name}-{}-*", self.run)).await?;
        }
        Ok(())
    }

    async fn client(&self, namespace: &str) -> Result<Client> {
        Ok(Client::connect(&self.url, namespace).await?)
    }

    // publish one at a time

    async fn courier_publish_one(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let client = self.client(namespace).await?;
        let producer = Producer::<InteractionV1>::untyped(&client, &SPEC);
        let messages = interactions(self.count(3000, 500), salt);
        let mut latencies = Vec::with_capacity(messages.len());
        let started = Instant::now();
        for message in &messages {
            let at = Instant::now();
            producer.publish(message).await?;
            latencies.push(at.elapsed().as_secs_f64() * 1e6);
        }
        Ok(publish_figures(started, &mut latencies))
    }

    async fn raw_publish_one(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let raw = RawChannel::new(namespace, &SPEC);
        let mut conn = self.raw.clone();
        let messages = interactions(self.count(3000, 500), salt);
        let mut latencies = Vec::with_capacity(messages.len());
        let started = Instant::now();
        for message in &messages {
            let at = Instant::now();
            let mut pipe = redis::pipe();
            raw.publish(&mut pipe, message)?;
            let _: () = pipe.query_async(&mut conn).await?;
            latencies.push(at.elapsed().as_secs_f64() * 1e6);
        }
        Ok(publish_figures(started, &mut latencies))
    }

    // batched publish

    async fn courier_publish_batch(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let client = self.client(namespace).await?;
        let producer = Producer::<InteractionV1>::untyped(&client, &SPEC);
        let messages = interactions(self.count(20_000, 4000), salt);
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        producer
            .publish_many(&messages, &PublishOptions::default())
            .await?;
        Ok(vec![
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        ])
    }

    async fn raw_publish_batch(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let raw = RawChannel::new(namespace, &SPEC);
        let mut conn = self.raw.clone();
        let messages = interactions(self.count(20_000, 4000), salt);
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        for batch in messages.chunks(pipelined::PUBLISH_BATCH) {
            let mut pipe = redis::pipe();
            for message in batch {
                raw.publish(&mut pipe, message)?;
            }
            let _: () = pipe.query_async(&mut conn).await?;
        }
        Ok(vec![
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        ])
    }

    /// The pipelined queue's publish: 500 messages per round trip where
    /// the others send 100 (its own shape, as issue 15 gives it).
    async fn pipe_publish_batch(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let queue = pipelined_queue(namespace);
        let mut conn = self.raw.clone();
        let messages = interactions(self.count(20_000, 4000), salt);
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        queue.publish_all(&mut conn, &messages).await?;
        Ok(vec![
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        ])
    }

    // end to end: publish N, then drain them with 50 handlers in flight

    async fn courier_end_to_end(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let client = self.client(namespace).await?;
        let producer = Producer::<InteractionV1>::untyped(&client, &SPEC);
        let messages = interactions(self.count(20_000, 4000), salt);
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        producer
            .publish_many(&messages, &PublishOptions::default())
            .await?;
        let (enqueue, enqueue_cpu) = (
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        );
        let handled = Arc::new(AtomicU64::new(0));
        let token = CancellationToken::new();
        let consumer = Consumer::<Interaction>::untyped(&client, &SPEC, "bench").with_options(
            ConsumerOptions {
                concurrency: IN_FLIGHT,
                batch: READ_BATCH,
                read_ahead: READ_BATCH - IN_FLIGHT,
                ..ConsumerOptions::default()
            },
        );
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        let running = {
            let (handled, token) = (handled.clone(), token.clone());
            tokio::spawn(async move {
                consumer
                    .run_until(
                        move |_| {
                            handled.fetch_add(1, Ordering::Relaxed);
                            async { Outcome::Done }
                        },
                        token,
                    )
                    .await
            })
        };
        let stream = client.keys(&SPEC, None).stream();
        self.settled(&stream, "bench", messages.len() as u64, &handled)
            .await?;
        let (drain, drain_cpu) = (
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        );
        token.cancel();
        let report = running.await??;
        if report.done != messages.len() as u64 {
            bail!("courier handled {} of {}", report.done, messages.len());
        }
        Ok(vec![enqueue, drain, enqueue_cpu, drain_cpu])
    }

    async fn raw_end_to_end(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let raw = RawChannel::new(namespace, &SPEC);
        let mut conn = self.raw.clone();
        let messages = interactions(self.count(20_000, 4000), salt);
        raw.create_group(&mut conn, "0").await?;
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        for batch in messages.chunks(pipelined::PUBLISH_BATCH) {
            let mut pipe = redis::pipe();
            for message in batch {
                raw.publish(&mut pipe, message)?;
            }
            let _: () = pipe.query_async(&mut conn).await?;
        }
        let (enqueue, enqueue_cpu) = (
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        );
        let mut reader = self.raw_client.get_multiplexed_async_connection().await?;
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        let mut handled = 0;
        while handled < messages.len() {
            handled += raw.consume_batch(&mut reader, &mut conn, |_| {}).await?;
        }
        Ok(vec![
            enqueue,
            rate(messages.len(), started),
            enqueue_cpu,
            cpu.per_message(messages.len()),
        ])
    }

    async fn pipe_end_to_end(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let queue = pipelined_queue(namespace);
        let mut conn = self.raw.clone();
        let messages = interactions(self.count(20_000, 4000), salt);
        queue.create_group(&mut conn).await?;
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        queue.publish_all(&mut conn, &messages).await?;
        let (enqueue, enqueue_cpu) = (
            rate(messages.len(), started),
            cpu.per_message(messages.len()),
        );
        let readers = pipelined::connect_readers(&self.raw_client).await?;
        let (started, cpu) = (Instant::now(), CpuSpan::start());
        let finished = queue.drain(readers, messages.len(), |_| {}).await?;
        // The readers' last blocked reads (up to 10 ms) count for CPU but
        // not for time: the work was done when the last batch was settled.
        let drain = messages.len() as f64 / (finished - started).as_secs_f64();
        Ok(vec![
            enqueue,
            drain,
            enqueue_cpu,
            cpu.per_message(messages.len()),
        ])
    }

    /// BullMQ on end_to_end's workload, in its own Node process: its
    /// figures and its CPU are the script's.
    async fn bullmq_end_to_end(&self, namespace: &str) -> Result<Vec<f64>> {
        let peers = self.peers.as_ref().context("BullMQ is not installed")?;
        let run = peers
            .end_to_end(
                &self.url,
                namespace,
                self.count(20_000, 4000),
                pipelined::PUBLISH_BATCH,
                IN_FLIGHT,
            )
            .await?;
        Ok(vec![
            run.enqueue_per_s,
            run.drain_per_s,
            run.enqueue_cpu_us_per_msg,
            run.drain_cpu_us_per_msg,
        ])
    }

    /// Waits until `handled` reached `n` and the group has nothing pending.
    async fn settled(&self, stream: &str, group: &str, n: u64, handled: &AtomicU64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if handled.load(Ordering::Relaxed) >= n {
                let pending: (u64, Option<String>, Option<String>, redis::Value) = self
                    .raw_query(redis::cmd("XPENDING").arg(stream).arg(group))
                    .await?;
                if pending.0 == 0 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {n} handled after 120 s",
                    handled.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    // latency under a steady 1,000 messages/s

    fn latency_shape(&self) -> (usize, Duration) {
        let seconds = if self.quick { 2 } else { 10 };
        (1000 * seconds, Duration::from_secs(seconds as u64))
    }

    async fn courier_latency(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let client = self.client(namespace).await?;
        let producer = Producer::<InteractionV1>::untyped(&client, &SPEC);
        let (n, _) = self.latency_shape();
        let messages = interactions(n, salt);
        let clock = Arc::new(Clock::default());
        let token = CancellationToken::new();
        let consumer = Consumer::<Interaction>::untyped(&client, &SPEC, "bench").with_options(
            ConsumerOptions {
                concurrency: IN_FLIGHT,
                batch: READ_BATCH,
                read_ahead: READ_BATCH - IN_FLIGHT,
                ..ConsumerOptions::default()
            },
        );
        let handled = Arc::new(AtomicU64::new(0));
        let running = {
            let (clock, handled, token) = (clock.clone(), handled.clone(), token.clone());
            tokio::spawn(async move {
                consumer
                    .run_until(
                        move |d: courier::Delivery<Interaction>| {
                            let Interaction::V1(m) = &d.message;
                            clock.arrived(m.interaction_id.as_u128());
                            handled.fetch_add(1, Ordering::Relaxed);
                            async { Outcome::Done }
                        },
                        token,
                    )
                    .await
            })
        };
        // The group exists once the consumer joined; wait for it so the
        // first messages are not read before anyone listens.
        let stream = client.keys(&SPEC, None).stream();
        self.group_ready(&stream, "bench").await?;
        let cpu = CpuSpan::start();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for message in &messages {
            tick.tick().await;
            clock.sent(message.interaction_id.as_u128());
            producer.publish(message).await?;
        }
        self.settled(&stream, "bench", n as u64, &handled).await?;
        let cpu = cpu.per_message(n);
        token.cancel();
        running.await??;
        Ok(clock.figures(cpu))
    }

    async fn raw_latency(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let raw = Arc::new(RawChannel::new(namespace, &SPEC));
        let mut conn = self.raw.clone();
        let (n, _) = self.latency_shape();
        let messages = interactions(n, salt);
        let clock = Arc::new(Clock::default());
        raw.create_group(&mut conn, "$").await?;
        let reading = {
            let (raw, clock) = (raw.clone(), clock.clone());
            let mut reader = self.raw_client.get_multiplexed_async_connection().await?;
            let mut writer = conn.clone();
            tokio::spawn(async move {
                let mut handled = 0;
                while handled < n {
                    handled += raw
                        .consume_batch(&mut reader, &mut writer, |m| {
                            clock.arrived(m.interaction_id.as_u128());
                        })
                        .await?;
                }
                anyhow::Ok(())
            })
        };
        let cpu = CpuSpan::start();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for message in &messages {
            tick.tick().await;
            clock.sent(message.interaction_id.as_u128());
            let mut pipe = redis::pipe();
            raw.publish(&mut pipe, message)?;
            let _: () = pipe.query_async(&mut conn).await?;
        }
        tokio::time::timeout(Duration::from_secs(60), reading)
            .await
            .context("the baseline reader did not finish")???;
        Ok(clock.figures(cpu.per_message(n)))
    }

    /// The pipelined queue at 1,000 messages/s: each publish one round
    /// trip (`SET NX` + `XADD`), read by its 50 blocking readers.
    async fn pipe_latency(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let queue = pipelined_queue(namespace);
        let mut conn = self.raw.clone();
        let (n, _) = self.latency_shape();
        let messages = interactions(n, salt);
        let clock = Arc::new(Clock::default());
        queue.create_group(&mut conn).await?;
        let readers = pipelined::connect_readers(&self.raw_client).await?;
        let reading = {
            let (queue, clock) = (queue.clone(), clock.clone());
            tokio::spawn(async move {
                queue
                    .drain(readers, n, move |m| {
                        clock.arrived(m.interaction_id.as_u128());
                    })
                    .await
            })
        };
        let cpu = CpuSpan::start();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for message in &messages {
            tick.tick().await;
            clock.sent(message.interaction_id.as_u128());
            let mut pipe = redis::pipe();
            queue.publish(&mut pipe, message)?;
            let _: () = pipe.query_async(&mut conn).await?;
        }
        tokio::time::timeout(Duration::from_secs(60), reading)
            .await
            .context("the pipelined readers did not finish")???;
        Ok(clock.figures(cpu.per_message(n)))
    }

    async fn group_ready(&self, stream: &str, group: &str) -> Result<()> {
        for _ in 0..500 {
            let groups: redis::streams::StreamInfoGroupsReply = self
                .raw_query(redis::cmd("XINFO").arg("GROUPS").arg(stream))
                .await
                .unwrap_or_default();
            if groups.groups.iter().any(|g| g.name == group) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("the consumer group on {stream} never appeared")
    }

    // memory per message

    async fn courier_memory(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let client = self.client(namespace).await?;
        let producer = Producer::<InteractionV1>::untyped(&client, &SPEC);
        let messages = interactions(self.count(10_000, 2000), salt);
        let stream = client.keys(&SPEC, None).stream();
        let before = self.used_memory().await?;
        for batch in messages.chunks(500) {
            producer
                .publish_many(batch, &PublishOptions::default())
                .await?;
        }
        let mut figures = self.memory_figures(&stream, before, messages.len()).await?;
        let short = Producer::<InteractionV1>::untyped(&client, &SHORT_WINDOW);
        short
            .publish_many(&messages[..100], &PublishOptions::default())
            .await?;
        figures.push(
            self.idem_keys_after_window(namespace, SHORT_WINDOW.dedup_window)
                .await? as f64,
        );
        Ok(figures)
    }

    async fn raw_memory(&self, namespace: &str, salt: u64) -> Result<Vec<f64>> {
        let raw = RawChannel::new(namespace, &SPEC);
        let mut conn = self.raw.clone();
        let messages = interactions(self.count(10_000, 2000), salt);
        let before = self.used_memory().await?;
        for batch in messages.chunks(500) {
            let mut pipe = redis::pipe();
            for message in batch {
                raw.publish(&mut pipe, message)?;
            }
            let _: () = pipe.query_async(&mut conn).await?;
        }
        let mut figures = self
            .memory_figures(&raw.stream, before, messages.len())
            .await?;
        let short = RawChannel::new(namespace, &SHORT_WINDOW);
        let mut pipe = redis::pipe();
        for message in &messages[..100] {
            short.publish(&mut pipe, message)?;
        }
        let _: () = pipe.query_async(&mut conn).await?;
        figures.push(
            self.idem_keys_after_window(namespace, SHORT_WINDOW.dedup_window)
                .await? as f64,
        );
        Ok(figures)
    }

    async fn used_memory(&self) -> Result<f64> {
        let info: String = self.raw_query(redis::cmd("INFO").arg("memory")).await?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .context("INFO memory has no used_memory")
    }

    /// Stream, idempotency-key and total bytes per message, the envelope's
    /// size and the total over it.
    async fn memory_figures(&self, stream: &str, before: f64, n: usize) -> Result<Vec<f64>> {
        let total = (self.used_memory().await? - before) / n as f64;
        let stream_bytes: f64 = self
            .raw_query(
                redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(stream)
                    .arg("SAMPLES")
                    .arg(0),
            )
            .await?;
        let stream_bytes = stream_bytes / n as f64;
        let sample: redis::streams::StreamRangeReply = self
            .raw_query(
                redis::cmd("XRANGE")
                    .arg(stream)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(200),
            )
            .await?;
        let envelope = sample
            .ids
            .iter()
            .filter_map(|e| e.get::<String>("m"))
            .map(|m| m.len() as f64)
            .sum::<f64>()
            / sample.ids.len().max(1) as f64;
        Ok(vec![
            stream_bytes,
            (total - stream_bytes).max(0.0),
            total,
            envelope,
            total / envelope,
        ])
    }

    /// Waits out `window` and counts the namespace's idempotency keys
    /// still alive.
    async fn idem_keys_after_window(&self, namespace: &str, window: Duration) -> Result<usize> {
        tokio::time::sleep(window + Duration::from_millis(200)).await;
        let mut alive = 0;
        for key in self
            .scan(&format!("{namespace}:*short_window*idem:*"))
            .await?
        {
            // EXISTS expires a key whose time has come.
            let exists: bool = self.raw_query(redis::cmd("EXISTS").arg(&key)).await?;
            alive += usize::from(exists);
        }
        Ok(alive)
    }
}

/// Throughput and publish latencies.
fn publish_figures(started: Instant, latencies: &mut [f64]) -> Vec<f64> {
    vec![
        rate(latencies.len(), started),
        crate::quantile(latencies, 0.5),
        crate::quantile(latencies, 0.99),
    ]
}

fn rate(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64()
}

/// Publish and arrival instants by message, for latency.
#[derive(Debug, Default)]
struct Clock {
    sent: Mutex<HashMap<u128, Instant>>,
    latencies: Mutex<Vec<f64>>,
}

impl Clock {
    fn sent(&self, id: u128) {
        self.sent.lock().unwrap().insert(id, Instant::now());
    }

    fn arrived(&self, id: u128) {
        if let Some(at) = self.sent.lock().unwrap().get(&id) {
            self.latencies
                .lock()
                .unwrap()
                .push(at.elapsed().as_secs_f64() * 1e6);
        }
    }

    /// p50, p99, p99.9, then the side's `cpu` per message.
    fn figures(&self, cpu: f64) -> Vec<f64> {
        let mut latencies = self.latencies.lock().unwrap();
        vec![
            crate::quantile(&mut latencies, 0.5),
            crate::quantile(&mut latencies, 0.99),
            crate::quantile(&mut latencies, 0.999),
            cpu,
        ]
    }
}

/// The pipelined queue of `namespace`, with the bench channel's windows.
fn pipelined_queue(namespace: &str) -> PipelinedQueue {
    PipelinedQueue::new(
        namespace,
        SPEC.dedup_window,
        SPEC.ttl + SPEC.visibility_timeout,
    )
}

/// `n` distinct interactions of about 256 bytes of JSON each.
pub fn interactions(n: usize, salt: u64) -> Vec<InteractionV1> {
    let base = |text: &str, i: usize| {
        json!({
            "interaction_id": uuid::Uuid::from_u64_pair(salt, i as u64),
            "customer_id": format!("C{:08}", i % 100_000_000),
            "region": "emea", "medium": "chat", "language": "en",
            "text": text,
            "received_at": "2026-11-28T09:30:00.000Z"
        })
    };
    let padding = 256usize.saturating_sub(base("", 0).to_string().len());
    let text = "My invoice shows a charge I do not recognise, please check it. "
        .repeat(4)
        .chars()
        .take(padding.max(1))
        .collect::<String>();
    (0..n)
        .map(|i| serde_json::from_value(base(&text, i)).expect("a valid interaction"))
        .collect()
}

/// The baseline's view of a channel: its keys and the commands a
/// hand-written producer and consumer send.
struct RawChannel {
    prefix: String,
    stream: String,
    spec: &'static ChannelSpec,
}

/// What the baseline's consumer decodes of an envelope.
#[derive(Deserialize)]
struct RawEnvelope {
    key: String,
    payload: InteractionV1,
}

impl RawChannel {
    fn new(namespace: &str, spec: &'static ChannelSpec) -> RawChannel {
        let prefix = format!("{namespace}:{{{}}}:", spec.name);
        RawChannel {
            stream: format!("{prefix}stream"),
            prefix,
            spec,
        }
    }

    /// Creates the consumer group `bench`, reading from `start`.
    async fn create_group(&self, conn: &mut MultiplexedConnection, start: &str) -> Result<()> {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg("bench")
            .arg(start)
            .arg("MKSTREAM")
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Adds one message's publish to `pipe`: the idempotency key with its
    /// window, the append with the length trim, the stream's expiry.
    fn publish(&self, pipe: &mut redis::Pipeline, message: &InteractionV1) -> Result<()> {
        let now = Utc::now();
        let key = message.interaction_id.to_string();
        let id = uuid::Uuid::new_v4().to_string();
        let envelope = json!({
            "schema": self.spec.schema, "version": 1, "id": id, "key": key,
            "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "expires_at": (now + self.spec.ttl).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "attempt": 1, "producer": "bench", "payload": message
        });
        pipe.cmd("SET")
            .arg(format!("{}idem:{key}", self.prefix))
            .arg(&id)
            .arg("NX")
            .arg("PX")
            .arg(self.spec.dedup_window.as_millis() as u64)
            .ignore()
            .cmd("XADD")
            .arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.spec.retention.max_len.unwrap_or(1_000_000))
            .arg("*")
            .arg("m")
            .arg(serde_json::to_string(&envelope)?)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&self.stream)
            .arg(self.spec.retention.max_age.as_millis() as u64)
            .ignore();
        Ok(())
    }

    /// Reads up to [`READ_BATCH`] entries, as courier does, skips those already done, "handles" the
    /// rest (decoding them), then acknowledges all and marks them done in
    /// one pipeline. Returns how many were read.
    async fn consume_batch(
        &self,
        reader: &mut MultiplexedConnection,
        writer: &mut MultiplexedConnection,
        mut handle: impl FnMut(&InteractionV1),
    ) -> Result<usize> {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("bench")
            .arg("raw")
            .arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .query_async(reader)
            .await?;
        let entries: Vec<_> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        let decoded: Vec<RawEnvelope> = entries
            .iter()
            .map(|e| {
                let text: String = e.get("m").context("an entry without a message")?;
                Ok(serde_json::from_str(&text)?)
            })
            .collect::<Result<_>>()?;
        let mut check = redis::pipe();
        for envelope in &decoded {
            check
                .cmd("EXISTS")
                .arg(format!("{}done:bench:{}", self.prefix, envelope.key));
        }
        let done: Vec<bool> = check.query_async(writer).await?;
        let mut settle = redis::pipe();
        settle.cmd("XACK").arg(&self.stream).arg("bench");
        for entry in &entries {
            settle.arg(&entry.id);
        }
        settle.ignore();
        for (envelope, done) in decoded.iter().zip(done) {
            if !done {
                handle(&envelope.payload);
                settle
                    .cmd("SET")
                    .arg(format!("{}done:bench:{}", self.prefix, envelope.key))
                    .arg(1)
                    .arg("PX")
                    .arg((self.spec.ttl + self.spec.visibility_timeout).as_millis() as u64)
                    .ignore();
            }
        }
        let _: () = settle.query_async(writer).await?;
        Ok(entries.len())
    }
}
