//! Partitioned channels against a real `redis-server`: the group's live
//! members share the partitions out, each handles its partitions' messages
//! one at a time in order, and when a member leaves its partitions move to
//! the others without breaking the order.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::{Interaction, InteractionV1};
use courier::{
    ChannelSpec, Client, Consumer, Delivery, Outcome, PartitionSpec, Producer, PublishOptions,
};
use courier_suites::{eventually, first_version, quick, uuid, RedisServer, Running};
use serde_json::json;

static BY_CUSTOMER: ChannelSpec = ChannelSpec {
    name: Cow::Borrowed("partitioned_test"),
    partitions: Some(PartitionSpec::Buckets {
        field: Cow::Borrowed("/customer_id"),
        buckets: 4,
    }),
    max_depth: None,
    ..channels::intake::SPEC
};

/// Contact `n` of customer `n mod 8`.
fn contact(n: u64) -> InteractionV1 {
    serde_json::from_value(json!({
        "interaction_id": uuid(n),
        "customer_id": format!("C00000{}", n % 8),
        "region": "emea",
        "medium": "chat",
        "text": format!("{n}"),
        "received_at": "2026-11-28T09:00:00Z"
    }))
    .unwrap()
}

/// (member, partition, customer, n) in the order handled, across members.
type Log = Arc<Mutex<Vec<(usize, String, String, u64)>>>;

fn member(client: &Client, index: usize, log: &Log) -> Running {
    let log = log.clone();
    Running::start(
        Consumer::<Interaction>::untyped(client, &BY_CUSTOMER, "routers").with_options(quick()),
        move |d: Delivery<Interaction>| {
            let log = log.clone();
            async move {
                let v1 = first_version(&d.message);
                // Handling takes a little while, so out-of-order handling
                // would show.
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..3))).await;
                log.lock().unwrap().push((
                    index,
                    d.partition.clone().unwrap_or_default(),
                    v1.customer_id.to_string(),
                    v1.text.parse().unwrap(),
                ));
                Outcome::Done
            }
        },
    )
}

fn assert_in_order(log: &[(usize, String, String, u64)]) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, _, customer, n) in log {
        if let Some(previous) = last.insert(customer, *n) {
            assert!(
                previous < *n,
                "customer {customer}: {n} handled after {previous}"
            );
        }
    }
}

fn partitions_of(log: &[(usize, String, String, u64)], member: usize) -> BTreeSet<String> {
    log.iter()
        .filter(|(m, ..)| *m == member)
        .map(|(_, p, ..)| p.clone())
        .collect()
}

#[tokio::test]
async fn partitions_are_shared_kept_in_order_and_rebalanced() {
    let server = RedisServer::must_start();
    let namespace = courier_suites::namespace();
    let log: Log = Arc::default();
    let mut members = Vec::new();
    for index in 0..4 {
        // One client each, as separate processes would have.
        let client = Client::connect(&server.url(), &namespace).await.unwrap();
        members.push(member(&client, index, &log));
    }
    // Membership settles within a few rebalancing rounds.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let producer_client = Client::connect(&server.url(), &namespace).await.unwrap();
    let producer = Producer::untyped(&producer_client, &BY_CUSTOMER);
    let batch: Vec<_> = (0..400).map(contact).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || log.lock().unwrap().len() == 400).await);

    let first: Vec<_> = log.lock().unwrap().clone();
    assert_in_order(&first);
    let mut covered = BTreeSet::new();
    for index in 0..4 {
        let mine = partitions_of(&first, index);
        assert_eq!(mine.len(), 1, "member {index} handled partitions {mine:?}");
        covered.extend(mine);
    }
    assert_eq!(covered.len(), 4, "{covered:?}");

    // One member leaves; its partition moves to the others.
    let leaving = members.remove(0);
    leaving.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let batch: Vec<_> = (400..600).map(contact).collect();
    producer
        .publish_many(&batch, &PublishOptions::default())
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || log.lock().unwrap().len() == 600).await);
    let all: Vec<_> = log.lock().unwrap().clone();
    assert_in_order(&all);
    let after = &all[400..];
    assert!(partitions_of(after, 0).is_empty());
    let covered: BTreeSet<String> = (1..4).flat_map(|m| partitions_of(after, m)).collect();
    assert_eq!(
        covered.len(),
        4,
        "the remaining members cover every partition: {covered:?}"
    );
    for member in members {
        member.stop().await;
    }
}
