//! `Client::channel_state` against real `redis-server` processes, per
//! transport: a stream group with pending entries (and Redis's nil lag), a
//! list and a priority queue with a held message, a partitioned channel,
//! dead letters, delayed messages and the pause. Deliveries the state must
//! count are made with raw commands where that makes them exact.

use std::borrow::Cow;
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::{Interaction, InteractionV1};
use courier::{
    CancellationToken, ChannelSpec, Client, Consumer, ConsumerOptions, Delivery, Outcome, Producer,
    Transport,
};
use courier_suites::{client, inject, interaction, quick, raw, uuid, RedisServer, Running};
use serde_json::json;

const STREAM: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("state_stream"),
    visibility_timeout: Duration::from_millis(600),
    partitions: None,
    max_depth: None,
    rate_limit: None,
    ..channels::intake::SPEC
};

const LIST: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("state_list"),
    transport: Transport::List,
    visibility_timeout: Duration::from_millis(600),
    sla: None,
    ..STREAM
};

static PRIORITY: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("state_priority"),
    transport: Transport::Priority,
    ..LIST
};

/// Partitioned by region: amer, emea, apac.
static REGIONS: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("state_regions"),
    partitions: channels::intake::SPEC.partitions,
    ..STREAM
};

fn in_region(n: u64, region: &str) -> InteractionV1 {
    serde_json::from_value(json!({
        "interaction_id": uuid(n), "customer_id": "C0000001", "region": region,
        "medium": "chat", "text": format!("{n}"), "received_at": "2026-11-28T09:00:00Z"
    }))
    .unwrap()
}

async fn publish(client: &Client, spec: &'static ChannelSpec, numbers: std::ops::Range<u64>) {
    let producer = Producer::untyped(client, spec);
    for n in numbers {
        producer.publish(&interaction(n)).await.unwrap();
    }
}

/// A consumer that takes one message at a time and holds it until
/// `release` is cancelled.
fn holding(client: &Client, spec: &'static ChannelSpec, release: &CancellationToken) -> Running {
    let release = release.clone();
    let options = ConsumerOptions {
        concurrency: 1,
        batch: 1,
        ..quick()
    };
    Running::start(
        Consumer::<Interaction>::untyped(client, spec, "workers").with_options(options),
        move |_d: Delivery<Interaction>| {
            let release = release.clone();
            async move {
                release.cancelled().await;
                Outcome::Done
            }
        },
    )
}

