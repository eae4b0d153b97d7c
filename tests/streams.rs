//! What only the `stream` transport does, against real `redis-server`
//! processes: reclaiming with fencing, poison detection by delivery count,
//! entries trimmed while pending, skipping handled keys, surviving a Redis
//! restart, ACL users and TLS. The reliability suite every transport
//! passes is in `queues.rs`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use contact_center_contracts::Interaction;
use courier::{
    Backoff, ChannelSpec, ConsumerOptions, DeadReason, Delivery, DlqFilter, Error, Outcome,
    Producer, PublishOptions,
};
use courier_suites::{
    classifier, client, counting, inject, interaction, quick, raw, run_until, task_for,
    RedisServer, Running,
};

/// The intake channel with short timeouts, so failures show within a test.
static INTAKE: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("intake_test"),
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

/// A stream of classified tasks, for batches of another message type.
static TASKS: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("batch_tasks"),
    transport: courier::Transport::Stream,
    dependency: None,
    ..channels::billing::SPEC
};

/// A consumer of the classifier group reads the stream's first entry and
/// dies without settling it; returns the entry id.
async fn read_and_crash(conn: &mut redis::aio::MultiplexedConnection, stream: &str) -> String {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("classifier")
        .arg("0")
        .query_async(conn)
        .await
        .unwrap();
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("classifier")
        .arg("crashed")
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(conn)
        .await
        .unwrap();
    read.keys[0].ids[0].id.clone()
}

