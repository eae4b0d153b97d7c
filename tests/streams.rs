//! The `stream` transport against real `redis-server` processes: every
//! promise of the runtime, one test each.

use std::collections::HashMap;
use std::future::{Future, Ready};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use contact_center_contracts::{ClassifiedTask, Interaction, InteractionV1};
use courier::{
    Backoff, Backpressure, CancellationToken, ChannelSpec, Client, Consumer, ConsumerOptions,
    ConsumerReport, ConsumerStats, DeadReason, Delivery, DlqFilter, Error, Outcome, Producer,
    PublishOptions, Readable,
};
use courier_suites::{client, interaction, keys_without_ttl, raw, task_for, RedisServer};
use serde_json::json;
use tokio::task::JoinHandle;

/// The intake channel with short timeouts, so failures show within a test.
static INTAKE: ChannelSpec = ChannelSpec {
    name: "intake_test",
    visibility_timeout: Duration::from_millis(600),
    max_attempts: 3,
    backoff: Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        multiplier: 3.0,
    },
    partitions: None,
    max_depth: None,
    ..channels::intake::SPEC
};

/// Where the intake handler's effect goes: one classified task per contact.
static TASKS: ChannelSpec = ChannelSpec {
    name: "tasks_test",
    ..channels::billing::SPEC
};

fn quick() -> ConsumerOptions {
    ConsumerOptions {
        block: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        claim_interval: Some(Duration::from_millis(100)),
        grace: Duration::from_secs(2),
        ..ConsumerOptions::default()
    }
}

/// A consumer of `spec` in the classifier group, with the short timeouts of
/// [`quick`].
fn classifier(client: &Client, spec: &'static ChannelSpec) -> Consumer<Interaction> {
    Consumer::new(client, spec, "classifier").with_options(quick())
}

/// A handler that counts its calls in `calls` and settles every message.
fn counting<M: Readable>(
    calls: &Arc<AtomicU32>,
) -> impl Fn(Delivery<M>) -> Ready<Outcome> + Send + Sync + 'static {
    let calls = calls.clone();
    move |_delivery| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Outcome::Done)
    }
}

/// Checks `done` every 10 ms until it holds (true) or `limit` passes (false).
async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
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
struct Running {
    stats: Arc<ConsumerStats>,
    token: CancellationToken,
    task: JoinHandle<Result<ConsumerReport, Error>>,
}

impl Running {
    /// Spawns `consumer` with `handler`.
    fn start<M: Readable, F, Fut>(consumer: Consumer<M>, handler: F) -> Self
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
    async fn wait(&self, limit: Duration, done: impl Fn(&ConsumerReport) -> bool) -> bool {
        eventually(limit, || done(&self.stats.snapshot())).await
    }

    /// Shuts the consumer down gracefully and returns its report.
    async fn stop(self) -> ConsumerReport {
        self.token.cancel();
        self.task.await.unwrap().unwrap()
    }
}

/// Runs `consumer` with `handler` until `done` says so (checked every
/// 10 ms) or `limit` passes, then shuts it down and returns its report.
async fn run_until<M: Readable, F, Fut>(
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

/// Writes a raw stream entry, as a foreign or broken producer would.
async fn xadd(server: &RedisServer, stream: &str, envelope: &str) {
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("m")
        .arg(envelope)
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
}

/// The number of entries in `spec`'s stream.
async fn xlen(server: &RedisServer, client: &Client, spec: &ChannelSpec) -> u64 {
    redis::cmd("XLEN")
        .arg(client.keys(spec, None).stream())
        .query_async(&mut raw(server).await)
        .await
        .unwrap()
}

fn first_version(message: &Interaction) -> &InteractionV1 {
    match message {
        Interaction::V1(v1) => v1,
    }
}

#[tokio::test]
async fn a_second_publish_with_the_same_key_is_a_duplicate() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    let first = producer.publish(&interaction(1)).await.unwrap();
    let second = producer.publish(&interaction(1)).await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.id, first.id);
    // Batches dedupe too, within the batch and against earlier publishes.
    let batch = producer
        .publish_many(
            &[interaction(1), interaction(2), interaction(2)],
            &PublishOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        batch.iter().map(|p| p.duplicate).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(batch[0].id, first.id);
    assert_eq!(batch[2].id, batch[1].id);
    assert_eq!(xlen(&server, &client, &INTAKE).await, 2);
}

