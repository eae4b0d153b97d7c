//! Shared fixtures for the workspace-wide suites in `tests/`: schema paths,
//! an ephemeral Redis per test, sample contact-center messages, and checks
//! made with raw Redis commands (never through the code under test).

pub mod history;
pub mod proxy;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use contact_center_contracts::feedback_event::v1::{FeedbackEventV1Outcome, FeedbackEventV1Source};
use contact_center_contracts::interaction::v1::{InteractionV1Medium, InteractionV1Text};
use contact_center_contracts::{
    ClassifiedTaskV2, CustomerId, FeedbackEventV1, Intent, InteractionV1, Region, Summary,
};
pub use courier_testkit::{RedisCluster, RedisOptions, RedisServer};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `schemas/` folder.
pub fn schemas_dir() -> PathBuf {
    workspace_root().join("schemas")
}

/// A namespace no other test uses.
pub fn namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A client of `server` in a fresh namespace.
pub async fn client(server: &RedisServer) -> courier::Client {
    courier::Client::connect(&server.url(), &namespace())
        .await
        .expect("connect to the test redis-server")
}

/// A raw connection for checks that must not go through courier.
pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A raw cluster connection for checks that must not go through courier.
pub async fn raw_cluster(cluster: &RedisCluster) -> redis::cluster_async::ClusterConnection {
    let urls: Vec<String> = cluster.nodes().iter().map(RedisServer::url).collect();
    redis::cluster::ClusterClient::new(urls)
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

/// The message numbers of the effects on a stream: one per entry, read
/// from each entry's payload `interaction_id` (see [`task_for`]).
pub async fn effect_numbers(conn: &mut impl redis::aio::ConnectionLike, stream: &str) -> Vec<u64> {
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("m"))
        .map(|m| {
            let envelope: serde_json::Value = serde_json::from_str(&m).unwrap();
            envelope["payload"]["interaction_id"].as_str().unwrap()[24..]
                .parse()
                .unwrap()
        })
        .collect()
}

/// Reads the effects on `stream` every 50 ms until `enough` holds for
/// them or `limit` passes; returns the last read.
pub async fn wait_for_effects(
    conn: &mut impl redis::aio::ConnectionLike,
    stream: &str,
    limit: std::time::Duration,
    enough: impl Fn(&[u64]) -> bool,
) -> Vec<u64> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let found = effect_numbers(conn, stream).await;
        if enough(&found) || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A UUID made from a number, so tests can name messages.
pub fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// The same UUID, typed.
fn id(n: u64) -> uuid::Uuid {
    uuid::Uuid::parse_str(&uuid(n)).expect("a UUID")
}

/// Interaction number `n`.
pub fn interaction(n: u64) -> InteractionV1 {
    InteractionV1 {
        interaction_id: id(n),
        customer_id: CustomerId::new(format!("C{:07}", n % 10_000_000)).unwrap(),
        region: [Region::Amer, Region::Emea, Region::Apac][(n % 3) as usize],
        medium: InteractionV1Medium::Chat,
        language: None,
        text: InteractionV1Text::new(format!("Contact number {n}")).unwrap(),
        received_at: "2026-11-28T09:00:00Z".parse().unwrap(),
    }
}

/// Feedback event number `n`, for broadcasts.
pub fn feedback(n: u64) -> FeedbackEventV1 {
    FeedbackEventV1 {
        event_id: id(n),
        task_id: id(1000 + n),
        predicted_intent: Intent::Billing,
        actual_intent: None,
        outcome: FeedbackEventV1Outcome::Accepted,
        source: FeedbackEventV1Source::Automated,
    }
}

/// The task a classifier derives from interaction `n`: the same input
/// always gives the same task and idempotency key.
pub fn task_for(n: u64) -> ClassifiedTaskV2 {
    ClassifiedTaskV2 {
        task_id: id(1_000_000 + n),
        interaction_id: id(n),
        customer_id: CustomerId::new(format!("C{:07}", n % 10_000_000)).unwrap(),
        region: Region::Emea,
        intent: Intent::Billing,
        confidence: 0.9,
        summary: Summary::new(format!("Task for contact {n}")).unwrap(),
        sentiment: None,
    }
}

