//! The reliability suite every queue transport must pass, run against real
//! `redis-server` processes for streams, lists and priority queues alike:
//! duplicate publishes, a consumer killed before acknowledging, retries
//! with backoff, the DLQ and replay, bad messages, backpressure, shutdown,
//! and 10,000 messages with random failures.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use contact_center_contracts::{ClassifiedTask, Interaction};
use courier::{
    Backoff, Backpressure, ChannelSpec, Consumer, ConsumerOptions, DeadReason, Delivery, DlqFilter,
    Error, Outcome, Producer, PublishOptions, Transport,
};
use courier_suites::{
    classifier, client, counting, depth, eventually, first_version, inject, interaction,
    keys_without_ttl, quick, raw, run_until, task_for, RedisServer, Running,
};
use serde_json::json;

/// The intake channel with short timeouts, so failures show within a test.
const INTAKE: ChannelSpec = ChannelSpec {
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
    sla: None,
    ..channels::intake::SPEC
};

/// Where the intake handler's effect goes: one classified task per contact.
static TASKS: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("tasks_test"),
    ..channels::billing::SPEC
};

/// The suite, for one transport.
macro_rules! suite {
    ($module:ident, $transport:expr) => {
        mod $module {
            use super::*;

            const SPEC: ChannelSpec = ChannelSpec {
                name: Cow::Borrowed(concat!("intake_", stringify!($module))),
                transport: $transport,
                ..INTAKE
            };

        #[tokio::test]
        async fn a_second_publish_with_the_same_key_is_a_duplicate() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &SPEC);
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
            assert_eq!(depth(&server, &client, &SPEC).await, 2);
        }

        #[tokio::test]
        async fn a_batch_bigger_than_one_script_call_keeps_every_guarantee() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &SPEC);
            // 1,200 messages go out as three script calls; the last 100
            // repeat the first 100, in another call than theirs.
            let batch: Vec<_> = (0..1200).map(|n| interaction(n % 1100)).collect();
            let published = producer
                .publish_many(&batch, &PublishOptions::default())
                .await
                .unwrap();
            assert_eq!(published.iter().filter(|p| p.duplicate).count(), 100);
            for n in 0..100 {
                assert_eq!(published[1100 + n].id, published[n].id);
            }
            assert_eq!(depth(&server, &client, &SPEC).await, 1100);
        }

        #[tokio::test]
        async fn a_message_a_lost_read_reply_left_with_a_live_consumer_is_handled() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            Producer::untyped(&client, &SPEC)
                .publish(&interaction(1))
                .await
                .unwrap();
            let consumer = classifier(&client, &SPEC);
            let keys = client.keys(&SPEC, None);
            let processing = keys.processing(consumer.name());
            let mut conn = raw(&server).await;
            // Move the message to this consumer as its read would have,
            // and "lose the reply": no handler knows of it. Neither the
            // reaper (the consumer is alive) nor reclaiming (which skips a
            // consumer's own entries) would give it back.
            match SPEC.transport {
                Transport::Stream => {
                    let _: () = redis::cmd("XGROUP")
                        .arg("CREATE")
                        .arg(keys.stream())
                        .arg("classifier")
                        .arg("0")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let _: redis::Value = redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg("classifier")
                        .arg(consumer.name())
                        .arg("STREAMS")
                        .arg(keys.stream())
                        .arg(">")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
                Transport::List => {
                    let _: String = redis::cmd("LMOVE")
                        .arg(keys.queue())
                        .arg(&processing)
                        .arg("RIGHT")
                        .arg("LEFT")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
                _ => {
                    let (member, score): (String, String) = redis::cmd("ZPOPMIN")
                        .arg(keys.queue())
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let _: i64 = redis::cmd("LPUSH")
                        .arg(&processing)
                        .arg(format!("{score}|{member}"))
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            }
            let calls = Arc::new(AtomicU32::new(0));
            let running = Running::start(consumer, counting::<Interaction>(&calls));
            let handled =
                eventually(Duration::from_secs(5), || calls.load(Ordering::SeqCst) == 1).await;
            let report = running.stop().await;
            assert!(handled, "the held message was never handled: {report:?}");
            assert_eq!(report.done, 1, "{report:?}");
            // And it is settled: nothing pending or held any more.
            let held: u64 = match SPEC.transport {
                Transport::Stream => {
                    let pending: (u64, redis::Value, redis::Value, redis::Value) =
                        redis::cmd("XPENDING")
                            .arg(keys.stream())
                            .arg("classifier")
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    pending.0
                }
                _ => redis::cmd("LLEN")
                    .arg(&processing)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            };
            assert_eq!(held, 0);
        }

        #[tokio::test]
        async fn a_consumer_killed_before_acknowledging_is_taken_over_and_the_effect_happens_once() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &SPEC);
            // Message 1: the first consumer dies before doing anything.
            // Message 2: it dies after its effect (publishing the derived task) but
            // before its acknowledgement.
            producer.publish(&interaction(1)).await.unwrap();
            producer.publish(&interaction(2)).await.unwrap();

            let calls = Arc::new(AtomicU32::new(0));
            let tasks = Producer::untyped(&client, &TASKS);
            let reached = Arc::new(AtomicU32::new(0));
            let doomed = Running::start(classifier(&client, &SPEC), {
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
            doomed.kill().await;

            let report = run_until(
                classifier(&client, &SPEC),
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
            // Streams reclaim idle entries; lists and priority queues return the
            // work of a consumer whose heartbeat stopped.
            assert_eq!(report.claimed + report.reaped, 2, "{report:?}");
            assert_eq!(report.done, 2, "{report:?}");
            assert_eq!(calls.load(Ordering::SeqCst), 4);
            assert_eq!(
                depth(&server, &client, &TASKS).await,
                2,
                "one derived task per contact, though contact 2 was handled twice"
            );
        }

        #[tokio::test]
        async fn failing_twice_then_succeeding_retries_with_growing_jittered_bounded_delays() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &SPEC);
            const MESSAGES: u64 = 20;
            let batch: Vec<_> = (0..MESSAGES).map(interaction).collect();
            producer
                .publish_many(&batch, &PublishOptions::default())
                .await
                .unwrap();

            type Attempts = HashMap<String, Vec<(u32, Instant)>>;
            let seen: Arc<Mutex<Attempts>> = Arc::default();
            let report = run_until(
                classifier(&client, &SPEC),
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
            let producer = Producer::untyped(&client, &SPEC);
            let published = producer.publish(&interaction(7)).await.unwrap();

            let report = run_until(
                classifier(&client, &SPEC),
                |_delivery: Delivery<Interaction>| async { Outcome::retry("classifier model unavailable") },
                Duration::from_secs(10),
                |r| r.dead >= 1,
            )
            .await;
            assert_eq!((report.retried, report.dead), (2, 1), "{report:?}");

            let dlq = client.dlq(&SPEC);
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
                classifier(&client, &SPEC),
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
            let producer = Producer::untyped(&client, &SPEC);
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
            inject(&server, &client, &SPEC,
                &envelope("contact_center.unknown", 1, good.clone()),
            )
            .await;
            inject(&server, &client, &SPEC,
                &envelope("contact_center.interaction", 9, good.clone()),
            )
            .await;
            inject(&server, &client, &SPEC,
                "{\"schema\": \"contact_center.interaction\", \"vers",
            )
            .await;
            let mut too_long = good.clone();
            too_long["text"] = json!("x".repeat(4001));
            inject(&server, &client, &SPEC,
                &envelope("contact_center.interaction", 1, too_long),
            )
            .await;
            // And a good message after all of them.
            producer.publish(&interaction(3)).await.unwrap();

            let handled = Arc::new(AtomicU32::new(0));
            let report = run_until(
                classifier(&client, &SPEC),
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
                .dlq(&SPEC)
                .list(&DlqFilter::default())
                .await
                .unwrap();
            // Sorted by reason, since transports take them in different orders.
            let mut reasons: Vec<(&str, &str, bool)> = letters
                .iter()
                .map(|l| (l.reason.as_str(), l.error.as_str(), l.raw.is_some()))
                .collect();
            reasons.sort();
            assert_eq!(reasons.len(), 5, "{reasons:?}");
            assert_eq!(reasons[0].0, "expired");
            assert_eq!(
                reasons[1],
                (
                    "invalid_payload",
                    "contact_center.interaction v1 payload is invalid: /text: string of 4001 characters is longer than maxLength 4000",
                    false
                )
            );
            assert_eq!(reasons[2].0, "invalid_payload");
            assert!(reasons[2].1.contains("not JSON") && reasons[2].2, "{:?}", reasons[2]);
            assert_eq!(
                reasons[3],
                (
                    "schema_mismatch",
                    "message of schema \"contact_center.unknown\" on a channel of schema \"contact_center.interaction\"",
                    false
                )
            );
            assert_eq!(
                reasons[4],
                (
                    "version_unsupported",
                    "contact_center.interaction v9 is not readable here; this consumer reads versions [1]",
                    false
                )
            );
        }

        #[tokio::test]
        async fn ten_thousand_messages_with_random_failures_are_each_handled_once_or_dead_lettered() {
            static BULK: ChannelSpec = ChannelSpec {
                name: Cow::Borrowed("bulk_test"),
                max_attempts: 4,
                backoff: Backoff {
                    initial: Duration::from_millis(5),
                    max: Duration::from_millis(50),
                    multiplier: 2.0,
                },
                ..SPEC
            };
            const MESSAGES: u64 = 10_000;
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &BULK);
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
        async fn dead_letters_are_replayed_and_purged_by_filter() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &SPEC);
            let batch: Vec<_> = (0..6).map(interaction).collect();
            producer
                .publish_many(&batch, &PublishOptions::default())
                .await
                .unwrap();
            run_until(
                classifier(&client, &SPEC),
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
            let dlq = client.dlq(&SPEC);
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
            // A stream keeps handled entries until trimmed; queues only hold
            // what waits.
            let expected = if SPEC.transport == Transport::Stream { 9 } else { 3 };
            assert_eq!(depth(&server, &client, &SPEC).await, expected, "3 replayed");
            assert!(matches!(
                dlq.purge("1-0").await,
                Err(Error::DeadLetterNotFound { .. })
            ));
        }

        #[tokio::test]
        async fn shutdown_finishes_work_in_flight() {
            let server = RedisServer::must_start();
            let client = client(&server).await;
            Producer::untyped(&client, &SPEC)
                .publish(&interaction(1))
                .await
                .unwrap();
            let running = Running::start(
                classifier(&client, &SPEC),
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
        async fn a_full_channel_refuses_or_waits() {
            static SMALL: ChannelSpec = ChannelSpec {
                name: Cow::Borrowed("small_test"),
                max_depth: Some(3),
                ..SPEC
            };
            let server = RedisServer::must_start();
            let client = client(&server).await;
            let producer = Producer::untyped(&client, &SMALL);
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
            async fn a_scheduled_message_arrives_at_its_time() {
                let server = RedisServer::must_start();
                let client = client(&server).await;
                let producer = Producer::untyped(&client, &SPEC);
                let handled = Arc::new(Mutex::new(Vec::new()));
                let running = Running::start(classifier(&client, &SPEC), {
                    let handled = handled.clone();
                    move |d: Delivery<Interaction>| {
                        let handled = handled.clone();
                        async move {
                            handled
                                .lock()
                                .unwrap()
                                .push((first_version(&d.message).text.to_string(), Instant::now()));
                            Outcome::Done
                        }
                    }
                });
                let published = Instant::now();
                producer
                    .publish_in(&interaction(1), Duration::from_millis(400))
                    .await
                    .unwrap();
                let at = chrono::Utc::now() + chrono::Duration::milliseconds(200);
                producer.publish_at(&interaction(2), at).await.unwrap();
                // The key is taken at once: a second publish is a duplicate.
                assert!(producer.publish(&interaction(1)).await.unwrap().duplicate);
                assert!(running.wait(Duration::from_secs(5), |r| r.done >= 2).await);
                running.stop().await;
                let handled = handled.lock().unwrap().clone();
                assert_eq!(handled[0].0, "Contact number 2");
                assert_eq!(handled[1].0, "Contact number 1");
                let after = |i: usize| handled[i].1 - published;
                assert!(after(0) >= Duration::from_millis(190), "{:?}", after(0));
                assert!(after(1) >= Duration::from_millis(390), "{:?}", after(1));
                assert!(after(1) <= Duration::from_millis(1000), "{:?}", after(1));
            }
        }
    };
}

suite!(stream, Transport::Stream);
suite!(list, Transport::List);
suite!(priority, Transport::Priority);

#[tokio::test]
async fn a_consumer_reads_every_released_version() {
    static TASKS_V: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("versions_test"),
        ..channels::billing::SPEC
    };
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let v2 = Producer::untyped(&client, &TASKS_V);
    v2.publish(&task_for(1)).await.unwrap();
    let v1: contact_center_contracts::ClassifiedTaskV1 = serde_json::from_value({
        let mut task = serde_json::to_value(task_for(2)).unwrap();
        task.as_object_mut().unwrap().remove("sentiment");
        task
    })
    .unwrap();
    Producer::untyped(&client, &TASKS_V)
        .publish(&v1)
        .await
        .unwrap();

    let versions = Arc::new(Mutex::new(Vec::new()));
    let consumer =
        Consumer::<ClassifiedTask>::untyped(&client, &TASKS_V, "specialists").with_options(quick());
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

static URGENT: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("priority_order_test"),
    transport: Transport::Priority,
    sla: Some(Duration::from_millis(400)),
    ..INTAKE
};

#[tokio::test]
async fn higher_priority_first_then_oldest_first() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &URGENT);
    for (n, priority) in [(1, 0), (2, 5), (3, 9), (4, 5), (5, 0)] {
        let options = PublishOptions {
            priority: Some(priority),
            ..PublishOptions::default()
        };
        producer
            .publish_with(&interaction(n), &options)
            .await
            .unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let one_at_a_time = ConsumerOptions {
        concurrency: 1,
        batch: 1,
        ..quick()
    };
    run_until(
        Consumer::<Interaction>::untyped(&client, &URGENT, "desk").with_options(one_at_a_time),
        {
            let order = order.clone();
            move |d: Delivery<Interaction>| {
                let order = order.clone();
                async move {
                    let text = first_version(&d.message).text.to_string();
                    order.lock().unwrap().push((d.envelope.priority, text));
                    Outcome::Done
                }
            }
        },
        Duration::from_secs(5),
        |r| r.done >= 5,
    )
    .await;
    let order: Vec<(Option<u8>, String)> = order.lock().unwrap().clone();
    let numbers: Vec<&str> = order
        .iter()
        .map(|(_, t)| t.trim_start_matches("Contact number "))
        .collect();
    assert_eq!(numbers, ["3", "2", "4", "1", "5"], "{order:?}");
}