#[tokio::test]
async fn a_consumer_killed_before_acknowledging_is_taken_over_and_the_effect_happens_once() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    // Message 1: the first consumer dies before doing anything.
    // Message 2: it dies after its effect (publishing the derived task) but
    // before its acknowledgement.
    producer.publish(&interaction(1)).await.unwrap();
    producer.publish(&interaction(2)).await.unwrap();

    let calls = Arc::new(AtomicU32::new(0));
    let tasks = Producer::new(&client, &TASKS);
    let reached = Arc::new(AtomicU32::new(0));
    let doomed = Running::start(classifier(&client, &INTAKE), {
        let (tasks, calls, reached) = (tasks.clone(), calls.clone(), reached.clone());
        move |delivery: Delivery<Interaction>| {
            let (tasks, calls, reached) = (tasks.clone(), calls.clone(), reached.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let n = if delivery.key().ends_with('2') { 2 } else { 1 };
                if n == 2 {
                    tasks.publish(&task_for(2)).await.unwrap();
                }
                reached.fetch_add(1, Ordering::SeqCst);
                // Hang until the process "dies".
                std::future::pending::<()>().await;
                Outcome::Done
            }
        }
    });
    let both_reached = || reached.load(Ordering::SeqCst) >= 2;
    assert!(
        eventually(Duration::from_secs(5), both_reached).await,
        "first consumer never ran"
    );
    // Aborting instead of cancelling skips the graceful shutdown, as a
    // crash would.
    doomed.task.abort();
    let _ = doomed.task.await;

    let report = run_until(
        classifier(&client, &INTAKE),
        {
            let (tasks, calls) = (tasks.clone(), calls.clone());
            move |delivery: Delivery<Interaction>| {
                let (tasks, calls) = (tasks.clone(), calls.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let n = if delivery.key().ends_with('2') { 2 } else { 1 };
                    let published = tasks.publish(&task_for(n)).await.unwrap();
                    assert_eq!(published.duplicate, n == 2, "contact {n}");
                    Outcome::Done
                }
            }
        },
        Duration::from_secs(10),
        |r| r.done >= 2,
    )
    .await;
    assert_eq!(report.claimed, 2, "{report:?}");
    assert_eq!(report.done, 2, "{report:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        xlen(&server, &client, &TASKS).await,
        2,
        "one derived task per contact, though contact 2 was handled twice"
    );
}

#[tokio::test]
async fn failing_twice_then_succeeding_retries_with_growing_jittered_bounded_delays() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    const MESSAGES: u64 = 20;
    let batch: Vec<_> = (0..MESSAGES).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();

    type Attempts = HashMap<String, Vec<(u32, Instant)>>;
    let seen: Arc<Mutex<Attempts>> = Arc::default();
    let report = run_until(
        classifier(&client, &INTAKE),
        {
            let seen = seen.clone();
            move |delivery: Delivery<Interaction>| {
                let seen = seen.clone();
                async move {
                    let attempt = delivery.attempt();
                    seen.lock()
                        .unwrap()
                        .entry(delivery.key().to_string())
                        .or_default()
                        .push((attempt, Instant::now()));
                    if attempt < 3 {
                        Outcome::retry(format!("downstream busy on attempt {attempt}"))
                    } else {
                        Outcome::Done
                    }
                }
            }
        },
        Duration::from_secs(15),
        |r| r.done >= MESSAGES,
    )
    .await;
    assert_eq!(report.done, MESSAGES, "{report:?}");
    assert_eq!(report.retried, 2 * MESSAGES);
    assert_eq!(report.dead, 0);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, MESSAGES);
    let (mut first_gaps, mut second_gaps) = (Vec::new(), Vec::new());
    for attempts in seen.values() {
        let numbers: Vec<u32> = attempts.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            numbers,
            [1, 2, 3],
            "each message handled three times, once successfully"
        );
        first_gaps.push(attempts[1].1 - attempts[0].1);
        second_gaps.push(attempts[2].1 - attempts[1].1);
    }
    // Bounded: 200 ms then 600 ms, plus the mover's polling and scheduling.
    let slack = Duration::from_millis(250);
    assert!(
        first_gaps
            .iter()
            .all(|g| *g <= Duration::from_millis(200) + slack),
        "{first_gaps:?}"
    );
    assert!(
        second_gaps
            .iter()
            .all(|g| *g <= Duration::from_millis(600) + slack),
        "{second_gaps:?}"
    );
    // Jittered: delays spread over the window instead of repeating.
    let spread = |gaps: &[Duration]| {
        gaps.iter()
            .max()
            .unwrap()
            .saturating_sub(*gaps.iter().min().unwrap())
    };
    assert!(
        spread(&second_gaps) > Duration::from_millis(100),
        "{second_gaps:?}"
    );
    // Growing: the second window is three times the first.
    let mean = |gaps: &[Duration]| gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean(&second_gaps) > mean(&first_gaps),
        "{first_gaps:?} vs {second_gaps:?}"
    );
}