/// Every key of `namespace` with no TTL: must be empty, since every key the
/// runtime writes has a TTL.
pub async fn keys_without_ttl(server: &RedisServer, namespace: &str) -> Vec<String> {
    let mut conn = raw(server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the test wrote no keys under {namespace}");
    let mut persistent = Vec::new();
    for key in keys {
        // -1: no TTL; -2: the key expired since it was listed, which is fine.
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if ttl == -1 {
            persistent.push(key);
        }
    }
    persistent
}

/// The README's Rust examples, compiled by `cargo test` as doctests so the
/// documentation cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeExamples;

// ---- Running consumers in tests -------------------------------------------

use std::future::{Future, Ready};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contact_center_contracts::Interaction;
use courier::{
    CancellationToken, ChannelSpec, Client, Consumer, ConsumerOptions, ConsumerReport,
    ConsumerStats, Delivery, Error, Outcome, Readable, Transport,
};
use tokio::task::JoinHandle;

/// Consumer options with short intervals, so tests see effects quickly.
pub fn quick() -> ConsumerOptions {
    ConsumerOptions {
        block: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        claim_interval: Some(Duration::from_millis(100)),
        grace: Duration::from_secs(2),
        ..ConsumerOptions::default()
    }
}

/// A consumer of `spec` in the classifier group, with [`quick`] options.
pub fn classifier(client: &Client, spec: &'static ChannelSpec) -> Consumer<Interaction> {
    Consumer::untyped(client, spec, "classifier").with_options(quick())
}

/// A handler that counts its calls in `calls` and settles every message.
pub fn counting<M: Readable>(
    calls: &Arc<AtomicU32>,
) -> impl Fn(Delivery<M>) -> Ready<Outcome> + Send + Sync + 'static {
    let calls = calls.clone();
    move |_delivery| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::future::ready(Outcome::Done)
    }
}

/// Checks `done` every 10 ms until it holds (true) or `limit` passes (false).
pub async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A consumer running in the background until stopped.
#[derive(Debug)]
pub struct Running {
    /// Its live counters.
    pub stats: Arc<ConsumerStats>,
    token: CancellationToken,
    task: JoinHandle<Result<ConsumerReport, Error>>,
}

impl Running {
    /// Spawns `consumer` with `handler`.
    pub fn start<M: Readable, F, Fut>(consumer: Consumer<M>, handler: F) -> Self
    where
        F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let stats = consumer.stats();
        let token = CancellationToken::new();
        let task = tokio::spawn({
            let token = token.clone();
            async move { consumer.run_until(handler, token).await }
        });
        Self { stats, token, task }
    }

    /// Polls the counters every 10 ms until `done` holds; false after `limit`.
    pub async fn wait(&self, limit: Duration, done: impl Fn(&ConsumerReport) -> bool) -> bool {
        eventually(limit, || done(&self.stats.snapshot())).await
    }

    /// Shuts the consumer down gracefully and returns its report.
    pub async fn stop(self) -> ConsumerReport {
        self.token.cancel();
        self.task.await.unwrap().unwrap()
    }

    /// Kills the consumer as a crash would: no settlement, no cleanup.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Runs `consumer` with `handler` until `done` says so (checked every
/// 10 ms) or `limit` passes, then shuts it down and returns its report.
pub async fn run_until<M: Readable, F, Fut>(
    consumer: Consumer<M>,
    handler: F,
    limit: Duration,
    done: impl Fn(&ConsumerReport) -> bool,
) -> ConsumerReport
where
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let running = Running::start(consumer, handler);
    running.wait(limit, done).await;
    running.stop().await
}

/// Writes a raw message onto `spec`'s queue, as a foreign or broken
/// producer would, whatever the transport.
pub async fn inject(
    server: &RedisServer,
    client: &Client,
    spec: &ChannelSpec,
    text: impl redis::ToRedisArgs,
) {
    let inbox = client.keys(spec, None).inbox(spec.transport);
    let mut conn = raw(server).await;
    let cmd = match spec.transport {
        Transport::Stream => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&inbox).arg("*").arg("m").arg(text);
            cmd
        }
        Transport::List => {
            let mut cmd = redis::cmd("LPUSH");
            cmd.arg(&inbox).arg(text);
            cmd
        }
        Transport::Priority => {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&inbox).arg(9e13).arg(text);
            cmd
        }
        Transport::Pubsub => {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(&inbox).arg(text);
            cmd
        }
    };
    let _: redis::Value = cmd.query_async(&mut conn).await.unwrap();
}

/// How many messages sit on `spec`'s queue: stream entries (handled or
/// not), or list and priority members waiting.
pub async fn depth(server: &RedisServer, client: &Client, spec: &ChannelSpec) -> u64 {
    let inbox = client.keys(spec, None).inbox(spec.transport);
    let command = match spec.transport {
        Transport::Stream => "XLEN",
        Transport::List => "LLEN",
        _ => "ZCARD",
    };
    redis::cmd(command)
        .arg(inbox)
        .query_async(&mut raw(server).await)
        .await
        .unwrap()
}

/// The only version of an interaction.
pub fn first_version(message: &Interaction) -> &InteractionV1 {
    match message {
        Interaction::V1(v1) => v1,
    }
}

/// The channel the fault worker (`courier-fault-worker`) consumes: a
/// stream with a one-second visibility timeout.
pub static WORK: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("fault_work"),
    visibility_timeout: Duration::from_secs(1),
    partitions: None,
    max_depth: None,
    rate_limit: None,
    ..contact_center_contracts::channels::intake::SPEC
};

/// Where the fault worker's handler puts its effect: one classified task
/// per contact, keyed by the contact, so a repeated effect is a duplicate.
pub static EFFECTS: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("fault_effects"),
    transport: Transport::Stream,
    dependency: None,
    ..contact_center_contracts::channels::billing::SPEC
};
