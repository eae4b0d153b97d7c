//! Effects exactly once (`courier::effects`): a handler killed between its
//! effect and its acknowledgement, again and again, on a stream and on a
//! list channel. Its Redis-side effects (`Outcome::DoneWith`) are written
//! once per message; its external effect, keyed by
//! `Delivery::effect_key`, is attempted more than once and recorded once
//! by a store that refuses a key it has seen (as an external API's
//! idempotency mechanism would). Effects of a type the key does not hold
//! are refused before anything is written, and the message is
//! dead-lettered with the reason; a broadcast published twice takes effect
//! once per subscriber.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contact_center_contracts::{channels, FeedbackEvent, Interaction, InteractionV1};
use courier::{
    ChannelSpec, Client, Consumer, DeadReason, Delivery, DlqFilter, Effects, Outcome, Producer,
    Transport,
};
use courier_suites::history::number;
use courier_suites::{
    eventually, feedback, first_version, interaction, namespace, quick, RedisServer, Running,
};

/// Intake (partitioned by region), for the effects summed over partitions.
const INTAKE: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("effects_partitioned"),
    max_depth: None,
    rate_limit: None,
    sla: None,
    ..channels::intake::SPEC
};
static PARTITIONED: ChannelSpec = INTAKE;
/// Intake in one partition, with a short visibility timeout, so a killed
/// handler's message comes back quickly (a partition's lease would make a
/// new consumer wait for the killed one's to expire).
const BASE: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("effects_stream"),
    visibility_timeout: Duration::from_millis(400),
    partitions: None,
    ..INTAKE
};
static STREAM: ChannelSpec = BASE;
static LIST: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("effects_list"),
    transport: Transport::List,
    ..BASE
};

/// Messages per channel.
const MESSAGES: u64 = 300;
/// Handler kills per channel, each between the effect and the settlement.
const KILLS: u32 = 100;
/// Messages published twice with one key, both copies in flight at once.
const TWINS: u64 = 20;
/// Consumers running at once; a killed one is replaced by a new one.
const LANES: usize = 4;

/// What an external API with an idempotency mechanism does: it records
/// each effect key once and counts every attempt.
#[derive(Default)]
struct External {
    seen: Mutex<HashMap<String, u32>>,
}

impl External {
    fn charge(&self, key: String) {
        *self.seen.lock().unwrap().entry(key).or_default() += 1;
    }
}