#[tokio::test]
async fn always_failing_goes_to_the_dlq_and_replays_after_a_fix() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    let published = producer.publish(&interaction(7)).await.unwrap();

    let report = run_until(
        classifier(&client, &INTAKE),
        |_delivery: Delivery<Interaction>| async { Outcome::retry("classifier model unavailable") },
        Duration::from_secs(10),
        |r| r.dead >= 1,
    )
    .await;
    assert_eq!((report.retried, report.dead), (2, 1), "{report:?}");

    let dlq = client.dlq(&INTAKE);
    let letters = dlq.list(&DlqFilter::default()).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.reason, DeadReason::MaxAttempts);
    assert_eq!(letter.error, "classifier model unavailable");
    assert_eq!(
        letter.history.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(letter.history[..2].iter().all(|a| a.retry_in_ms.is_some()));
    assert_eq!(letter.envelope.as_ref().unwrap()["id"], json!(published.id));
    assert_eq!(letter.version(), Some(1));
    let filtered = DlqFilter {
        reason: Some(DeadReason::Expired),
        ..DlqFilter::default()
    };
    assert!(dlq.list(&filtered).await.unwrap().is_empty());

    let new_id = dlq.replay(&letter.id).await.unwrap();
    assert_ne!(new_id, published.id);
    assert_eq!(dlq.len().await.unwrap(), 0);
    assert!(matches!(
        dlq.replay(&letter.id).await,
        Err(Error::DeadLetterNotFound { .. })
    ));

    let handled = Arc::new(Mutex::new(Vec::new()));
    let report = run_until(
        classifier(&client, &INTAKE),
        {
            let handled = handled.clone();
            move |delivery: Delivery<Interaction>| {
                let handled = handled.clone();
                async move {
                    handled.lock().unwrap().push((
                        delivery.id().to_string(),
                        delivery.attempt(),
                        first_version(&delivery.message).text.to_string(),
                    ));
                    Outcome::Done
                }
            }
        },
        Duration::from_secs(5),
        |r| r.done >= 1,
    )
    .await;
    assert_eq!(report.done, 1);
    assert_eq!(
        *handled.lock().unwrap(),
        [(new_id, 1, "Contact number 7".to_string())]
    );
    assert_eq!(
        keys_without_ttl(&server, client.namespace()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn bad_messages_are_dead_lettered_with_their_reason_and_the_consumer_keeps_going() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    let stream = client.keys(&INTAKE, None).stream();

    // Expired: a 1 ms lifetime.
    let short = PublishOptions {
        ttl: Some(Duration::from_millis(1)),
        ..PublishOptions::default()
    };
    producer
        .publish_with(&interaction(1), &short)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let good = serde_json::to_value(interaction(2)).unwrap();
    let envelope = |schema: &str, version: u32, payload: serde_json::Value| {
        json!({
            "schema": schema, "version": version, "id": courier_suites::uuid(99),
            "key": format!("raw-{schema}-{version}"), "created_at": "2026-11-28T09:00:00Z",
            "expires_at": "2999-01-01T00:00:00Z", "attempt": 1, "producer": "foreign",
            "payload": payload
        })
        .to_string()
    };
    xadd(
        &server,
        &stream,
        &envelope("contact_center.unknown", 1, good.clone()),
    )
    .await;
    xadd(
        &server,
        &stream,
        &envelope("contact_center.interaction", 9, good.clone()),
    )
    .await;
    xadd(
        &server,
        &stream,
        "{\"schema\": \"contact_center.interaction\", \"vers",
    )
    .await;
    let mut too_long = good.clone();
    too_long["text"] = json!("x".repeat(4001));
    xadd(
        &server,
        &stream,
        &envelope("contact_center.interaction", 1, too_long),
    )
    .await;
    // And a good message after all of them.
    producer.publish(&interaction(3)).await.unwrap();

    let handled = Arc::new(AtomicU32::new(0));
    let report = run_until(
        classifier(&client, &INTAKE),
        counting(&handled),
        Duration::from_secs(5),
        |r| r.dead >= 5 && r.done >= 1,
    )
    .await;
    assert_eq!(
        (report.dead, report.done, report.expired),
        (5, 1, 1),
        "{report:?}"
    );
    assert_eq!(handled.load(Ordering::SeqCst), 1);

    let letters = client
        .dlq(&INTAKE)
        .list(&DlqFilter::default())
        .await
        .unwrap();
    let reasons: Vec<(DeadReason, &str)> = letters
        .iter()
        .map(|l| (l.reason, l.error.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5);
    assert_eq!(reasons[0].0, DeadReason::Expired);
    assert_eq!(
        reasons[1],
        (
            DeadReason::SchemaMismatch,
            "message of schema \"contact_center.unknown\" on a channel of schema \"contact_center.interaction\""
        )
    );
    assert_eq!(
        reasons[2],
        (
            DeadReason::VersionUnsupported,
            "contact_center.interaction v9 is not readable here; this consumer reads versions [1]"
        )
    );
    assert_eq!(reasons[3].0, DeadReason::InvalidPayload);
    assert!(reasons[3].1.contains("not JSON"), "{}", reasons[3].1);
    assert!(letters[3].raw.is_some() && letters[3].envelope.is_none());
    assert_eq!(
        reasons[4],
        (
            DeadReason::InvalidPayload,
            "contact_center.interaction v1 payload is invalid: /text: string of 4001 characters is longer than maxLength 4000"
        )
    );
}

#[tokio::test]
async fn ten_thousand_messages_with_random_failures_are_each_handled_once_or_dead_lettered() {
    static BULK: ChannelSpec = ChannelSpec {
        name: "bulk_test",
        max_attempts: 4,
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(50),
            multiplier: 2.0,
        },
        ..INTAKE
    };
    const MESSAGES: u64 = 10_000;
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &BULK);
    let all: Vec<_> = (0..MESSAGES).map(interaction).collect();
    for chunk in all.chunks(500) {
        producer
            .publish_many(chunk, &PublishOptions::default())
            .await
            .unwrap();
    }

    let effects: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let consumer = classifier(&client, &BULK).with_options(ConsumerOptions {
        concurrency: 8,
        ..quick()
    });
    let report = run_until(
        consumer,
        {
            let effects = effects.clone();
            move |delivery: Delivery<Interaction>| {
                let effects = effects.clone();
                async move {
                    if fastrand::u8(..10) == 0 {
                        return Outcome::retry("random failure");
                    }
                    *effects
                        .lock()
                        .unwrap()
                        .entry(delivery.key().to_string())
                        .or_default() += 1;
                    Outcome::Done
                }
            }
        },
        Duration::from_secs(120),
        |r| r.done + r.dead >= MESSAGES,
    )
    .await;
    let effects = effects.lock().unwrap().clone();
    let twice: Vec<_> = effects.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    assert_eq!(effects.len() as u64, report.done);
    let dead = client.dlq(&BULK).len().await.unwrap();
    assert_eq!(dead, report.dead);
    assert_eq!(
        report.done + dead,
        MESSAGES,
        "lost {}: {report:?}",
        MESSAGES - report.done - dead
    );
    println!("10,000 messages: {report:?}");
    assert_eq!(
        keys_without_ttl(&server, client.namespace()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_late_acknowledgement_after_a_takeover_is_refused() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    Producer::new(&client, &INTAKE)
        .publish(&interaction(5))
        .await
        .unwrap();

    let slow = Running::start(
        classifier(&client, &INTAKE),
        |_d: Delivery<Interaction>| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Outcome::Done
        },
    );
    // The second consumer starts only once the first holds the message, so
    // it can get it only by reclaiming it.
    assert!(
        slow.wait(Duration::from_secs(5), |r| r.delivered == 1)
            .await
    );
    let report = run_until(
        classifier(&client, &INTAKE),
        |_d: Delivery<Interaction>| async { Outcome::Done },
        Duration::from_secs(5),
        |r| r.done >= 1,
    )
    .await;
    assert_eq!((report.claimed, report.done), (1, 1), "{report:?}");
    assert!(slow.wait(Duration::from_secs(5), |r| r.stale > 0).await);
    let slow_report = slow.stop().await;
    assert_eq!(
        (slow_report.done, slow_report.stale),
        (0, 1),
        "{slow_report:?}"
    );
}

#[tokio::test]
async fn a_full_channel_refuses_or_waits() {
    static SMALL: ChannelSpec = ChannelSpec {
        name: "small_test",
        max_depth: Some(3),
        ..INTAKE
    };
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &SMALL);
    for n in 0..3 {
        producer.publish(&interaction(n)).await.unwrap();
    }
    let err = producer.publish(&interaction(3)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChannelFull {
                depth: 3,
                max_depth: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), courier::ErrorKind::Backpressure);
    // A duplicate is still answered while full.
    assert!(producer.publish(&interaction(0)).await.unwrap().duplicate);

    let running = Running::start(
        classifier(&client, &SMALL),
        |_d: Delivery<Interaction>| async { Outcome::Done },
    );
    let waiting = PublishOptions {
        backpressure: Backpressure::Wait(Duration::from_secs(5)),
        ..PublishOptions::default()
    };
    let published = producer
        .publish_with(&interaction(3), &waiting)
        .await
        .unwrap();
    assert!(!published.duplicate);
    running.stop().await;
}

#[tokio::test]
async fn work_survives_a_redis_restart() {
    let mut server =
        RedisServer::start_with(courier_suites::RedisOptions::default().with_aof("always"))
            .unwrap();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    let batch: Vec<_> = (0..50).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();

    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let running = Running::start(classifier(&client, &INTAKE), {
        let seen = seen.clone();
        move |d: Delivery<Interaction>| {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap().entry(d.key().to_string()).or_default() += 1;
                Outcome::Done
            }
        }
    });
    let started = Instant::now();
    assert!(
        running
            .wait(Duration::from_secs(10), |r| r.done >= 50)
            .await
    );
    server.kill();
    server.start_again().unwrap();
    let batch: Vec<_> = (50..100).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    // The 30 seconds count from the start, as the restart is part of the run.
    let left = Duration::from_secs(30).saturating_sub(started.elapsed());
    assert!(
        running.wait(left, |r| r.done >= 100).await,
        "{:?}",
        running.stats.snapshot()
    );
    running.stop().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 100);
    assert!(seen.values().all(|n| *n == 1));
}

