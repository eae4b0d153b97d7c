//! Prometheus metrics after a run against a real `redis-server`: every
//! metric the runtime records is scraped from the exporter with the counts
//! the run produced. One test per binary: the recorder is process-wide.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::Interaction;
use courier::{Backoff, ChannelSpec, Delivery, Outcome, Producer, PublishOptions};
use courier_suites::{client, first_version, inject, interaction, quick, RedisServer, Running};

static MEASURED: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("measured"),
    partitions: None,
    max_depth: None,
    backoff: Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(20),
        multiplier: 2.0,
    },
    ..channels::intake::SPEC
};

/// The exporter's text as `metric{labels}` → value.
fn scrape(addr: std::net::SocketAddr) -> HashMap<String, f64> {
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    socket.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    text.lines()
        .filter(|l| l.starts_with("courier_"))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(name, value)| (name.to_string(), value.parse().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_is_exported_with_its_count() {
    let handle = courier::metrics::install().unwrap();
    let addr = courier::metrics::serve(handle, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let server = RedisServer::must_start();
    let client = client(&server).await;
    let producer = Producer::untyped(&client, &MEASURED);
    let batch: Vec<_> = (1..=5).map(interaction).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    assert!(producer.publish(&interaction(1)).await.unwrap().duplicate);
    let short = PublishOptions {
        ttl: Some(Duration::from_millis(1)),
        ..PublishOptions::default()
    };
    producer
        .publish_with(&interaction(6), &short)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Contact 1 fails for good, contact 2 fails once then succeeds.
    let running = Running::start(
        courier::Consumer::<Interaction>::untyped(&client, &MEASURED, "g").with_options(quick()),
        |d: Delivery<Interaction>| async move {
            match (first_version(&d.message).text.as_str(), d.attempt()) {
                ("Contact number 1", _) => Outcome::fatal("unclassifiable"),
                ("Contact number 2", 1) => Outcome::retry("busy"),
                _ => Outcome::Done,
            }
        },
    );
    assert!(
        running
            .wait(Duration::from_secs(10), |r| r.done >= 4 && r.dead >= 2)
            .await
    );
    // A copy of a handled message is skipped as a duplicate.
    let stream = client.keys(&MEASURED, None).stream();
    let handled: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(5)
        .query_async(&mut courier_suites::raw(&server).await)
        .await
        .unwrap();
    let copy = handled
        .iter()
        .map(|(_, f)| f[0].1.clone())
        .find(|m| m.contains("Contact number 3"))
        .unwrap();
    inject(&server, &client, &MEASURED, &copy).await;
    assert!(
        running
            .wait(Duration::from_secs(5), |r| r.duplicates >= 1)
            .await
    );
    // Let the gauge sampler run once more.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    running.stop().await;

    let metrics = scrape(addr);
    let channel = "channel=\"contact_center.measured\"";
    let value = |name: &str, labels: &str| {
        let key = if labels.is_empty() {
            format!("{name}{{{channel}}}")
        } else {
            format!("{name}{{{channel},{labels}}}")
        };
        *metrics.get(&key).unwrap_or_else(|| {
            panic!(
                "{key} missing from {:#?}",
                metrics
                    .keys()
                    .filter(|k| k.contains(name))
                    .collect::<Vec<_>>()
            )
        })
    };
    assert_eq!(
        value("courier_messages_published_total", "outcome=\"written\""),
        6.0
    );
    assert_eq!(
        value("courier_messages_published_total", "outcome=\"duplicate\""),
        1.0
    );
    assert_eq!(
        value("courier_messages_consumed_total", ""),
        8.0,
        "6 first deliveries, 1 retry, 1 copy"
    );
    assert_eq!(value("courier_messages_acknowledged_total", ""), 4.0);
    assert_eq!(value("courier_messages_retried_total", ""), 1.0);
    assert_eq!(
        value("courier_messages_dead_lettered_total", "reason=\"fatal\""),
        1.0
    );
    assert_eq!(
        value("courier_messages_dead_lettered_total", "reason=\"expired\""),
        1.0
    );
    assert_eq!(value("courier_messages_expired_total", ""), 1.0);
    assert_eq!(value("courier_duplicates_skipped_total", ""), 1.0);
    assert_eq!(
        value("courier_handler_duration_seconds_count", ""),
        6.0,
        "handlers ran 6 times"
    );
    assert_eq!(value("courier_end_to_end_seconds_count", ""), 4.0);
    assert_eq!(value("courier_messages_in_flight", ""), 0.0);
    assert_eq!(
        value("courier_channel_depth", "partition=\"\""),
        0.0,
        "nothing waits: depth counts what is not yet delivered, not the 8 entries the stream \
         keeps (6 published, a retry appended again, the copy)"
    );
    assert_eq!(value("courier_channel_pending", "partition=\"\""), 0.0);
    assert_eq!(
        value("courier_channel_lag", "partition=\"\""),
        0.0,
        "everything delivered"
    );
}
