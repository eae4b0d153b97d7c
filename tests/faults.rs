//! Faults, each injected into real processes, judged by a history of every
//! publish, delivery and effect (`support::history`): a lost reply, Redis
//! unreachable, racing delayed-set movers, Redis killed and restarted with
//! each fsync policy, and raw corrupted entries on every transport.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use courier::{
    Backoff, ChannelSpec, Client, ConsumerOptions, DeadReason, DlqFilter, Durability, ErrorKind,
    Producer, PublishOptions, Transport,
};
use courier_suites::history::{number_of, publish, recording, History, Publish};
use courier_suites::proxy::{Mode, Proxy};
use courier_suites::{
    classifier, client, eventually, inject, interaction, namespace, raw, RedisOptions, RedisServer,
    Running,
};
use serde_json::json;

/// Intake with short timeouts and no partitions.
const SPEC: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("faults"),
    visibility_timeout: Duration::from_millis(800),
    max_attempts: 3,
    backoff: Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        multiplier: 2.0,
    },
    partitions: None,
    max_depth: None,
    rate_limit: None,
    ..channels::intake::SPEC
};

/// Entries of a stream, counted with a raw command.
async fn stream_length(server: &RedisServer, client: &Client, spec: &ChannelSpec) -> u64 {
    redis::cmd("XLEN")
        .arg(client.keys(spec, None).stream())
        .query_async(&mut raw(server).await)
        .await
        .unwrap()
}

/// Fault 5: Redis wrote the message, the reply never reached the producer
/// (the proxy swallowed it and cut the connection). The producer's retry
/// with the same idempotency key finds its own write: one entry, and the
/// publish is acknowledged as written, not as a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_publish_reply_retried_with_the_same_key_leaves_one_entry() {
    let server = RedisServer::must_start();
    let proxy = Proxy::start(server.port()).await;
    let client = Client::connect(&proxy.url(), &namespace()).await.unwrap();
    let producer = Producer::untyped(&client, &SPEC);
    let history = History::default();
    // Warm up: scripts loaded, so the dropped reply is of a real write.
    publish(&producer, &history, 1, &PublishOptions::default())
        .await
        .unwrap();
    proxy.set(Mode::DropNextReply);
    let published = producer.publish(&interaction(2)).await.unwrap();
    assert!(proxy.dropped(), "the proxy never dropped a reply");
    assert!(
        !published.duplicate,
        "a resend of our own write is ours: {published:?}"
    );
    assert_eq!(stream_length(&server, &client, &SPEC).await, 2);
    // The same message again is a duplicate, with the first id.
    let again = producer.publish(&interaction(2)).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, published.id);
    assert_eq!(stream_length(&server, &client, &SPEC).await, 2);
}

/// Fault 8: Redis unreachable for 5 s. A producer that may not wait gets a
/// typed transient error; one that retries long enough succeeds once
/// Redis is back; a running consumer resumes by itself. Nothing
/// acknowledged is lost; a message whose handler finished just as the
/// network went away may take effect again (at least once).
#[tokio::test(flavor = "multi_thread")]
async fn five_seconds_without_redis_lose_nothing_and_consumers_resume() {
    let server = RedisServer::must_start();
    let proxy = Proxy::start(server.port()).await;
    let client = Client::connect(&proxy.url(), &namespace()).await.unwrap();
    let producer = Producer::untyped(&client, &SPEC);
    let history = Arc::new(History::default());
    let running = Running::start(classifier(&client, &SPEC), recording(&history));
    for n in 1..=50 {
        publish(&producer, &history, n, &PublishOptions::default())
            .await
            .unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || history.check().lost.is_empty()).await);

    proxy.set(Mode::Refuse);
    let cut = Instant::now();
    // Not allowed to wait: a typed error, right away.
    let impatient = PublishOptions {
        retry_for: Some(Duration::from_millis(300)),
        ..PublishOptions::default()
    };
    let e = publish(&producer, &history, 51, &impatient)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    // Allowed to wait past the outage: it goes through.
    let patient = PublishOptions {
        retry_for: Some(Duration::from_secs(20)),
        ..PublishOptions::default()
    };
    let waiting = {
        let (producer, history) = (producer.clone(), history.clone());
        tokio::spawn(async move {
            for n in 52..=60 {
                publish(&producer, &history, n, &patient).await.unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut.elapsed())).await;
    proxy.set(Mode::Pass);
    waiting.await.unwrap();
    for n in 61..=80 {
        publish(&producer, &history, n, &PublishOptions::default())
            .await
            .unwrap();
    }
    let drained = eventually(Duration::from_secs(20), || {
        let verdict = history.check();
        verdict.lost.is_empty() && verdict.acknowledged == 79
    })
    .await;
    running.stop().await;
    let verdict = history.check();
    assert!(drained, "the consumer did not resume: {verdict:?}");
    // A handler that finished as the network went away could not settle
    // within its visibility timeout, so its message is handled again:
    // at-least-once, at most one repeat per handler in flight at the cut.
    println!("duplicates across the outage: {:?}", verdict.duplicates);
    verdict.assert_within(0, courier_suites::quick().concurrency);
}

/// Fault 6: four consumers' delayed-set movers race over the same due
/// messages; each message is promoted exactly once (the stream holds each
/// once) and handled once.
#[tokio::test(flavor = "multi_thread")]
async fn four_racing_delayed_set_movers_promote_each_message_once() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &SPEC);
    let history = Arc::new(History::default());
    let delayed = PublishOptions {
        delay: Some(Duration::from_millis(500)),
        ..PublishOptions::default()
    };
    for n in 1..=200 {
        publish(&producer, &history, n, &delayed).await.unwrap();
    }
    assert_eq!(stream_length(&server, &client, &SPEC).await, 0);
    let movers: Vec<Running> = (0..4)
        .map(|_| {
            Running::start(
                classifier(&client, &SPEC).with_options(ConsumerOptions {
                    poll_interval: Duration::from_millis(5),
                    ..courier_suites::quick()
                }),
                recording(&history),
            )
        })
        .collect();
    let drained = eventually(Duration::from_secs(10), || history.check().lost.is_empty()).await;
    for mover in movers {
        mover.stop().await;
    }
    assert!(drained, "{:?}", history.check());
    assert_eq!(stream_length(&server, &client, &SPEC).await, 200);
    history.check().assert_clean();
}