#[tokio::test]
async fn shutdown_finishes_work_in_flight() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    Producer::new(&client, &INTAKE)
        .publish(&interaction(1))
        .await
        .unwrap();
    let running = Running::start(
        classifier(&client, &INTAKE),
        |_d: Delivery<Interaction>| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Outcome::Done
        },
    );
    // The 10 ms polling is well within the handler's 300 ms, so the stop
    // below lands while the message is in flight.
    assert!(
        running
            .wait(Duration::from_secs(5), |r| r.delivered > 0)
            .await,
        "{:?}",
        running.stats.snapshot()
    );
    let report = running.stop().await;
    assert_eq!(
        report.done, 1,
        "the handler in flight finished before shutdown: {report:?}"
    );
}

#[tokio::test]
async fn a_consumer_reads_every_released_version() {
    static TASKS_V: ChannelSpec = ChannelSpec {
        name: "versions_test",
        ..channels::billing::SPEC
    };
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let v2 = Producer::new(&client, &TASKS_V);
    v2.publish(&task_for(1)).await.unwrap();
    let v1: contact_center_contracts::ClassifiedTaskV1 = serde_json::from_value({
        let mut task = serde_json::to_value(task_for(2)).unwrap();
        task.as_object_mut().unwrap().remove("sentiment");
        task
    })
    .unwrap();
    Producer::new(&client, &TASKS_V).publish(&v1).await.unwrap();

    let versions = Arc::new(Mutex::new(Vec::new()));
    let consumer =
        Consumer::<ClassifiedTask>::new(&client, &TASKS_V, "specialists").with_options(quick());
    run_until(
        consumer,
        {
            let versions = versions.clone();
            move |d: Delivery<ClassifiedTask>| {
                let versions = versions.clone();
                async move {
                    versions.lock().unwrap().push(match d.message {
                        ClassifiedTask::V1(_) => 1,
                        ClassifiedTask::V2(_) => 2,
                    });
                    Outcome::Done
                }
            }
        },
        Duration::from_secs(5),
        |r| r.done >= 2,
    )
    .await;
    assert_eq!(*versions.lock().unwrap(), [2, 1]);
}