#[tokio::test]
async fn an_sla_breach_is_reported_within_a_second_and_escalated() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    client.pause(&URGENT).await.unwrap();
    let desk = Running::start(
        Consumer::<Interaction>::untyped(&client, &URGENT, "desk").with_options(ConsumerOptions {
            concurrency: 1,
            batch: 1,
            ..quick()
        }),
        counting(&Arc::new(AtomicU32::new(0))),
    );
    let producer = Producer::untyped(&client, &URGENT);
    // A low-priority message with the channel's 400 ms SLA, then busier
    // work with a far deadline given per message.
    let published = Instant::now();
    producer.publish(&interaction(1)).await.unwrap();
    let relaxed = PublishOptions {
        priority: Some(5),
        sla_deadline: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ..PublishOptions::default()
    };
    producer
        .publish_with(&interaction(2), &relaxed)
        .await
        .unwrap();

    assert!(
        desk.wait(Duration::from_secs(3), |r| r.sla_breaches >= 1)
            .await
    );
    let late_by = published
        .elapsed()
        .saturating_sub(Duration::from_millis(400));
    assert!(
        late_by <= Duration::from_secs(1),
        "reported {late_by:?} after the deadline"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        desk.stats.snapshot().sla_breaches,
        1,
        "the far deadline is not breached"
    );

    // Escalated to the top: served before the priority-5 message.
    let queue = client.keys(&URGENT, None).queue();
    let first: Vec<String> = redis::cmd("ZRANGE")
        .arg(&queue)
        .arg(0)
        .arg(0)
        .query_async(&mut courier_suites::raw(&server).await)
        .await
        .unwrap();
    assert!(first[0].contains("Contact number 1"), "{first:?}");
    client.resume(&URGENT).await.unwrap();
    assert!(desk.wait(Duration::from_secs(5), |r| r.done >= 2).await);
    desk.stop().await;
}