#[tokio::test]
async fn a_stream_group_counts_lag_pending_and_live_consumers() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let keys = client.keys(&STREAM, None);
    let stream = keys.stream();
    publish(&client, &STREAM, 0..5).await;
    // Group `g` is delivered two of the five; `audit` joins at the end.
    let mut conn = raw(&server).await;
    for (group, at) in [("g", "0"), ("audit", "$")] {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(group)
            .arg(at)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c1")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();

    let state = client.channel_state(&STREAM, Some("g")).await.unwrap();
    assert_eq!(state.group.as_deref(), Some("g"));
    assert_eq!(state.partitions.len(), 1);
    let f = &state.total;
    assert_eq!(f.waiting, Some(3), "{f:?}");
    assert_eq!(f.lag, Some(3));
    assert_eq!(f.held, Some(2));
    assert_eq!(f.stored, 5);
    assert_eq!(f.backlog(), 5);
    assert!(f.oldest.is_some());
    assert_eq!(f.consumers, 0, "c1 has no heartbeat");
    assert_eq!(f.lost_by_trim, Some(0));
    assert_eq!((f.delayed, f.dead), (0, 0));
    assert!(f.memory_bytes.unwrap() > 0);
    assert_eq!(state.partitions[0].figures, state.total);

    // The caught-up group waits for nothing.
    let audit = client.channel_state(&STREAM, Some("audit")).await.unwrap();
    assert_eq!(
        (audit.total.waiting, audit.total.held, audit.total.oldest),
        (Some(0), Some(0), None)
    );
    // Every group: the slowest decides what waits; pending is everyone's.
    let every = client.channel_state(&STREAM, None).await.unwrap();
    assert_eq!((every.total.waiting, every.total.held), (Some(3), Some(2)));
    // A group not created yet starts at the stream's start.
    let later = client.channel_state(&STREAM, Some("later")).await.unwrap();
    assert_eq!((later.total.waiting, later.total.lag), (Some(5), Some(5)));

    // c1 beats: it counts as live.
    let _: () = redis::cmd("SET")
        .arg(keys.alive("c1"))
        .arg(1)
        .arg("PX")
        .arg(10_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let state = client.channel_state(&STREAM, Some("g")).await.unwrap();
    assert_eq!(state.total.consumers, 1);
}

#[tokio::test]
async fn a_stream_lag_redis_cannot_tell_is_estimated() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let stream = client.keys(&STREAM, None).stream();
    publish(&client, &STREAM, 0..5).await;
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c1")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(read.keys[0].ids.len(), 2);
    // Deleting an undelivered entry leaves Redis unable to count the lag.
    let all: Vec<(String, redis::Value)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: u64 = redis::cmd("XDEL")
        .arg(&stream)
        .arg(&all[3].0)
        .query_async(&mut conn)
        .await
        .unwrap();
    let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(groups.groups[0].lag, None, "Redis reports the lag as nil");

    let state = client.channel_state(&STREAM, Some("g")).await.unwrap();
    // Two entries wait; the estimate counts the deleted one too (5 added,
    // 2 read), never more than the 4 stored.
    assert_eq!(state.total.lag, Some(3));
    assert_eq!(state.total.held, Some(2));

    // Delivered to the end, the group waits for nothing, exactly.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c1")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let state = client.channel_state(&STREAM, Some("g")).await.unwrap();
    assert_eq!((state.total.lag, state.total.held), (Some(0), Some(4)));
}

/// A running stream consumer beats; once killed, it stops counting when
/// its heartbeat expires.
#[tokio::test]
async fn a_running_stream_consumer_is_live_until_its_heartbeat_expires() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    publish(&client, &STREAM, 0..3).await;
    let release = CancellationToken::new();
    let running = holding(&client, &STREAM, &release);
    let mut state = None;
    let live = poll(&client, &STREAM, Some("workers"), &mut state, |s| {
        s.total.consumers == 1 && s.total.held == Some(1)
    })
    .await;
    assert!(live, "{state:#?}");
    let s = state.take().unwrap();
    assert_eq!(s.total.waiting, Some(2));
    running.kill().await;
    let gone = poll(&client, &STREAM, Some("workers"), &mut state, |s| {
        s.total.consumers == 0
    })
    .await;
    assert!(gone, "{state:#?}");
}