#[tokio::test]
async fn a_message_whose_key_is_done_is_acknowledged_and_skipped() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    producer.publish(&interaction(1)).await.unwrap();
    // The same envelope appended again once the first is done, as a
    // producer outside courier (or one past the dedup window) would.
    let stream = client.keys(&INTAKE, None).stream();
    let mut conn = raw(&server).await;
    let first: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let copy = first[0].1[0].1.clone();
    let handled = Arc::new(AtomicU32::new(0));
    let running = Running::start(classifier(&client, &INTAKE), counting(&handled));
    let started = Instant::now();
    assert!(running.wait(Duration::from_secs(5), |r| r.done >= 1).await);
    xadd(&server, &stream, &copy).await;
    // Both waits share one 5 second budget.
    let left = Duration::from_secs(5).saturating_sub(started.elapsed());
    assert!(
        running.wait(left, |r| r.duplicates >= 1).await,
        "{:?}",
        running.stats.snapshot()
    );
    let report = running.stop().await;
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    assert_eq!((report.done, report.duplicates), (1, 1), "{report:?}");
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("classifier")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.count(), 0, "the skipped duplicate was acknowledged");
}

#[tokio::test]
async fn a_message_delivered_too_often_is_dead_lettered_as_poison() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    Producer::new(&client, &INTAKE)
        .publish(&interaction(1))
        .await
        .unwrap();
    let stream = client.keys(&INTAKE, None).stream();
    let mut conn = raw(&server).await;
    // Consumers that crashed on it again and again: delivered 3 times.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("classifier")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("classifier")
        .arg("crashed")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let id = read.keys[0].ids[0].id.clone();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&stream)
        .arg("classifier")
        .arg("crashed")
        .arg(0)
        .arg(&id)
        .arg("IDLE")
        .arg(10_000)
        .arg("RETRYCOUNT")
        .arg(3)
        .query_async(&mut conn)
        .await
        .unwrap();

    let handled = Arc::new(AtomicU32::new(0));
    let report = run_until(
        classifier(&client, &INTAKE),
        counting(&handled),
        Duration::from_secs(5),
        |r| r.dead >= 1,
    )
    .await;
    assert_eq!((report.claimed, report.dead), (1, 1), "{report:?}");
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    let letters = client
        .dlq(&INTAKE)
        .list(&DlqFilter::default())
        .await
        .unwrap();
    assert_eq!(letters[0].reason, DeadReason::Poison);
    assert_eq!(
        letters[0].error,
        "delivered 4 times without being settled (max attempts 3)"
    );
}