#[tokio::test]
async fn an_sla_breach_is_announced_on_the_notice_channel() {
    static ANNOUNCED: ChannelSpec = ChannelSpec {
        name: Cow::Borrowed("announced_test"),
        transport: Transport::Priority,
        sla: Some(Duration::from_millis(300)),
        sla_notice: Some(courier::SlaNoticeSpec {
            channel: courier::ChannelRef::Static(&channels::sla_breaches::SPEC),
            version: 1,
        }),
        ..INTAKE
    };
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let notices = Arc::new(Mutex::new(Vec::new()));
    let token = courier::CancellationToken::new();
    let supervisor = channels::sla_breaches::subscriber(&client);
    let listening = tokio::spawn({
        let (token, notices) = (token.clone(), notices.clone());
        async move {
            supervisor
                .run_until(
                    move |d: Delivery<contact_center_contracts::SlaBreach>| {
                        let notices = notices.clone();
                        async move {
                            let contact_center_contracts::SlaBreach::V1(notice) = d.message;
                            notices.lock().unwrap().push(notice);
                            Outcome::Done
                        }
                    },
                    token,
                )
                .await
        }
    });
    client.pause(&ANNOUNCED).await.unwrap();
    let desk = Running::start(
        Consumer::<Interaction>::untyped(&client, &ANNOUNCED, "desk").with_options(quick()),
        |_d: Delivery<Interaction>| async { Outcome::Done },
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = Producer::untyped(&client, &ANNOUNCED)
        .publish(&interaction(1))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(3), || notices.lock().unwrap().len()
            == 1)
        .await
    );
    let notice = notices.lock().unwrap()[0].clone();
    assert_eq!(notice.message_id.to_string(), late.id);
    assert_eq!(notice.channel.to_string(), "contact_center.announced_test");
    desk.stop().await;
    token.cancel();
    listening.await.unwrap().unwrap();
}
