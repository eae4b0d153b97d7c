//! courier on a Redis Cluster of three masters and three replicas, started
//! by the test support with `redis-cli --cluster create`: every transport,
//! the scripts (publish, settle, take, move-due, replay, lease, fence, rate
//! limit, breaker), Pub/Sub broadcasts, with no `CROSSSLOT` error; a
//! partitioned channel spread over the masters; then a master killed while
//! producers and consumers run on a channel with replicated durability
//! (`WAIT`): they go on by themselves and no acknowledged publish is lost.
//! The same over TLS (clients, bus and replication) on a second cluster,
//! and slots resharded back and forth under traffic on a third.
//!
//! Each test has its own cluster; within one, one scenario after another
//! (the failover last, since it changes the cluster's shape).

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
    Backoff, CancellationToken, ChannelSpec, Client, ConnectOptions, Consumer, Delivery, DlqFilter,
    Durability, Effects, Fence, Lease, Outcome, PartitionSpec, Producer, PublishOptions, RateLimit,
    Transport,
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
static WORK: ChannelSpec = WORK_BASE;
const WORK_BASE: ChannelSpec = ChannelSpec {
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
/// Work for the resharding scenario: named so that its emea partition's
/// hash slot (11) is among the lowest of the first master's, which
/// `redis-cli --cluster reshard` moves first.
static RESHARD: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("reshard_work_797"),
    ..WORK_BASE
};

/// Work for the partition scenario with the default durability (the
/// primary's acknowledgement): named so that its emea partition (slot
/// 823) shares a master with `WORK`'s (slot 2641).
static PRIMARY: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("primary_work_0"),
    durability: Durability::Primary,
    ..WORK_BASE
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

/// The same on a cluster whose clients, bus and replication speak TLS:
/// every transport, the scripts and broadcasts over `rediss://` seeds; a
/// client trusting another CA, and a plain client on the TLS ports, are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn courier_runs_on_a_tls_cluster() {
    let cluster = RedisCluster::start_tls().unwrap_or_else(|e| panic!("{e}"));
    let seeds = cluster.tls_url().unwrap();
    assert!(seeds.starts_with("rediss://"), "{seeds}");
    let trusting = |ca| ConnectOptions {
        tls_ca_file: Some(ca),
        cluster: true,
    };
    let options = trusting(courier_testkit::tls_ca_file());
    let client = Client::connect_with(&seeds, &namespace(), &options)
        .await
        .expect("connect to the TLS cluster with its CA");
    for spec in [&STREAM, &LIST, &PRIORITY] {
        every_transport_works(&client, spec).await;
    }
    coordination_works(&client).await;
    broadcasts_reach_subscribers(&client).await;

    let other = trusting(courier_testkit::other_ca_file());
    let refused = Client::connect_with(&seeds, &namespace(), &other).await;
    let error = refused.expect_err("a client trusting another CA is refused");
    println!("another CA: {error}");
    let plain = seeds.replace("rediss://", "redis://");
    let plain_options = ConnectOptions {
        cluster: true,
        ..ConnectOptions::default()
    };
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        Client::connect_with(&plain, &namespace(), &plain_options),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a plain client on the TLS ports is refused"
    );
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
                Outcome::DoneWith(Effects::new().incr("handled", 1))
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
    // The effects were written with each acknowledgement, in each
    // partition's slot, and add up over the partitions.
    let effects = client.effects(spec).counter("handled").await.unwrap();
    assert_eq!(effects, 62, "{}", spec.name);
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

/// Two producers publishing for `seconds` and two consumers handling each
/// message by publishing a derived task, on a cluster, while a test causes
/// a fault; [`Traffic::finish`] drains and checks the history.
struct Traffic {
    history: Arc<History>,
    consumers: Vec<Running>,
    producers: Vec<tokio::task::JoinHandle<Vec<String>>>,
    client: Client,
}