#[tokio::test]
async fn dead_letters_are_replayed_and_purged_by_filter() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::new(&client, &INTAKE);
    let batch: Vec<_> = (0..6).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    run_until(
        classifier(&client, &INTAKE),
        |d: Delivery<Interaction>| async move {
            let text = first_version(&d.message).text.to_string();
            if text.ends_with(['0', '2', '4']) {
                Outcome::fatal(format!("cannot classify: {text}"))
            } else {
                Outcome::fatal("downstream rejected")
            }
        },
        Duration::from_secs(5),
        |r| r.dead >= 6,
    )
    .await;
    let dlq = client.dlq(&INTAKE);
    assert_eq!(dlq.len().await.unwrap(), 6);
    let by_text = DlqFilter {
        text: Some("cannot classify".into()),
        reason: Some(DeadReason::Fatal),
        ..DlqFilter::default()
    };
    assert_eq!(dlq.list(&by_text).await.unwrap().len(), 3);
    assert_eq!(dlq.purge_where(&by_text).await.unwrap(), 3);
    let one = DlqFilter {
        limit: Some(1),
        ..DlqFilter::default()
    };
    assert_eq!(dlq.replay_where(&one).await.unwrap(), 1);
    assert_eq!(dlq.replay_where(&DlqFilter::default()).await.unwrap(), 2);
    assert!(dlq.is_empty().await.unwrap());
    assert_eq!(
        xlen(&server, &client, &INTAKE).await,
        9,
        "6 published + 3 replayed"
    );
    assert!(matches!(
        dlq.purge("1-0").await,
        Err(Error::DeadLetterNotFound { .. })
    ));
}

