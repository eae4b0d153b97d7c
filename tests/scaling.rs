//! The scaler against a real `redis-server`: a backlog grows the pool of
//! consumer instances, a drained channel shrinks it again, every message
//! is handled once, and the desired count is exported as a gauge; on a
//! partitioned channel the pool stops at the partition count.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::Interaction;
use courier::{
    CancellationToken, ChannelSpec, Consumer, ConsumerOptions, Delivery, Outcome, Producer,
    PublishOptions, Scaler, ScalerConfig,
};
use courier_suites::{client, eventually, interaction, quick, RedisServer};

/// A stream of interactions, unpartitioned and without a rate limit.
static WORK: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("scaled_work"),
    partitions: None,
    rate_limit: None,
    max_depth: None,
    ..channels::intake::SPEC
};

fn config() -> ScalerConfig {
    ScalerConfig {
        min: 1,
        max: 4,
        backlog_per_instance: 50,
        max_age: None,
        busy_high: 0.9,
        busy_low: 0.3,
        grow_cooldown: Duration::from_millis(200),
        shrink_cooldown: Duration::from_millis(400),
        interval: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_grows_the_pool_a_drained_channel_shrinks_it_and_nothing_is_handled_twice() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let metrics = courier::metrics::install().unwrap();
    let batch: Vec<_> = (0..600).map(interaction).collect();
    Producer::untyped(&client, &WORK)
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();

    let options = ConsumerOptions {
        concurrency: 2,
        batch: 4,
        ..quick()
    };
    let template =
        Consumer::<Interaction>::untyped(&client, &WORK, "workers").with_options(options);
    let scaler = Scaler::new(template, config());
    let handle = scaler.handle();
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let token = CancellationToken::new();
    let running = {
        let (seen, token) = (seen.clone(), token.clone());
        tokio::spawn(scaler.run_until(
            move || {
                let seen = seen.clone();
                move |d: Delivery<Interaction>| {
                    let seen = seen.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        *seen.lock().unwrap().entry(d.key().to_string()).or_default() += 1;
                        Outcome::Done
                    }
                }
            },
            token,
        ))
    };

    // 600 waiting at 50 per instance: the pool goes to its maximum.
    assert!(
        eventually(Duration::from_secs(10), || handle.running() == 4).await,
        "running {}, decisions {:?}",
        handle.running(),
        handle.decisions()
    );
    // The gauge is set right after the count; the pool stays at 4 while
    // the backlog lasts.
    let gauge = "courier_scaler_desired_instances{channel=\"contact_center.scaled_work\",group=\"workers\"} 4";
    assert!(
        eventually(Duration::from_secs(2), || metrics.render().contains(gauge)).await,
        "{}",
        metrics.render()
    );
    // Drained, it shrinks one instance at a time back to the minimum.
    assert!(
        eventually(Duration::from_secs(20), || seen.lock().unwrap().len()
            == 600
            && handle.running() == 1)
        .await,
        "handled {}, running {}, decisions {:?}",
        seen.lock().unwrap().len(),
        handle.running(),
        handle.decisions()
    );
    token.cancel();
    let report = running.await.unwrap().unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 600);
    assert!(seen.values().all(|n| *n == 1), "a message handled twice");
    assert_eq!(report.consumers.done, 600);
    assert_eq!(report.peak, 4);
    let first = &report.decisions[0].1;
    assert_eq!(first.from, 1);
    assert!(first.to > 1, "{first:?}");
    assert!(first.reason.starts_with("backlog "), "{first:?}");
    let last = &report.decisions.last().unwrap().1;
    assert_eq!((last.from, last.to), (2, 1), "{:?}", report.decisions);
    assert!(last.reason.contains("1 instance(s) suffice"), "{last:?}");
    // One step at a time on the way down.
    let shrinks: Vec<_> = report
        .decisions
        .iter()
        .filter(|(_, d)| d.to < d.from)
        .map(|(_, d)| d.from - d.to)
        .collect();
    assert!(
        shrinks.iter().all(|step| *step == 1),
        "{:?}",
        report.decisions
    );
}

#[tokio::test]
async fn on_a_partitioned_channel_the_pool_stops_at_the_partition_count() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    // Intake has three region partitions, shared out among the members.
    let consumer = || Consumer::<Interaction>::untyped(&client, &channels::intake::SPEC, "c");
    let ceiling = |max, options: ConsumerOptions| {
        Scaler::new(
            consumer().with_options(options),
            ScalerConfig { max, ..config() },
        )
        .ceiling()
    };
    assert_eq!(ceiling(8, ConsumerOptions::default()), 3);
    assert_eq!(ceiling(2, ConsumerOptions::default()), 2);
    let unordered = ConsumerOptions {
        ordered: Some(false),
        ..ConsumerOptions::default()
    };
    assert_eq!(ceiling(8, unordered), 3);
    // Instances told which partitions to read all read them: one at most
    // while they are handled in order, else the maximum.
    let listed = ConsumerOptions {
        partitions: Some(vec!["emea".into()]),
        ..ConsumerOptions::default()
    };
    assert_eq!(ceiling(8, listed.clone()), 1);
    let listed_unordered = ConsumerOptions {
        ordered: Some(false),
        ..listed
    };
    assert_eq!(ceiling(8, listed_unordered), 8);
    let unpartitioned = Scaler::new(
        Consumer::<Interaction>::untyped(&client, &WORK, "c"),
        ScalerConfig { max: 8, ..config() },
    );
    assert_eq!(unpartitioned.ceiling(), 8);
}

/// An instance that cannot start (here, a consumer of another channel's
/// schema) stops the pool with its error; the caller's token, which other
/// work may share, is left alone.
#[tokio::test]
async fn an_instance_that_cannot_start_stops_the_pool_with_its_error() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let wrong = Consumer::<Interaction>::untyped(&client, &channels::billing::SPEC, "workers");
    let token = CancellationToken::new();
    let err = Scaler::new(wrong, config())
        .run_until(
            || |_d: Delivery<Interaction>| async { Outcome::Done },
            token.clone(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, courier::Error::SchemaMismatch { .. }),
        "{err}"
    );
    assert!(!token.is_cancelled());
}