/// Reads the state every 50 ms until `done` holds (true) or 5 s pass;
/// the last state read is left in `last`.
async fn poll(
    client: &Client,
    spec: &ChannelSpec,
    group: Option<&str>,
    last: &mut Option<courier::ChannelState>,
    done: impl Fn(&courier::ChannelState) -> bool,
) -> bool {
    let started = std::time::Instant::now();
    loop {
        let state = client.channel_state(spec, group).await.unwrap();
        let ok = done(&state);
        *last = Some(state);
        if ok {
            return true;
        }
        if started.elapsed() > Duration::from_secs(5) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A list or priority consumer holding one message of three: one held,
/// two waiting, one live consumer; settled, nothing left.
async fn one_held(spec: &'static ChannelSpec) {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    publish(&client, spec, 0..3).await;
    let before = client.channel_state(spec, None).await.unwrap();
    assert_eq!(
        (
            before.total.waiting,
            before.total.held,
            before.total.consumers
        ),
        (Some(3), Some(0), 0)
    );
    assert!(before.total.oldest.is_some());
    assert_eq!(before.total.lag, None);
    assert_eq!(before.total.lost_by_trim, None);
    assert_eq!(
        before.total.sla_breaches,
        (spec.transport == Transport::Priority).then_some(0)
    );

    let release = CancellationToken::new();
    let running = holding(&client, spec, &release);
    let mut state = None;
    let held = poll(&client, spec, None, &mut state, |s| {
        s.total.held == Some(1) && s.total.consumers == 1
    })
    .await;
    assert!(held, "{state:#?}");
    let s = state.take().unwrap();
    assert_eq!((s.total.waiting, s.total.stored), (Some(2), 2));
    assert_eq!(s.total.backlog(), 3);

    release.cancel();
    let drained = poll(&client, spec, None, &mut state, |s| s.total.backlog() == 0).await;
    assert!(drained, "{state:#?}");
    running.stop().await;
}

#[tokio::test]
async fn a_list_counts_what_its_consumers_hold() {
    one_held(&LIST).await;
}

#[tokio::test]
async fn a_priority_queue_counts_what_its_consumers_hold() {
    one_held(&PRIORITY).await;
}

#[tokio::test]
async fn a_partitioned_channel_has_one_state_per_partition_and_their_sum() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &REGIONS);
    for (n, region) in [(1, "emea"), (2, "emea"), (3, "apac")] {
        producer.publish(&in_region(n, region)).await.unwrap();
    }
    let state = client.channel_state(&REGIONS, Some("g")).await.unwrap();
    let per: Vec<(Option<&str>, Option<u64>)> = state
        .partitions
        .iter()
        .map(|p| (p.partition.as_deref(), p.figures.waiting))
        .collect();
    assert_eq!(
        per,
        [
            (Some("amer"), Some(0)),
            (Some("emea"), Some(2)),
            (Some("apac"), Some(1))
        ]
    );
    assert_eq!(state.total.waiting, Some(3));
    assert_eq!(state.total.stored, 3);
    assert_eq!(state.partitions[0].figures.oldest, None);
    assert_eq!(
        state.total.oldest,
        state
            .partitions
            .iter()
            .filter_map(|p| p.figures.oldest)
            .max()
    );
}

#[tokio::test]
async fn dead_letters_delayed_messages_and_the_pause_show() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &LIST);
    producer
        .publish_in(&interaction(1), Duration::from_secs(3600))
        .await
        .unwrap();
    inject(&server, &client, &LIST, "not an envelope").await;
    let state = client.channel_state(&LIST, None).await.unwrap();
    assert_eq!((state.total.delayed, state.total.waiting), (1, Some(1)));
    assert!(!state.paused);
    assert_eq!(state.dependency, None);

    // A consumer dead-letters the corrupt message.
    let running = Running::start(
        Consumer::<Interaction>::untyped(&client, &LIST, "workers").with_options(quick()),
        |_d: Delivery<Interaction>| async { Outcome::Done },
    );
    assert!(running.wait(Duration::from_secs(5), |r| r.dead == 1).await);
    running.stop().await;
    let state = client.channel_state(&LIST, None).await.unwrap();
    assert_eq!(state.total.dead, 1);
    assert_eq!(state.total.delayed, 1, "not due for an hour");
    assert_eq!(state.total.backlog(), 0);

    client.pause(&LIST).await.unwrap();
    assert!(client.channel_state(&LIST, None).await.unwrap().paused);
    client.resume(&LIST).await.unwrap();
    assert!(!client.channel_state(&LIST, None).await.unwrap().paused);
}

#[tokio::test]
async fn a_pubsub_channel_counts_subscribers_only() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let state = client
        .channel_state(&channels::feedback::SPEC, None)
        .await
        .unwrap();
    let f = &state.total;
    assert_eq!(
        (f.waiting, f.held, f.lag, f.oldest),
        (None, None, None, None)
    );
    assert_eq!((f.consumers, f.stored, f.memory_bytes), (0, 0, None));
}