impl Traffic {
    /// Starts the traffic in `namespace`, both channels waiting for one
    /// replica per publish; every publish may retry for 30 s.
    async fn start(
        cluster: &RedisCluster,
        work: &'static ChannelSpec,
        namespace: &str,
        seconds: u64,
    ) -> Self {
        let url = cluster.url();
        let connect = || Client::connect_cluster(&url, namespace);
        let history = Arc::new(History::default());
        let effects: Producer<ClassifiedTaskV2> =
            Producer::untyped(&connect().await.unwrap(), &EFFECTS);
        let mut consumers = Vec::new();
        for name in ["a", "b"] {
            let client = connect().await.unwrap().with_name(name);
            let consumer =
                Consumer::<Interaction>::untyped(&client, work, "workers").with_options(quick());
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
        let patient = PublishOptions {
            retry_for: Some(Duration::from_secs(30)),
            ..PublishOptions::default()
        };
        let stop_at = Instant::now() + Duration::from_secs(seconds);
        let mut producers = Vec::new();
        for first in [1u64, 2] {
            let (history, patient) = (history.clone(), patient.clone());
            let producer: Producer<InteractionV1> =
                Producer::untyped(&connect().await.unwrap(), work);
            producers.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                let mut n = first;
                while Instant::now() < stop_at {
                    if let Err(e) = publish(&producer, &history, n, &patient).await {
                        eprintln!("publish {n}: {e}");
                        errors.push(e.to_string());
                    }
                    n += 2;
                }
                errors
            }));
        }
        Traffic {
            history,
            consumers,
            producers,
            client: connect().await.unwrap(),
        }
    }

    /// Waits for the producers, then for every acknowledged message's
    /// effect; stops the consumers and checks: lost 0, duplicate effects
    /// 0, unexpected 0, and no publish failed with `CROSSSLOT`.
    async fn finish(self, cluster: &RedisCluster, label: &str) -> courier_suites::history::Verdict {
        let verdict = self.finish_measured(cluster, label, true).await;
        verdict.assert_clean();
        verdict
    }

    /// [`Self::finish`] without requiring a clean history: for a channel
    /// whose durability lets a fault lose acknowledged writes, whose loss
    /// is measured.
    async fn finish_measured(
        self,
        cluster: &RedisCluster,
        label: &str,
        strict: bool,
    ) -> courier_suites::history::Verdict {
        let mut errors = Vec::new();
        for producer in self.producers {
            errors.extend(producer.await.unwrap());
        }
        let mut raw = raw_cluster(cluster).await;
        let stream = self.client.keys(&EFFECTS, None).stream();
        let acknowledged = self.history.acknowledged();
        // A measured run may have lost messages whose effects never come.
        let patience = Duration::from_secs(if strict { 30 } else { 10 });
        let found = wait_for_effects(&mut raw, &stream, patience, |found| {
            acknowledged.is_subset(&found.iter().copied().collect())
        })
        .await;
        let mut reports = Vec::new();
        for running in self.consumers {
            reports.push(running.stop().await);
        }
        self.history.effects_from(found);
        let verdict = self.history.check();
        println!(
            "{label}: {} acknowledged, {} deliveries, {} publish errors, lost {}, duplicate effects {}; consumers {reports:?}",
            verdict.acknowledged,
            verdict.deliveries,
            errors.len(),
            verdict.lost.len(),
            verdict.duplicates.len()
        );
        let crossslot: Vec<&String> = errors.iter().filter(|e| e.contains("CROSSSLOT")).collect();
        assert!(crossslot.is_empty(), "{label}: {crossslot:?}");
        assert!(verdict.acknowledged > 100, "{label}: {verdict:?}");
        verdict
    }
}

/// A master is SIGKILLed while two producers publish and two consumers
/// handle each message by publishing a derived task. Both channels wait
/// for one replica per publish. Acknowledged: every message; lost: none;
/// duplicate effects: none (a redelivered message's task is a duplicate
/// publish, refused by its idempotency key, which was replicated).
async fn a_failover_loses_no_acknowledged_publish(cluster: &mut RedisCluster) {
    // Producers publish for four seconds; the master of the emea
    // partition dies after one.
    let traffic = Traffic::start(cluster, &WORK, &namespace(), 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let emea = traffic.client.keys(&WORK, Some("emea")).stream();
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
    traffic.finish(cluster, "failover").await;
}

/// `redis-cli --cluster reshard` moves the slot of a live channel
/// partition (its stream, idempotency keys, done marks and delayed set,
/// keys and all) to another master and back while producers and consumers
/// run: scripts and pipelines meet `ASK`, `TRYAGAIN` and `MOVED` and go on;
/// lost 0, duplicate effects 0, no `CROSSSLOT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resharding_under_traffic_loses_nothing() {
    let cluster = RedisCluster::must_start();
    let namespace = namespace();
    let client = Client::connect_cluster(&cluster.url(), &namespace)
        .await
        .unwrap();
    let slot = cluster
        .slot(&client.keys(&RESHARD, Some("emea")).stream())
        .unwrap();
    let master = cluster.master_of(slot).unwrap();
    let topology = cluster.topology().unwrap();
    let lowest = |port: u16| {
        let node = topology.iter().find(|n| n.port == port).unwrap();
        node.slots.iter().map(|&(a, _)| a).min().unwrap()
    };
    assert_eq!(lowest(master), 0, "the first master serves slot {slot}");
    // The slots go to a master whose own slots are all higher, so that
    // they are its lowest when they are moved back.
    let other = topology
        .iter()
        .find(|n| n.master && n.port != master)
        .map(|n| n.port)
        .unwrap();
    let count = slot + 1;
    let traffic = Traffic::start(&cluster, &RESHARD, &namespace, 8).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Back and forth for six seconds of the traffic's eight.
    let started = Instant::now();
    let mut moves = 0;
    while started.elapsed() < Duration::from_secs(6) {
        // redis-cli refuses to reshard until every node agrees on the slots.
        let agreed = || cluster.wait_until_healthy(Duration::from_secs(10));
        agreed().expect("the nodes agree");
        cluster
            .reshard(master, other, count)
            .expect("reshard there");
        assert_eq!(cluster.master_of(slot).unwrap(), other);
        tokio::time::sleep(Duration::from_millis(200)).await;
        agreed().expect("the nodes agree");
        cluster.reshard(other, master, count).expect("reshard back");
        assert_eq!(cluster.master_of(slot).unwrap(), master);
        tokio::time::sleep(Duration::from_millis(200)).await;
        moves += 2;
    }
    println!(
        "moved {count} slots (the emea partition's slot {slot} among them) between {master} and {other} {moves} times in {:?}; redirections: {}",
        started.elapsed(),
        redirections(&cluster)
    );
    traffic.finish(&cluster, "reshard").await;
}