/// Fault 7: Redis SIGKILLed mid-stream and restarted from its append-only
/// file. With `appendfsync always` no acknowledged publish is lost. With
/// `everysec` the loss is measured and printed; it is bounded by the last
/// second or so of acknowledged writes before the kill.
#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_and_restarted_keeps_every_acknowledged_publish_with_fsync_always() {
    let lost = kill_redis_while_publishing("always").await;
    assert!(lost.is_empty(), "lost with appendfsync always: {lost:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_with_fsync_everysec_loses_at_most_the_last_second() {
    let lost = kill_redis_while_publishing("everysec").await;
    // A SIGKILL of the process leaves what Redis wrote to its AOF in the
    // kernel's page cache, so this is usually 0; everysec's window (up to
    // a second) is for a crash of the machine, which a test cannot make.
    println!(
        "appendfsync everysec: {} acknowledged publishes lost to a SIGKILL of redis-server",
        lost.len()
    );
    // Lost ones must be the newest: acknowledged within about a second of
    // the kill (the tail of the sequence).
    for (n, age) in &lost {
        assert!(
            *age <= Duration::from_millis(2500),
            "message {n} acknowledged {age:?} before the kill was lost"
        );
    }
}

/// Publishes a steady stream, SIGKILLs Redis, restarts it, and returns the
/// acknowledged messages missing afterwards, with how long before the kill
/// each was acknowledged.
async fn kill_redis_while_publishing(fsync: &str) -> Vec<(u64, Duration)> {
    let mut server = RedisServer::start_with(RedisOptions::default().with_aof(fsync)).unwrap();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &SPEC);
    let history = Arc::new(History::default());
    let acknowledged_at = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (producer, history, acknowledged_at, stop) = (
            producer.clone(),
            history.clone(),
            acknowledged_at.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let options = PublishOptions {
                retry_for: Some(Duration::from_millis(200)),
                ..PublishOptions::default()
            };
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                if publish(&producer, &history, n, &options).await.is_ok() {
                    acknowledged_at.lock().unwrap().insert(n, Instant::now());
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    publishing.await.unwrap();
    server.start_again().unwrap();
    // What is in the stream now, by message number.
    let mut conn = raw(&server).await;
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(client.keys(&SPEC, None).stream())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let present: std::collections::HashSet<u64> = entries
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("m"))
        .map(|m| {
            let envelope: serde_json::Value = serde_json::from_str(&m).unwrap();
            number_of(envelope["payload"]["interaction_id"].as_str().unwrap())
        })
        .collect();
    let acknowledged = history.acknowledged();
    assert!(
        acknowledged.len() > 100,
        "too few publishes to judge: {}",
        acknowledged.len()
    );
    let at = acknowledged_at.lock().unwrap();
    acknowledged
        .into_iter()
        .filter(|n| !present.contains(n))
        .map(|n| (n, killed.saturating_duration_since(at[&n])))
        .collect()
}