fn region(message: &InteractionV1) -> String {
    serde_json::to_value(message.region)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// What the handlers of one run share: the external API, the kills left,
/// the messages that died or ran late once, and where a dying handler
/// says so.
#[derive(Clone)]
struct Shared {
    external: Arc<External>,
    kills_left: Arc<AtomicU32>,
    died: Arc<Mutex<BTreeSet<u64>>>,
    late: Arc<Mutex<BTreeSet<u64>>>,
    dying: tokio::sync::mpsc::UnboundedSender<(usize, usize)>,
}

/// The handler of consumer `generation` in `lane`: the external effect,
/// then the Redis-side effects returned with the outcome. Among the first
/// `MESSAGES`, every third dies once while kills are left (it tells the
/// test and hangs until its consumer is killed: between its effect and its
/// acknowledgement), and every tenth from the fifth runs once past the
/// visibility timeout (a stream consumer then finds it reclaimed and
/// handled by another, and its settlement refused). Twins (past
/// `MESSAGES`) take a while, so that both copies are handled at once.
fn handler(
    lane: usize,
    generation: usize,
    shared: Shared,
    visibility: Duration,
) -> impl Fn(Delivery<Interaction>) -> Pin<Box<dyn Future<Output = Outcome> + Send>>
       + Send
       + Sync
       + 'static {
    move |delivery: Delivery<Interaction>| {
        let shared = shared.clone();
        Box::pin(async move {
            let n = number(&delivery);
            shared.external.charge(delivery.effect_key("charge"));
            let die = n <= MESSAGES
                && n.is_multiple_of(3)
                && shared.died.lock().unwrap().insert(n)
                && shared
                    .kills_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                    .is_ok();
            if die {
                let _ = shared.dying.send((lane, generation));
                std::future::pending::<()>().await;
            }
            if n <= MESSAGES && n % 10 == 5 && shared.late.lock().unwrap().insert(n) {
                tokio::time::sleep(visibility * 2).await;
            }
            if n > MESSAGES {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let message = first_version(&delivery.message);
            Outcome::DoneWith(
                Effects::new()
                    .incr("handled", 1)
                    .hincr("by_region", &region(message), 1)
                    .sadd("interactions", &message.interaction_id.to_string()),
            )
        })
    }
}

/// The idempotency records of `spec`'s channel.
async fn idem_keys(server: &RedisServer, client: &Client, spec: &ChannelSpec) -> BTreeSet<String> {
    redis::cmd("KEYS")
        .arg(client.keys(spec, None).idem("*"))
        .query_async(&mut courier_suites::raw(server).await)
        .await
        .unwrap()
}

async fn effects_once_despite_kills(server: &RedisServer, spec: &'static ChannelSpec) {
    let client = Client::connect(&server.url(), &namespace()).await.unwrap();
    let producer: Producer<InteractionV1> = Producer::untyped(&client, spec);
    let messages: Vec<InteractionV1> = (1..=MESSAGES).map(interaction).collect();
    producer
        .publish_many(&messages, &Default::default())
        .await
        .unwrap();
    // Twins: each published twice with the same key, the second time as if
    // past the dedup window (its record removed), so two messages with one
    // key are in flight together and only one may take effect.
    let twins: Vec<InteractionV1> = (MESSAGES + 1..=MESSAGES + TWINS).map(interaction).collect();
    let before = idem_keys(server, &client, spec).await;
    producer
        .publish_many(&twins, &Default::default())
        .await
        .unwrap();
    let records: Vec<String> = idem_keys(server, &client, spec)
        .await
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(records.len() as u64, TWINS);
    let _: () = redis::cmd("DEL")
        .arg(&records)
        .query_async(&mut courier_suites::raw(server).await)
        .await
        .unwrap();
    let again = producer
        .publish_many(&twins, &Default::default())
        .await
        .unwrap();
    assert!(again.iter().all(|p| !p.duplicate), "{again:?}");

    let (dying, mut deaths) = tokio::sync::mpsc::unbounded_channel();
    let shared = Shared {
        external: Arc::new(External::default()),
        kills_left: Arc::new(AtomicU32::new(KILLS)),
        died: Arc::default(),
        late: Arc::default(),
        dying,
    };
    let mut stats = Vec::new();
    let mut started = 0usize;
    let mut start = |lane: usize| {
        started += 1;
        let client = client
            .clone()
            .with_name(&format!("{}-{started}", spec.name));
        let consumer =
            Consumer::<Interaction>::untyped(&client, spec, "workers").with_options(quick());
        let running = Running::start(
            consumer,
            handler(lane, started, shared.clone(), spec.visibility_timeout),
        );
        stats.push(running.stats.clone());
        (started, running)
    };
    let mut lanes: Vec<Option<(usize, Running)>> =
        (0..LANES).map(|lane| Some(start(lane))).collect();
    let mut kills = 0;
    while kills < KILLS {
        let (lane, generation) = tokio::time::timeout(Duration::from_secs(30), deaths.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no handler died after {kills} kills", spec.name))
            .unwrap();
        kills += 1;
        // Several handlers of one consumer may be waiting to die: the kill
        // of their consumer takes them all, and a later one's word must
        // not kill its replacement.
        if lanes[lane].as_ref().is_some_and(|(g, _)| *g == generation) {
            let (_, running) = lanes[lane].take().unwrap();
            running.kill().await;
            lanes[lane] = Some(start(lane));
        }
    }

    let total = (MESSAGES + TWINS) as i64;
    let reader = client.effects(spec);
    let all = async {
        for _ in 0..600 {
            if reader.counter("handled").await.unwrap() >= total {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    let all = all.await;
    // Let late handlers and redeliveries (of messages whose consumer died
    // after its settlement) show any second effect before counting.
    tokio::time::sleep(spec.visibility_timeout * 3).await;
    let mut reports = Vec::new();
    for (_, running) in lanes.into_iter().flatten() {
        reports.push(running.stop().await);
    }
    let handled = reader.counter("handled").await.unwrap();
    assert!(
        all,
        "{}: {handled} of {total} handled; {reports:?}",
        spec.name
    );
    let stale: u64 = stats.iter().map(|s| s.snapshot().stale).sum();
    let duplicates: u64 = stats.iter().map(|s| s.snapshot().duplicates).sum();

    let everything: Vec<&InteractionV1> = messages.iter().chain(&twins).collect();
    let by_region = reader.hash_counters("by_region").await.unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for message in &everything {
        *expected.entry(region(message)).or_default() += 1;
    }
    let interactions = reader.set("interactions").await.unwrap();
    let ids: BTreeSet<String> = everything
        .iter()
        .map(|m| m.interaction_id.to_string())
        .collect();
    let seen = shared.external.seen.lock().unwrap().clone();
    let attempts: u32 = seen.values().sum();
    println!(
        "{}: {KILLS} kills, {stale} late settlements refused, {duplicates} twins dropped; \
         Redis-side effects: handled {handled}, by region {by_region:?}, {} set members; \
         external: {attempts} attempts on {} effect keys",
        spec.name,
        interactions.len(),
        seen.len()
    );
    assert_eq!(handled, total, "{}", spec.name);
    assert_eq!(by_region, expected, "{}", spec.name);
    assert_eq!(interactions, ids, "{}", spec.name);
    // Every message's effect key once, and more attempts than messages:
    // the kills made handlers repeat their external effect, which the
    // effect key let the other side refuse.
    assert_eq!(seen.len() as i64, total, "{}", spec.name);
    assert!(
        u64::from(attempts) >= MESSAGES + TWINS + u64::from(KILLS),
        "{}: {attempts} attempts",
        spec.name
    );
    // Each twin pair took effect once: the second copy's writes were
    // dropped by the settle script (a twin read after its pair settled is
    // skipped before its handler instead).
    assert!(
        duplicates >= 1,
        "{}: no twin reached the settle script",
        spec.name
    );
    if spec.transport == Transport::Stream {
        // A stream entry held past its visibility timeout is reclaimed; the
        // late handler's settlement is refused and writes nothing.
        assert!(stale >= 1, "{}: no late settlement was refused", spec.name);
    }
    assert_eq!(client.dlq(spec).len().await.unwrap(), 0, "{}", spec.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_side_effects_happen_once_over_100_handler_kills_per_transport() {
    let server = RedisServer::must_start();
    for spec in [&STREAM, &LIST] {
        effects_once_despite_kills(&server, spec).await;
    }
}

/// An effect on a key that holds another type is refused before any write:
/// the message is dead-lettered (`fatal`) with an error naming the key,
/// and the message's other effects are not written either.
#[tokio::test]
async fn an_effect_of_the_wrong_type_is_refused_and_dead_lettered() {
    let server = RedisServer::must_start();
    let client = Client::connect(&server.url(), &namespace()).await.unwrap();
    let producer: Producer<InteractionV1> = Producer::untyped(&client, &PARTITIONED);
    producer.publish(&interaction(1)).await.unwrap();
    producer.publish(&interaction(2)).await.unwrap();
    // Give every partition a hash where the handler will count.
    let mut raw = courier_suites::raw(&server).await;
    for partition in courier::partition::all(&PARTITIONED) {
        let key = client
            .keys(&PARTITIONED, partition.as_deref())
            .effect("total");
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("f")
            .arg("v")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let consumer =
        Consumer::<Interaction>::untyped(&client, &PARTITIONED, "workers").with_options(quick());
    let calls = Arc::new(AtomicU32::new(0));
    let running = Running::start(consumer, {
        let calls = calls.clone();
        move |_delivery: Delivery<Interaction>| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Outcome::DoneWith(
                Effects::new().incr("other", 1).incr("total", 1),
            ))
        }
    });
    let dlq = client.dlq(&PARTITIONED);
    let dead = eventually(Duration::from_secs(10), || {
        running.stats.snapshot().dead == 2
    })
    .await;
    let report = running.stop().await;
    assert!(dead, "{report:?}");
    let letters = dlq.list(&DlqFilter::default()).await.unwrap();
    assert_eq!(letters.len(), 2);
    for letter in &letters {
        assert_eq!(letter.reason, DeadReason::Fatal);
        assert!(
            letter
                .error
                .contains(":fx:total holds a hash, not the string incrby writes"),
            "{}",
            letter.error
        );
    }
    let reader = client.effects(&PARTITIONED);
    assert_eq!(reader.counter("other").await.unwrap(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A broadcast published twice (the second past the dedup window, so a
/// new message with the same key) takes effect once per subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_broadcast_takes_effect_once_per_subscriber() {
    let server = RedisServer::must_start();
    let client = Client::connect(&server.url(), &namespace()).await.unwrap();
    let token = courier::CancellationToken::new();
    let received = Arc::new(AtomicU32::new(0));
    let mut runs = Vec::new();
    for name in ["s1", "s2"] {
        let subscriber = channels::feedback::subscriber(&client.clone().with_name(name));
        let (token, received) = (token.clone(), received.clone());
        runs.push(tokio::spawn(async move {
            subscriber
                .run_until(
                    move |delivery: Delivery<FeedbackEvent>| {
                        received.fetch_add(1, Ordering::SeqCst);
                        let FeedbackEvent::V1(event) = &delivery.message;
                        std::future::ready(Outcome::DoneWith(
                            Effects::new()
                                .incr("feedback", 1)
                                .set("last_event", &event.event_id.to_string()),
                        ))
                    },
                    token,
                )
                .await
        }));
    }
    // Pub/Sub drops what is published before a subscription: wait for both.
    let spec = &channels::feedback::SPEC;
    let broadcast = client.keys(spec, None).inbox(Transport::Pubsub);
    let mut raw = courier_suites::raw(&server).await;
    let mut subscribed = 0;
    for _ in 0..500 {
        let (_, count): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&broadcast)
            .query_async(&mut raw)
            .await
            .unwrap();
        subscribed = count;
        if subscribed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(subscribed, 2, "both subscribers on {broadcast}");
    let producer = channels::feedback::producer(&client);
    let first = producer.publish(&feedback(1)).await.unwrap();
    // Past the dedup window: the idempotency record is gone, so the same
    // event is published again as a new message with the same key.
    let idem: Vec<String> = redis::cmd("KEYS")
        .arg(client.keys(spec, None).idem("*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(idem.len(), 1, "{idem:?}");
    let _: () = redis::cmd("DEL")
        .arg(&idem)
        .query_async(&mut raw)
        .await
        .unwrap();
    let second = producer.publish(&feedback(1)).await.unwrap();
    assert!(!second.duplicate && second.id != first.id, "{second:?}");
    let both = eventually(Duration::from_secs(5), || {
        received.load(Ordering::SeqCst) == 4
    })
    .await;
    token.cancel();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert!(both, "{} deliveries", received.load(Ordering::SeqCst));
    let reader = client.effects(spec);
    assert_eq!(
        reader.counter("feedback").await.unwrap(),
        2,
        "once per subscriber"
    );
    assert_eq!(
        reader
            .values("last_event")
            .await
            .unwrap()
            .into_values()
            .collect::<Vec<_>>(),
        vec![courier_suites::uuid(1)]
    );
}

/// A counter that an increment would take past a 64-bit integer is refused
/// before any write too (here on a list channel, whose refusal goes
/// through the processing-list fence): dead-lettered, nothing written.
#[tokio::test]
async fn an_increment_that_would_overflow_is_refused() {
    let server = RedisServer::must_start();
    let client = Client::connect(&server.url(), &namespace()).await.unwrap();
    let producer: Producer<InteractionV1> = Producer::untyped(&client, &LIST);
    producer.publish(&interaction(1)).await.unwrap();
    let mut raw = courier_suites::raw(&server).await;
    let big = client.keys(&LIST, None).effect("big");
    let _: () = redis::cmd("SET")
        .arg(&big)
        .arg("9223372036854775000")
        .query_async(&mut raw)
        .await
        .unwrap();
    let consumer =
        Consumer::<Interaction>::untyped(&client, &LIST, "workers").with_options(quick());
    let running = Running::start(consumer, |_delivery: Delivery<Interaction>| {
        std::future::ready(Outcome::DoneWith(
            Effects::new().incr("small", 1).incr("big", 1000),
        ))
    });
    let dead = eventually(Duration::from_secs(10), || {
        running.stats.snapshot().dead == 1
    })
    .await;
    let report = running.stop().await;
    assert!(dead, "{report:?}");
    let letters = client.dlq(&LIST).list(&DlqFilter::default()).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("too large to incrby by 1000"),
        "{}",
        letters[0].error
    );
    let reader = client.effects(&LIST);
    assert_eq!(reader.counter("small").await.unwrap(), 0);
    let held: String = redis::cmd("GET")
        .arg(&big)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(held, "9223372036854775000");
}