/// The `ASK`, `TRYAGAIN` and `MOVED` replies the cluster's nodes gave, from
/// `INFO errorstats`, summed over the nodes.
fn redirections(cluster: &RedisCluster) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for node in cluster.nodes() {
        let info = node.command_text("INFO errorstats").unwrap_or_default();
        for line in info.lines() {
            // errorstat_ASK:count=12
            let Some((name, count)) = line
                .strip_prefix("errorstat_")
                .and_then(|l| l.split_once(":count="))
            else {
                continue;
            };
            if ["ASK", "TRYAGAIN", "MOVED", "CROSSSLOT"].contains(&name) {
                *counts.entry(name.to_string()).or_default() +=
                    count.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    format!("{counts:?}")
}

/// The master of a live partition is cut off from every other node (bus
/// and replication, both ways, through the testkit's relays) while
/// producers on its side keep writing to it and to the other masters; the
/// majority fails it over, and once the partition heals it rejoins as a
/// replica, dropping what it took alone. With `replicated` durability no
/// acknowledged publish is lost (the isolated master cannot get its `WAIT`
/// confirmed); with `primary` the loss is measured: that is Redis'
/// promise, not courier's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_master_loses_no_replicated_publish() {
    let cluster = RedisCluster::start_partitionable().unwrap_or_else(|e| panic!("{e}"));
    let replicated = Traffic::start(&cluster, &WORK, &namespace(), 9).await;
    let primary = Traffic::start(&cluster, &PRIMARY, &namespace(), 9).await;
    let slot = cluster
        .slot(&replicated.client.keys(&WORK, Some("emea")).stream())
        .unwrap();
    let master = cluster.master_of(slot).unwrap();
    let primary_slot = cluster
        .slot(&primary.client.keys(&PRIMARY, Some("emea")).stream())
        .unwrap();
    assert_eq!(cluster.master_of(primary_slot).unwrap(), master);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.isolate(master).unwrap();
    let cut_at = Instant::now();
    // The majority's view: a replica of the isolated master takes over.
    let majority = cluster
        .topology()
        .unwrap()
        .into_iter()
        .find(|n| n.master && n.port != master)
        .map(|n| n.port)
        .unwrap();
    let failed_over = eventually(Duration::from_secs(20), || {
        cluster
            .master_seen_by(majority, slot)
            .is_ok_and(|serving| serving != master)
    })
    .await;
    assert!(
        failed_over,
        "the majority did not fail the isolated master over"
    );
    // Some more time apart, as partitions last.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.heal();
    cluster
        .wait_until_healthy(Duration::from_secs(30))
        .expect("the cluster heals");
    let promoted = cluster.master_of(slot).unwrap();
    println!(
        "isolated master {master}; {promoted} serves its slots; healthy again after {:?}",
        cut_at.elapsed()
    );
    assert_ne!(
        promoted, master,
        "the majority failed the isolated master over"
    );
    replicated.finish(&cluster, "partition, replicated").await;
    let measured = primary
        .finish_measured(&cluster, "partition, primary", false)
        .await;
    println!(
        "partition, primary: lost {} of {} acknowledged ({:?})",
        measured.lost.len(),
        measured.acknowledged,
        measured.lost.iter().take(20).collect::<Vec<_>>()
    );
}
