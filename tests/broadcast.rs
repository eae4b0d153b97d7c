//! Broadcasts against a real `redis-server`: every live subscriber of a
//! `pubsub` channel gets each message (at most once); durable fan-out on a
//! stream, one consumer group per subscriber, gives an offline subscriber
//! everything once it returns, and a new one history from a point in time.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::{FeedbackEvent, Interaction};
use courier::{
    CancellationToken, ChannelSpec, Consumer, Delivery, Outcome, Producer, PublishOptions,
};
use courier_suites::{
    client, counting, eventually, feedback, interaction, quick, RedisServer, Running,
};

#[tokio::test]
async fn every_live_subscriber_gets_each_broadcast() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let token = CancellationToken::new();
    let mut runs = Vec::new();
    let counts: Vec<Arc<AtomicU32>> = (0..3).map(|_| Arc::new(AtomicU32::new(0))).collect();
    for count in &counts {
        let subscriber = channels::feedback::subscriber(&client);
        let (token, handler) = (token.clone(), counting::<FeedbackEvent>(count));
        runs.push(tokio::spawn(async move {
            subscriber.run_until(handler, token).await
        }));
    }
    // Subscribing takes a moment; broadcasts before it are missed by design.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let producer = channels::feedback::producer(&client);
    for n in 0..20 {
        producer.publish(&feedback(n)).await.unwrap();
    }
    let all = || counts.iter().all(|c| c.load(Ordering::SeqCst) == 20);
    assert!(eventually(Duration::from_secs(5), all).await, "{counts:?}");

    // A malformed broadcast is dead-lettered by each subscriber, which keeps going.
    let channel = client
        .keys(&channels::feedback::SPEC, None)
        .inbox(courier::Transport::Pubsub);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg("{not json")
        .query_async(&mut courier_suites::raw(&server).await)
        .await
        .unwrap();
    producer.publish(&feedback(99)).await.unwrap();
    let all = || counts.iter().all(|c| c.load(Ordering::SeqCst) == 21);
    assert!(eventually(Duration::from_secs(5), all).await, "{counts:?}");
    token.cancel();
    for run in runs {
        let report = run.await.unwrap().unwrap();
        assert_eq!(
            (report.received, report.done, report.dead),
            (22, 21, 1),
            "{report:?}"
        );
    }
    assert_eq!(
        client.dlq(&channels::feedback::SPEC).len().await.unwrap(),
        3
    );
}

/// A durable broadcast: a stream, read by one group per subscriber.
static DURABLE: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("durable_feedback"),
    partitions: None,
    max_depth: None,
    ..channels::intake::SPEC
};

#[tokio::test]
async fn a_durable_subscriber_offline_during_publishing_gets_everything_after() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &DURABLE);
    let analytics = Arc::new(AtomicU32::new(0));
    let audit = Arc::new(AtomicU32::new(0));
    // Both subscribers exist (their groups are created) before publishing.
    let live = Running::start(
        Consumer::<Interaction>::untyped(&client, &DURABLE, "analytics").with_options(quick()),
        counting(&analytics),
    );
    let offline = Running::start(
        Consumer::<Interaction>::untyped(&client, &DURABLE, "audit").with_options(quick()),
        counting(&audit),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    offline.kill().await;

    let batch: Vec<_> = (0..50).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    assert!(live.wait(Duration::from_secs(5), |r| r.done >= 50).await);
    assert_eq!(audit.load(Ordering::SeqCst), 0);

    // The audit subscriber returns (a new process, same group).
    let back = Running::start(
        Consumer::<Interaction>::untyped(&client, &DURABLE, "audit").with_options(quick()),
        counting(&audit),
    );
    assert!(back.wait(Duration::from_secs(5), |r| r.done >= 50).await);
    assert_eq!(
        (
            analytics.load(Ordering::SeqCst),
            audit.load(Ordering::SeqCst)
        ),
        (50, 50)
    );
    live.stop().await;
    back.stop().await;
}

#[tokio::test]
async fn a_new_subscriber_replays_from_a_point_in_time() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &DURABLE);
    for n in 0..5 {
        producer.publish(&interaction(n)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 5..8 {
        producer.publish(&interaction(n)).await.unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let latecomer =
        Consumer::<Interaction>::untyped(&client, &DURABLE, "latecomer").with_options(quick());
    latecomer.replay_from(since).await.unwrap();
    let report = courier_suites::run_until(
        latecomer,
        {
            let seen = seen.clone();
            move |d: Delivery<Interaction>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(courier_suites::first_version(&d.message).text.to_string());
                    Outcome::Done
                }
            }
        },
        Duration::from_secs(5),
        |r| r.done >= 3,
    )
    .await;
    assert_eq!(report.done, 3);
    assert_eq!(
        *seen.lock().unwrap(),
        ["Contact number 5", "Contact number 6", "Contact number 7"]
    );

    let queue = channels::billing::consumer(&client, "specialists");
    assert!(matches!(
        queue.replay_from(since).await,
        Err(courier::Error::NotSupported { .. })
    ));
}
