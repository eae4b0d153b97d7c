//! courier on a Redis Cluster of three masters and three replicas, started
//! by the test support with `redis-cli --cluster create`: every transport,
//! the scripts (publish, settle, take, move-due, replay, lease, fence, rate
//! limit, breaker), Pub/Sub broadcasts, with no `CROSSSLOT` error; a
//! partitioned channel spread over the masters; then a master killed while
//! producers and consumers run on a channel with replicated durability
//! (`WAIT`): they go on by themselves and no acknowledged publish is lost.
//!
//! One cluster serves the whole suite, one scenario after another (the
//! failover last, since it changes the cluster's shape).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_center_contracts::{
    channels, ClassifiedTaskV2, FeedbackEvent, Interaction, InteractionV1,
};
use courier::breaker::{Breaker, BreakerConfig, BreakerState};
use courier::{
    Backoff, CancellationToken, ChannelSpec, Client, Consumer, Delivery, DlqFilter, Durability,
    Fence, Lease, Outcome, PartitionSpec, Producer, PublishOptions, RateLimit, Transport,
};
use courier_suites::history::{number, publish, History};
use courier_suites::{
    counting, eventually, feedback, interaction, namespace, quick, raw_cluster, task_for,
    wait_for_effects, RedisCluster, Running,
};
use serde_json::json;

/// Intake spread over twelve buckets of the customer id, with short
/// timeouts; each transport below takes it as its base.
const SPREAD: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("cluster_spread"),
    visibility_timeout: Duration::from_secs(1),
    max_attempts: 2,
    backoff: Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        multiplier: 2.0,
    },
    partitions: Some(PartitionSpec::Buckets {
        field: Cow::Borrowed("/customer_id"),
        buckets: 12,
    }),
    max_depth: None,
    sla: None,
    rate_limit: None,
    ..channels::intake::SPEC
};
static STREAM: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("cluster_stream"),
    transport: Transport::Stream,
    ..SPREAD
};
static LIST: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("cluster_list"),
    transport: Transport::List,
    ..SPREAD
};
static PRIORITY: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("cluster_priority"),
    transport: Transport::Priority,
    ..SPREAD
};

/// Work for the failover scenario: replicated, partitioned by region.
static WORK: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("cluster_work"),
    visibility_timeout: Duration::from_secs(2),
    max_attempts: 20,
    backoff: Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        multiplier: 2.0,
    },
    max_depth: None,
    rate_limit: None,
    durability: Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_secs(1),
    },
    ..channels::intake::SPEC
};
/// Where the failover scenario's handler puts its effect: a derived task
/// keyed by the contact, replicated too, so a repeated effect is a duplicate.
static EFFECTS: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("cluster_effects"),
    transport: Transport::Stream,
    dependency: None,
    durability: Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_secs(1),
    },
    ..channels::billing::SPEC
};

