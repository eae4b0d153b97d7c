//! Stopping consumption on every worker at once, against a real
//! `redis-server`: a manual pause, and a dependency's circuit breaker that
//! opens on failures, holds messages back without using their attempts,
//! probes when half-open and lets work resume when the dependency is back.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contact_center_contracts::channels;
use contact_center_contracts::Interaction;
use courier::{
    Backoff, BreakerConfig, ChannelSpec, Consumer, ConsumerOptions, Delivery, Dependency, Outcome,
    Producer, PublishOptions, Transport,
};
use courier_suites::{client, counting, eventually, interaction, quick, RedisServer, Running};

static WORK: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("pausing_test"),
    transport: Transport::List,
    visibility_timeout: Duration::from_secs(2),
    max_attempts: 3,
    backoff: Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(50),
        multiplier: 2.0,
    },
    partitions: None,
    max_depth: None,
    sla: None,
    ..channels::intake::SPEC
};

#[tokio::test]
async fn a_pause_stops_every_worker_and_nothing_is_lost() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let handled = Arc::new(AtomicU32::new(0));
    let workers: Vec<Running> = (0..3)
        .map(|_| {
            Running::start(
                Consumer::<Interaction>::untyped(&client, &WORK, "workers").with_options(quick()),
                counting(&handled),
            )
        })
        .collect();
    let producer = Producer::untyped(&client, &WORK);
    producer.publish(&interaction(0)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || handled.load(Ordering::SeqCst)
            == 1)
        .await
    );

    client.pause(&WORK).await.unwrap();
    // Every worker notices within a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let batch: Vec<_> = (1..=20).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "a paused channel took work"
    );

    client.resume(&WORK).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || handled.load(Ordering::SeqCst)
            == 21)
        .await
    );
    let mut dead = 0;
    for worker in workers {
        dead += worker.stop().await.dead;
    }
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn a_failing_dependency_pauses_every_worker_then_probes_and_resumes() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let dependency = Dependency {
        name: "crm".into(),
        breaker: BreakerConfig {
            failure_threshold: 5,
            window: Duration::from_secs(5),
            cool_down: Duration::from_millis(800),
            half_open_probes: 1,
            probe_timeout: Duration::from_secs(2),
            ..BreakerConfig::default()
        },
    };
    let down = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicU32::new(0));
    let succeeded = Arc::new(AtomicU32::new(0));
    let handler = {
        let (down, calls, succeeded) = (down.clone(), calls.clone(), succeeded.clone());
        move |_d: Delivery<Interaction>| {
            let (down, calls, succeeded) = (down.clone(), calls.clone(), succeeded.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if down.load(Ordering::SeqCst) {
                    Outcome::retry("crm unavailable")
                } else {
                    succeeded.fetch_add(1, Ordering::SeqCst);
                    Outcome::Done
                }
            }
        }
    };
    let options = ConsumerOptions {
        dependency: Some(dependency),
        concurrency: 2,
        ..quick()
    };
    let workers: Vec<Running> = (0..3)
        .map(|_| {
            Running::start(
                Consumer::<Interaction>::untyped(&client, &WORK, "workers")
                    .with_options(options.clone()),
                handler.clone(),
            )
        })
        .collect();
    let batch: Vec<_> = (0..30).map(interaction).collect();
    Producer::untyped(&client, &WORK)
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();

    // The breaker opens after 5 failures; within a second every worker
    // stops calling the dependency.
    assert!(eventually(Duration::from_secs(5), || calls.load(Ordering::SeqCst) >= 5).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let during = calls.load(Ordering::SeqCst) - settled;
    // At most the half-open probes run while it is open.
    assert!(during <= 2, "{during} calls while the breaker was open");

    down.store(false, Ordering::SeqCst);
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || succeeded.load(Ordering::SeqCst)
            == 30)
        .await,
        "{} of 30 handled after {:?}",
        succeeded.load(Ordering::SeqCst),
        started.elapsed()
    );
    let (mut dead, mut held_back) = (0, 0);
    for worker in workers {
        let report = worker.stop().await;
        dead += report.dead;
        held_back += report.held_back;
    }
    assert_eq!(dead, 0, "nothing is dead-lettered because of the breaker");
    assert!(held_back > 0, "messages waited out the breaker");
    println!(
        "calls {} (failures while down {settled}), held back {held_back}",
        calls.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn consumers_on_three_workers_share_one_rate() {
    let server = RedisServer::must_start();
    let producer_client = client(&server).await;
    let batch: Vec<_> = (0..400).map(interaction).collect();
    Producer::untyped(&producer_client, &WORK)
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    let options = ConsumerOptions {
        rate_limit: Some(courier::Rate {
            name: "crm".into(),
            per_second: 40.0,
            burst: 4,
        }),
        ..quick()
    };
    let handled = Arc::new(AtomicU32::new(0));
    let mut workers = Vec::new();
    for _ in 0..3 {
        // A client each, as separate processes would have.
        let worker_client = courier::Client::connect(&server.url(), producer_client.namespace())
            .await
            .unwrap();
        workers.push(Running::start(
            Consumer::<Interaction>::untyped(&worker_client, &WORK, "workers")
                .with_options(options.clone()),
            counting(&handled),
        ));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let count = handled.load(Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();
    for worker in workers {
        worker.stop().await;
    }
    // 40/s for about 3 s, plus the burst; never the 400 it could do.
    let allowed = 40.0 * elapsed + 4.0;
    println!(
        "{count} handled in {elapsed:.2} s with a shared limit of 40/s (allowed {allowed:.0})"
    );
    assert!(f64::from(count) <= allowed + 2.0, "{count} > {allowed}");
    assert!(
        f64::from(count) >= allowed * 0.85,
        "{count} far below {allowed}"
    );
}