/// Fault 9: raw corrupted entries written straight into each transport's
/// queue (random bytes, truncated JSON, a huge payload, an envelope of a
/// wrong version) all reach the DLQ with their reason, and the consumer
/// goes on to handle the good message after them.
/// Replicated durability on one server: with no replica, a publish is
/// refused as transient (`WAIT` saw 0 of 1) though written once on the
/// primary; once a replica is attached, the retry with the same key is
/// acknowledged as that same message and new publishes go through.
#[tokio::test(flavor = "multi_thread")]
async fn a_replicated_publish_waits_for_its_replica() {
    static REPLICATED: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("faults_replicated"),
        durability: Durability::Replicated {
            replicas: 1,
            timeout: Duration::from_millis(200),
        },
        ..SPEC
    };
    let primary = RedisServer::must_start();
    let client = client(&primary).await;
    let producer = Producer::untyped(&client, &REPLICATED);
    let at_once = PublishOptions {
        retry_for: Some(Duration::ZERO),
        ..PublishOptions::default()
    };
    let started = Instant::now();
    let e = producer
        .publish_with(&interaction(1), &at_once)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            courier::Error::NotReplicated {
                confirmed: 0,
                replicas: 1,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("faults_replicated"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(stream_length(&primary, &client, &REPLICATED).await, 1);

    let replica = RedisServer::start_with(RedisOptions {
        args: vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port().to_string(),
        ],
        ..RedisOptions::default()
    })
    .unwrap();
    let synced = eventually(Duration::from_secs(10), || {
        replica
            .command_text("INFO replication")
            .is_ok_and(|info| info.contains("master_link_status:up"))
    })
    .await;
    assert!(synced, "the replica did not sync");
    // Retried as the error advises (a busy machine may take longer than
    // 200 ms to confirm): the same key is acknowledged as that message.
    let patient = PublishOptions {
        retry_for: Some(Duration::from_secs(10)),
        ..PublishOptions::default()
    };
    let again = producer
        .publish_with(&interaction(1), &patient)
        .await
        .unwrap();
    assert!(again.duplicate, "{again:?}");
    let next = producer
        .publish_with(&interaction(2), &patient)
        .await
        .unwrap();
    assert!(!next.duplicate);
    assert_eq!(stream_length(&primary, &client, &REPLICATED).await, 2);
    // The replica has both: what was acknowledged survives the primary.
    assert_eq!(
        replica
            .command(&format!("XLEN {}", client.keys(&REPLICATED, None).stream()))
            .unwrap(),
        ":2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_corrupted_entries_are_dead_lettered_on_every_transport() {
    static STREAM: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("corrupt_stream"),
        ..SPEC
    };
    static LIST: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("corrupt_list"),
        transport: Transport::List,
        ..SPEC
    };
    static PRIORITY: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("corrupt_priority"),
        transport: Transport::Priority,
        ..SPEC
    };
    let server = RedisServer::must_start();
    for spec in [&STREAM, &LIST, &PRIORITY] {
        let client = client(&server).await;
        let random: Vec<u8> = (0..200).map(|_| fastrand::u8(..)).collect();
        inject(&server, &client, spec, random.as_slice()).await;
        inject(
            &server,
            &client,
            spec,
            "{\"schema\": \"contact_center.interaction\", \"ver",
        )
        .await;
        let mut huge = serde_json::to_value(interaction(1)).unwrap();
        huge["text"] = json!("x".repeat(1 << 20));
        let envelope = |version: u32, payload: serde_json::Value, key: &str| {
            json!({
                "schema": "contact_center.interaction", "version": version,
                "id": courier_suites::uuid(7), "key": key,
                "created_at": "2026-11-28T09:00:00Z", "expires_at": "2999-01-01T00:00:00Z",
                "attempt": 1, "producer": "corrupter", "payload": payload
            })
            .to_string()
        };
        inject(&server, &client, spec, envelope(1, huge, "huge")).await;
        let good = serde_json::to_value(interaction(2)).unwrap();
        inject(&server, &client, spec, envelope(7, good, "wrong-version")).await;
        Producer::untyped(&client, spec)
            .publish(&interaction(3))
            .await
            .unwrap();

        let history = Arc::new(History::default());
        history.attempted(3);
        history.published(3, Publish::Acknowledged);
        let running = Running::start(classifier(&client, spec), recording(&history));
        let dlq = client.dlq(spec);
        let settled = eventually(Duration::from_secs(10), || {
            history.check().lost.is_empty() && running.stats.snapshot().dead >= 4
        })
        .await;
        let report = running.stop().await;
        assert!(settled, "{}: {report:?}", spec.name);
        history.check().assert_clean();
        let letters = dlq.list(&DlqFilter::default()).await.unwrap();
        let mut reasons: Vec<DeadReason> = letters.iter().map(|l| l.reason).collect();
        reasons.sort_by_key(|r| r.as_str());
        assert_eq!(
            reasons,
            [
                DeadReason::InvalidPayload,
                DeadReason::InvalidPayload,
                DeadReason::InvalidPayload,
                DeadReason::VersionUnsupported
            ],
            "{}: {letters:#?}",
            spec.name
        );
    }
}