/// Interaction `n` from customer `n`, so that messages spread over buckets.
fn spread(n: u64) -> InteractionV1 {
    let mut message = serde_json::to_value(interaction(n)).unwrap();
    message["customer_id"] = json!(format!("C{n:07}"));
    serde_json::from_value(message).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn courier_runs_on_a_redis_cluster_and_survives_a_failover() {
    let mut cluster = RedisCluster::must_start();
    let client = Client::connect_cluster(&cluster.url(), &namespace())
        .await
        .expect("connect to the test cluster");
    assert!(client.is_cluster());

    partitions_spread_over_the_masters(&cluster, &client);
    for spec in [&STREAM, &LIST, &PRIORITY] {
        every_transport_works(&client, spec).await;
    }
    coordination_works(&client).await;
    broadcasts_reach_subscribers(&client).await;
    a_failover_loses_no_acknowledged_publish(&mut cluster).await;
}

/// The twelve buckets' keys live on every master.
fn partitions_spread_over_the_masters(cluster: &RedisCluster, client: &Client) {
    let mut by_master: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for partition in courier::partition::all(&SPREAD) {
        let stream = client.keys(&SPREAD, partition.as_deref()).stream();
        let slot = cluster.slot(&stream).unwrap();
        by_master
            .entry(cluster.master_of(slot).unwrap())
            .or_default()
            .push(partition.unwrap());
    }
    println!("partitions by master: {by_master:?}");
    assert_eq!(by_master.len(), 3, "{by_master:?}");
}

/// Publishes in batches that cross slots, one scheduled message, one
/// poison message that is dead-lettered, replayed and then handled: every
/// message handled once.
async fn every_transport_works(client: &Client, spec: &'static ChannelSpec) {
    let producer = Producer::untyped(client, spec);
    let batch: Vec<InteractionV1> = (1..=60).map(spread).collect();
    let published = producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    let partitions: BTreeSet<_> = published.iter().map(|p| p.partition.clone()).collect();
    assert!(partitions.len() >= 6, "{partitions:?}");
    let again = producer.publish(&spread(7)).await.unwrap();
    assert!(again.duplicate, "{again:?}");
    producer
        .publish_in(&spread(61), Duration::from_millis(300))
        .await
        .unwrap();
    producer.publish(&spread(62)).await.unwrap();

    let handled: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let fixed = Arc::new(AtomicBool::new(false));
    let consumer = Consumer::<Interaction>::untyped(client, spec, "cluster").with_options(quick());
    let running = Running::start(consumer, {
        let (handled, fixed) = (handled.clone(), fixed.clone());
        move |delivery: Delivery<Interaction>| {
            let n = number(&delivery);
            let outcome = if n == 62 && !fixed.load(Ordering::SeqCst) {
                Outcome::retry("poison until fixed")
            } else {
                *handled.lock().unwrap().entry(n).or_default() += 1;
                Outcome::Done
            };
            std::future::ready(outcome)
        }
    });
    let dlq = client.dlq(spec);
    let first = eventually(Duration::from_secs(15), || {
        handled.lock().unwrap().len() == 61
    })
    .await;
    assert!(first, "{}: {:?}", spec.name, handled.lock().unwrap().len());
    let deadline = Instant::now() + Duration::from_secs(10);
    while dlq.len().await.unwrap() < 1 {
        assert!(
            Instant::now() < deadline,
            "{}: nothing dead-lettered",
            spec.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fixed.store(true, Ordering::SeqCst);
    assert_eq!(dlq.replay_where(&DlqFilter::default()).await.unwrap(), 1);
    let all = eventually(Duration::from_secs(10), || {
        handled.lock().unwrap().len() == 62
    })
    .await;
    let report = running.stop().await;
    assert!(all, "{}: {report:?}", spec.name);
    let twice: Vec<u64> = {
        let handled = handled.lock().unwrap();
        handled
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(&m, _)| m)
            .collect()
    };
    assert!(twice.is_empty(), "{}: handled twice: {twice:?}", spec.name);
    assert_eq!(dlq.len().await.unwrap(), 0);
    println!("{}: {report:?}", spec.name);
}

/// Lease, fence, rate limit and breaker scripts, each on its own slot.
async fn coordination_works(client: &Client) {
    let lease = Lease::acquire(client, "nightly", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a free lease");
    assert!(Lease::acquire(client, "nightly", Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    assert!(lease.extend(Duration::from_secs(5)).await.unwrap());
    let fence = Fence::new(client, "nightly", "report");
    assert!(fence.check_and_set(lease.token()).await.unwrap());
    assert!(!fence.check_and_set(lease.token() - 1).await.unwrap());
    assert!(lease.release().await.unwrap());

    let limit = RateLimit::new(client, "cluster-api", 2.0, 3).unwrap();
    for _ in 0..3 {
        assert_eq!(limit.try_acquire().await.unwrap(), None);
    }
    assert!(limit.try_acquire().await.unwrap().is_some());

    let config = BreakerConfig {
        failure_threshold: 2,
        min_calls: 1,
        failure_rate: None,
        ..BreakerConfig::default()
    };
    let breaker = Breaker::new(client, "cluster-crm", config).unwrap();
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    assert!(matches!(
        breaker.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
    assert!(!breaker.allow().await.unwrap());
    client.pause(&STREAM).await.unwrap();
    client.resume(&STREAM).await.unwrap();
}

/// Every live subscriber hears every broadcast, whichever node it is on.
async fn broadcasts_reach_subscribers(client: &Client) {
    let token = CancellationToken::new();
    let counts: Vec<Arc<AtomicU32>> = (0..2).map(|_| Arc::new(AtomicU32::new(0))).collect();
    let mut runs = Vec::new();
    for count in &counts {
        let subscriber = channels::feedback::subscriber(client);
        let (token, handler) = (token.clone(), counting::<FeedbackEvent>(count));
        runs.push(tokio::spawn(async move {
            subscriber.run_until(handler, token).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let producer = channels::feedback::producer(client);
    for n in 0..10 {
        producer.publish(&feedback(n)).await.unwrap();
    }
    let all = || counts.iter().all(|c| c.load(Ordering::SeqCst) == 10);
    assert!(eventually(Duration::from_secs(5), all).await, "{counts:?}");
    token.cancel();
    for run in runs {
        run.await.unwrap().unwrap();
    }
}

/// A master is SIGKILLed while two producers publish and two consumers
/// handle each message by publishing a derived task. Both channels wait
/// for one replica per publish. Acknowledged: every message; lost: none;
/// duplicate effects: none (a redelivered message's task is a duplicate
/// publish, refused by its idempotency key, which was replicated).
async fn a_failover_loses_no_acknowledged_publish(cluster: &mut RedisCluster) {
    let namespace = namespace();
    let url = cluster.url();
    let connect = || Client::connect_cluster(&url, &namespace);
    let history = Arc::new(History::default());
    let effects: Producer<ClassifiedTaskV2> =
        Producer::untyped(&connect().await.unwrap(), &EFFECTS);
    let mut consumers = Vec::new();
    for name in ["a", "b"] {
        let client = connect().await.unwrap().with_name(name);
        let consumer =
            Consumer::<Interaction>::untyped(&client, &WORK, "workers").with_options(quick());
        let (history, effects) = (history.clone(), effects.clone());
        consumers.push(Running::start(
            consumer,
            move |delivery: Delivery<Interaction>| {
                let (history, effects) = (history.clone(), effects.clone());
                async move {
                    let n = number(&delivery);
                    history.delivered(n);
                    match effects.publish(&task_for(n)).await {
                        Ok(_) => Outcome::Done,
                        Err(e) => Outcome::retry(e),
                    }
                }
            },
        ));
    }

    // Producers publish for four seconds; the master of the emea
    // partition dies after one.
    let patient = PublishOptions {
        retry_for: Some(Duration::from_secs(30)),
        ..PublishOptions::default()
    };
    let stop_at = Instant::now() + Duration::from_secs(4);
    let mut producers = Vec::new();
    for first in [1u64, 2] {
        let (history, patient) = (history.clone(), patient.clone());
        let producer: Producer<InteractionV1> = Producer::untyped(&connect().await.unwrap(), &WORK);
        producers.push(tokio::spawn(async move {
            let mut n = first;
            while Instant::now() < stop_at {
                if let Err(e) = publish(&producer, &history, n, &patient).await {
                    eprintln!("publish {n}: {e}");
                }
                n += 2;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = connect().await.unwrap();
    let emea = client.keys(&WORK, Some("emea")).stream();
    let slot = cluster.slot(&emea).unwrap();
    let master = cluster.master_of(slot).unwrap();
    let killed_at = Instant::now();
    cluster.kill(master);
    cluster
        .wait_until_healthy(Duration::from_secs(30))
        .expect("a replica takes over");
    let promoted = cluster.master_of(slot).unwrap();
    println!(
        "killed master {master}; replica {promoted} took over in {:?}",
        killed_at.elapsed()
    );
    assert_ne!(promoted, master);
    // Until the old master rejoins as a replica, the shard has none: its
    // publishes wait (WAIT says 0 of 1) and are retried.
    cluster.restart(master).unwrap();
    cluster
        .wait_until_healthy(Duration::from_secs(30))
        .expect("the old master rejoins as a replica");
    println!(
        "old master rejoined as a replica after {:?}",
        killed_at.elapsed()
    );
    for producer in producers {
        producer.await.unwrap();
    }

    // Drain: every acknowledged message has its effect.
    let mut raw = raw_cluster(cluster).await;
    let stream = client.keys(&EFFECTS, None).stream();
    let acknowledged = history.acknowledged();
    let found = wait_for_effects(&mut raw, &stream, Duration::from_secs(30), |found| {
        acknowledged.is_subset(&found.iter().copied().collect())
    })
    .await;
    let mut reports = Vec::new();
    for running in consumers {
        reports.push(running.stop().await);
    }
    history.effects_from(found);
    let verdict = history.check();
    println!(
        "failover: {} acknowledged, {} deliveries, lost {}, duplicate effects {}; consumers {reports:?}",
        verdict.acknowledged,
        verdict.deliveries,
        verdict.lost.len(),
        verdict.duplicates.len()
    );
    assert!(verdict.acknowledged > 100, "{verdict:?}");
    verdict.assert_clean();
}
