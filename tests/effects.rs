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

/// The handler: the external effect, then (unless chosen to die here)
/// the Redis-side effects returned with the outcome. Every third message
/// dies once, while kills are left: its handler tells the test which lane
/// it runs in and hangs until its consumer is killed, between its effect
/// and its acknowledgement.
fn handler(
    lane: usize,
    external: Arc<External>,
    (kills_left, died): (Arc<AtomicU32>, Arc<Mutex<BTreeSet<u64>>>),
    dying: tokio::sync::mpsc::UnboundedSender<usize>,
) -> impl Fn(Delivery<Interaction>) -> Pin<Box<dyn Future<Output = Outcome> + Send>>
       + Send
       + Sync
       + 'static {
    move |delivery: Delivery<Interaction>| {
        let (external, kills_left, died, dying) = (
            external.clone(),
            kills_left.clone(),
            died.clone(),
            dying.clone(),
        );
        Box::pin(async move {
            let n = number(&delivery);
            external.charge(delivery.effect_key("charge"));
            let die = n.is_multiple_of(3)
                && died.lock().unwrap().insert(n)
                && kills_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                    .is_ok();
            if die {
                let _ = dying.send(lane);
                std::future::pending::<()>().await;
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

async fn effects_once_despite_kills(server: &RedisServer, spec: &'static ChannelSpec) {
    let client = Client::connect(&server.url(), &namespace()).await.unwrap();
    let producer: Producer<InteractionV1> = Producer::untyped(&client, spec);
    let messages: Vec<InteractionV1> = (1..=MESSAGES).map(interaction).collect();
    producer
        .publish_many(&messages, &Default::default())
        .await
        .unwrap();

    let external = Arc::new(External::default());
    let kills_left = Arc::new(AtomicU32::new(KILLS));
    let died = Arc::new(Mutex::new(BTreeSet::new()));
    let (dying, mut deaths) = tokio::sync::mpsc::unbounded_channel();
    let mut started = 0usize;
    let mut start = |lane: usize| {
        started += 1;
        let consumer = Consumer::<Interaction>::untyped(
            &client
                .clone()
                .with_name(&format!("{}-{started}", spec.name)),
            spec,
            "workers",
        )
        .with_options(quick());
        Running::start(
            consumer,
            handler(
                lane,
                external.clone(),
                (kills_left.clone(), died.clone()),
                dying.clone(),
            ),
        )
    };
    let mut lanes: Vec<Option<Running>> = (0..LANES).map(|lane| Some(start(lane))).collect();
    let mut kills = 0;
    while kills < KILLS {
        let lane = tokio::time::timeout(Duration::from_secs(30), deaths.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no handler died after {kills} kills", spec.name))
            .unwrap();
        // Several handlers of one consumer may be waiting to die; the
        // first kill takes them all.
        if let Some(running) = lanes[lane].take() {
            running.kill().await;
            kills += 1;
            lanes[lane] = Some(start(lane));
        } else {
            kills += 1;
        }
    }

    let reader = client.effects(spec);
    let all = async {
        for _ in 0..600 {
            if reader.counter("handled").await.unwrap() >= MESSAGES as i64 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    let all = all.await;
    // Let late redeliveries (of messages whose consumer died after its
    // settlement) show any second effect before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut reports = Vec::new();
    for running in lanes.into_iter().flatten() {
        reports.push(running.stop().await);
    }
    let handled = reader.counter("handled").await.unwrap();
    assert!(
        all,
        "{}: {handled} of {MESSAGES} handled; {reports:?}",
        spec.name
    );

    let by_region = reader.hash_counters("by_region").await.unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for message in &messages {
        *expected.entry(region(message)).or_default() += 1;
    }
    let interactions = reader.set("interactions").await.unwrap();
    let ids: BTreeSet<String> = messages
        .iter()
        .map(|m| m.interaction_id.to_string())
        .collect();
    let seen = external.seen.lock().unwrap().clone();
    let attempts: u32 = seen.values().sum();
    println!(
        "{}: {KILLS} kills; Redis-side effects: handled {handled}, by region {by_region:?}, \
         {} set members; external: {attempts} attempts on {} effect keys",
        spec.name,
        interactions.len(),
        seen.len()
    );
    assert_eq!(handled, MESSAGES as i64, "{}", spec.name);
    assert_eq!(by_region, expected, "{}", spec.name);
    assert_eq!(interactions, ids, "{}", spec.name);
    // Every message's effect key once, and more attempts than messages:
    // the kills made handlers repeat their external effect, which the
    // effect key let the other side refuse.
    assert_eq!(seen.len() as u64, MESSAGES, "{}", spec.name);
    assert!(
        u64::from(attempts) >= MESSAGES + u64::from(KILLS),
        "{}: {attempts} attempts",
        spec.name
    );
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let producer = channels::feedback::producer(&client);
    let first = producer.publish(&feedback(1)).await.unwrap();
    // Past the dedup window: the idempotency record is gone, so the same
    // event is published again as a new message with the same key.
    let mut raw = courier_suites::raw(&server).await;
    let spec = &channels::feedback::SPEC;
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