#[tokio::test]
async fn acl_users_connect_with_their_credentials() {
    let server = RedisServer::must_start();
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("telephony")
        .arg("on")
        .arg(">s3cret")
        .arg("~*")
        .arg("+@all")
        .query_async(&mut conn)
        .await
        .unwrap();
    let url = format!("redis://telephony:s3cret@127.0.0.1:{}/", server.port());
    let client = courier::Client::connect(&url, &courier_suites::namespace())
        .await
        .unwrap();
    assert!(
        !Producer::new(&client, &INTAKE)
            .publish(&interaction(1))
            .await
            .unwrap()
            .duplicate
    );

    let wrong = format!("redis://telephony:nope@127.0.0.1:{}/", server.port());
    let err = courier::Client::connect(&wrong, "t").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot connect to redis://telephony:***@127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test]
async fn tls_urls_work() {
    let server =
        RedisServer::start_with(courier_suites::RedisOptions::default().with_tls()).unwrap();
    let url = server.tls_url().unwrap();
    let options = courier::ConnectOptions {
        tls_ca_file: Some(courier_testkit::tls_ca_file()),
    };
    let client = courier::Client::connect_with(&url, &courier_suites::namespace(), &options)
        .await
        .unwrap();
    let producer = Producer::new(&client, &INTAKE);
    producer.publish(&interaction(1)).await.unwrap();
    let report = run_until(
        classifier(&client, &INTAKE),
        |_d: Delivery<Interaction>| async { Outcome::Done },
        Duration::from_secs(5),
        |r| r.done >= 1,
    )
    .await;
    assert_eq!(report.done, 1, "published and consumed over TLS");

    // Without the CA, the server's certificate is refused.
    let err = courier::Client::connect(&url, "t").await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let missing = courier::ConnectOptions {
        tls_ca_file: Some("/nonexistent/ca.crt".into()),
    };
    let err = courier::Client::connect_with(&url, "t", &missing)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the TLS CA file /nonexistent/ca.crt"),
        "{err}"
    );
}

#[tokio::test]
async fn a_pending_message_trimmed_away_is_counted_as_lost() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    Producer::new(&client, &INTAKE)
        .publish(&interaction(1))
        .await
        .unwrap();
    let stream = client.keys(&INTAKE, None).stream();
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("classifier")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    // A consumer reads it and dies; then the stream is trimmed past it.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("classifier")
        .arg("crashed")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: u64 = redis::cmd("XTRIM")
        .arg(&stream)
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    let report = run_until(
        classifier(&client, &INTAKE),
        |_d: Delivery<Interaction>| async { Outcome::Done },
        Duration::from_secs(5),
        |r| r.lost_by_trim >= 1,
    )
    .await;
    assert_eq!(
        (report.lost_by_trim, report.claimed, report.done),
        (1, 0, 0),
        "{report:?}"
    );
}