#[tokio::test]
async fn a_late_acknowledgement_after_a_takeover_is_refused() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    Producer::untyped(&client, &INTAKE)
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
async fn work_survives_a_redis_restart() {
    let mut server =
        RedisServer::start_with(courier_suites::RedisOptions::default().with_aof("always"))
            .unwrap();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &INTAKE);
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
async fn a_message_whose_key_is_done_is_acknowledged_and_skipped() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &INTAKE);
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
    inject(&server, &client, &INTAKE, &copy).await;
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
    Producer::untyped(&client, &INTAKE)
        .publish(&interaction(1))
        .await
        .unwrap();
    let stream = client.keys(&INTAKE, None).stream();
    let mut conn = raw(&server).await;
    // Consumers that crashed on it again and again: delivered 3 times.
    let id = read_and_crash(&mut conn, &stream).await;
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
        !Producer::untyped(&client, &INTAKE)
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
        ..Default::default()
    };
    let client = courier::Client::connect_with(&url, &courier_suites::namespace(), &options)
        .await
        .unwrap();
    let producer = Producer::untyped(&client, &INTAKE);
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
    // Trusting another CA, it is refused too.
    let wrong = courier::ConnectOptions {
        tls_ca_file: Some(courier_testkit::other_ca_file()),
        ..Default::default()
    };
    let err = courier::Client::connect_with(&url, "t", &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    // A plaintext client on the TLS port gets nowhere.
    let plaintext = url.replacen("rediss://", "redis://", 1);
    let err = courier::Client::connect(&plaintext, "t").await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let missing = courier::ConnectOptions {
        tls_ca_file: Some("/nonexistent/ca.crt".into()),
        ..Default::default()
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
    Producer::untyped(&client, &INTAKE)
        .publish(&interaction(1))
        .await
        .unwrap();
    let stream = client.keys(&INTAKE, None).stream();
    let mut conn = raw(&server).await;
    // A consumer reads it and dies; then the stream is trimmed past it.
    read_and_crash(&mut conn, &stream).await;
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
    // Recorded in Redis too, where `courier status` reads it.
    let recorded: Option<u64> = redis::cmd("GET")
        .arg(client.keys(&INTAKE, None).lost_by_trim())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(recorded, Some(1));
}

/// The names in the classifier group of `stream`, by raw `XINFO`.
async fn group_consumers(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> Vec<String> {
    let reply: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg("classifier")
        .query_async(conn)
        .await
        .unwrap();
    let mut names: Vec<String> = reply.consumers.into_iter().map(|c| c.name).collect();
    names.sort();
    names
}

/// Polls the group's consumers every 50 ms until `done` holds, up to
/// `limit`; returns the last list seen.
async fn wait_for_consumers(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let names = group_consumers(conn, stream).await;
        if done(&names) || started.elapsed() >= limit {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn consumers_that_are_gone_are_removed_from_the_group() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &INTAKE);
    let batch: Vec<_> = (0..20).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    // Three consumers take one message each and hang in their handler.
    let one_at_a_time = ConsumerOptions {
        concurrency: 1,
        batch: 1,
        ..quick()
    };
    let mut doomed = Vec::new();
    for _ in 0..3 {
        let consumer = classifier(&client, &INTAKE).with_options(one_at_a_time.clone());
        let running = Running::start(consumer, |_d: Delivery<Interaction>| async {
            std::future::pending::<Outcome>().await
        });
        assert!(
            running
                .wait(Duration::from_secs(5), |r| r.delivered == 1)
                .await
        );
        doomed.push(running);
    }
    // They die as a crash would: no settlement, no cleanup.
    for running in doomed {
        running.kill().await;
    }
    let calls = Arc::new(AtomicU32::new(0));
    let live: Vec<_> = (0..2).map(|_| classifier(&client, &INTAKE)).collect();
    let mut live_names: Vec<String> = live.iter().map(|c| c.name().to_string()).collect();
    live_names.sort();
    let live: Vec<_> = live
        .into_iter()
        .map(|c| Running::start(c, counting(&calls)))
        .collect();
    let stream = client.keys(&INTAKE, None).stream();
    let mut conn = raw(&server).await;
    let all =
        wait_for_consumers(&mut conn, &stream, Duration::from_secs(5), |n| n.len() == 5).await;
    assert_eq!(all.len(), 5, "{all:?}");
    // The survivors reclaim the dead ones' messages after the visibility
    // timeout, then remove them once idle for three timeouts.
    assert!(
        courier_suites::eventually(Duration::from_secs(10), || {
            calls.load(Ordering::SeqCst) >= 20
        })
        .await
    );
    let left = wait_for_consumers(&mut conn, &stream, Duration::from_secs(10), |n| {
        n == live_names.as_slice()
    })
    .await;
    assert_eq!(left, live_names);
    // Live consumers stay, though idle past the bound with nothing to read.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(group_consumers(&mut conn, &stream).await, live_names);
    for running in live {
        running.stop().await;
    }
}

/// A Redis restart resets every consumer's idle time in a group (Redis
/// 7.0 keeps none across one), which must not keep gone consumers listed:
/// what courier measures is how long since each beat (its `seen` key,
/// whose TTL survives the restart). Consumers stopped 2.5 s before a
/// restart, with a horizon of 3 s, are removed within 2.5 s after it, not
/// 3 s after it as the group's idle times would have it.
#[tokio::test]
async fn gone_consumers_are_removed_after_a_redis_restart_on_time() {
    static SLOW: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("intake_forget"),
        visibility_timeout: Duration::from_secs(1),
        partitions: None,
        max_depth: None,
        ..channels::intake::SPEC
    };
    let mut server =
        RedisServer::start_with(courier_suites::RedisOptions::default().with_aof("always"))
            .unwrap();
    let namespace = courier_suites::namespace();
    let client = courier::Client::connect(&server.url(), &namespace)
        .await
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let mut gone: Vec<String> = Vec::new();
    let producer = Producer::untyped(&client, &SLOW);
    for n in 0..3 {
        // Each reads a message, which makes it a member of the group.
        producer.publish(&interaction(n)).await.unwrap();
        let consumer = classifier(&client, &SLOW);
        gone.push(consumer.name().to_string());
        let running = Running::start(consumer, counting(&calls));
        assert!(running.wait(Duration::from_secs(5), |r| r.done == 1).await);
        running.stop().await;
    }
    gone.sort();
    let stream = client.keys(&SLOW, None).stream();
    let mut conn = raw(&server).await;
    assert_eq!(group_consumers(&mut conn, &stream).await, gone);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    server.start_again().unwrap();
    let restarted = Instant::now();
    let mut conn = raw(&server).await;
    assert_eq!(
        group_consumers(&mut conn, &stream).await,
        gone,
        "the group survives the restart (AOF)"
    );
    let client = courier::Client::connect(&server.url(), &namespace)
        .await
        .unwrap();
    let running = Running::start(classifier(&client, &SLOW), counting(&calls));
    let left = wait_for_consumers(&mut conn, &stream, Duration::from_millis(2500), |n| {
        !n.iter().any(|name| gone.contains(name))
    })
    .await;
    let took = restarted.elapsed();
    running.stop().await;
    assert!(
        !left.iter().any(|name| gone.contains(name)),
        "still listed {took:?} after the restart: {left:?}"
    );
}

/// With `read_ahead`, a consumer reads beyond its free handler slots. A
/// message read ahead that waits half its visibility timeout for a slot is
/// not started (another consumer could reclaim it meanwhile, and act on it
/// too): it is taken back by recovery and handled then, once.
#[tokio::test]
async fn a_message_read_ahead_that_waits_too_long_is_recovered_and_handled_once() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &INTAKE);
    for i in 0..4 {
        producer.publish(&interaction(i)).await.unwrap();
    }
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    // One handler slot, four messages per read, 200 ms a message: the
    // third and fourth wait 400 and 600 ms, past half of INTAKE's 600 ms.
    let consumer = classifier(&client, &INTAKE).with_options(ConsumerOptions {
        concurrency: 1,
        batch: 4,
        read_ahead: 3,
        ..quick()
    });
    let running = {
        let handled = handled.clone();
        Running::start(consumer, move |delivery: Delivery<Interaction>| {
            let handled = handled.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let Interaction::V1(message) = &delivery.message;
                handled
                    .lock()
                    .unwrap()
                    .push(message.interaction_id.to_string());
                Outcome::Done
            }
        })
    };
    assert!(
        running.wait(Duration::from_secs(10), |r| r.done >= 4).await,
        "{:?}",
        running.stats.snapshot()
    );
    let report = running.stop().await;
    let handled = handled.lock().unwrap().clone();
    let distinct: std::collections::HashSet<_> = handled.iter().collect();
    assert_eq!((handled.len(), distinct.len()), (4, 4), "{handled:?}");
    assert_eq!((report.done, report.dead), (4, 0), "{report:?}");
    assert!(
        report.delivered > 4,
        "messages that waited too long were delivered again: {report:?}"
    );
}

/// A batch over 500 goes 500 per round trip, the next 500 encoded while
/// Redis writes the last: each message is written once, in order, and each
/// answer is its message's. A message that breaks its schema stops the
/// call before its 500 are sent; the 500s before it are written, and
/// calling again with the same batch writes only the rest.
#[tokio::test]
async fn a_large_batch_is_sent_in_rounds_and_stops_before_an_invalid_message() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let mut conn = raw(&server).await;
    let stream = client.keys(&TASKS, None).stream();
    let producer = Producer::untyped(&client, &TASKS);
    let mut batch: Vec<_> = (0..1_100).map(task_for).collect();
    // The generated type lets a confidence over 1 through; the schema does not.
    batch[1_050].confidence = 1.5;

    let err = producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("/confidence: 1.5 is greater than the maximum 1"),
        "{err}"
    );
    let written: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(written, 1_000, "the two rounds before the invalid message");

    batch[1_050].confidence = 0.5;
    let published = producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    assert_eq!(published.len(), 1_100);
    assert!(published[..1_000].iter().all(|p| p.duplicate));
    assert!(published[1_000..].iter().all(|p| !p.duplicate));

    // The stream holds the 1,100 in the batch's order, and each answer
    // names its own message's entry.
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ids: Vec<String> = entries
        .ids
        .iter()
        .map(|entry| {
            let text: String = entry.get("m").unwrap();
            let envelope = courier::Envelope::from_json(&text).unwrap();
            assert_eq!(envelope.schema, "contact_center.classified_task");
            envelope.id
        })
        .collect();
    let answered: Vec<String> = published.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, answered);
}

/// A message scheduled far ahead keeps the delayed set alive: a nearer one
/// published later, or a retry put on the set, never shortens the set's
/// life below what the far one needs (it would be lost with the set).
#[tokio::test]
async fn a_nearer_schedule_or_a_retry_never_shortens_the_delayed_set_s_life() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let mut conn = raw(&server).await;
    let delayed = client.keys(&INTAKE, None).delayed();
    let ttl = |conn: &mut redis::aio::MultiplexedConnection| {
        let delayed = delayed.clone();
        let mut conn = conn.clone();
        async move {
            let ms: i64 = redis::cmd("PTTL")
                .arg(&delayed)
                .query_async(&mut conn)
                .await
                .unwrap();
            ms
        }
    };
    let producer = Producer::untyped(&client, &INTAKE);
    let far = Duration::from_secs(48 * 3600);
    producer.publish_in(&interaction(1), far).await.unwrap();
    let needed = ttl(&mut conn).await;
    assert!(needed > far.as_millis() as i64, "{needed}");

    producer
        .publish_in(&interaction(2), Duration::from_millis(300))
        .await
        .unwrap();
    let after_near = ttl(&mut conn).await;
    assert!(after_near > needed - 5_000, "{after_near} < {needed}");

    // The near one comes due, fails once and goes back on the set.
    let attempts = Arc::new(AtomicU32::new(0));
    let running = Running::start(classifier(&client, &INTAKE), {
        let attempts = attempts.clone();
        move |_d: Delivery<Interaction>| {
            let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Outcome::retry("not yet")
                } else {
                    Outcome::Done
                }
            }
        }
    });
    assert!(
        running.wait(Duration::from_secs(10), |r| r.done >= 1).await,
        "{:?}",
        running.stats.snapshot()
    );
    running.stop().await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let after_retry = ttl(&mut conn).await;
    assert!(after_retry > needed - 15_000, "{after_retry} < {needed}");
    let waiting: u64 = redis::cmd("ZCARD")
        .arg(&delayed)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(waiting, 1, "the far one still waits");
}

/// A delayed-set member that is not a courier record (written by a foreign
/// producer, or damaged) is dead-lettered as found when it comes due,
/// beside the good ones, which are handled.
#[tokio::test]
async fn an_unreadable_delayed_member_is_dead_lettered_as_found() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let mut conn = raw(&server).await;
    let producer = Producer::untyped(&client, &INTAKE);
    producer
        .publish_in(&interaction(1), Duration::from_millis(100))
        .await
        .unwrap();
    let delayed = client.keys(&INTAKE, None).delayed();
    let bad: [&[u8]; 3] = [
        b"not json at all",
        br#"{"no_m": true}"#,
        b"\xff\xfe a\\b \xe2\x82",
    ];
    for bad in bad {
        let _: () = redis::cmd("ZADD")
            .arg(&delayed)
            .arg(0)
            .arg(bad)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let calls = Arc::new(AtomicU32::new(0));
    let running = Running::start(classifier(&client, &INTAKE), counting(&calls));
    let dlq = client.dlq(&INTAKE);
    let mut letters = Vec::new();
    for _ in 0..200 {
        letters = dlq.list(&DlqFilter::default()).await.unwrap();
        if letters.len() == 3 && calls.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    running.stop().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the good one is handled");
    let mut raws: Vec<String> = letters.iter().filter_map(|l| l.raw.clone()).collect();
    raws.sort();
    // Kept escaped, bytes that are not UTF-8 included (each as \xNN, a
    // backslash doubled).
    assert_eq!(
        raws,
        [
            "\\xff\\xfe a\\\\b \\xe2\\x82",
            "not json at all",
            r#"{"no_m": true}"#
        ],
        "{letters:?}"
    );
    assert!(letters.iter().all(|l| l.escaped));
    for letter in &letters {
        assert_eq!(letter.reason, DeadReason::InvalidPayload);
        assert!(
            letter.error.contains("not a courier record"),
            "{}",
            letter.error
        );
        assert_eq!(letter.channel, "contact_center.intake_test");
    }
    let left: u64 = redis::cmd("ZCARD")
        .arg(&delayed)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
