//! Shared fixtures for the workspace-wide suites in `tests/`: schema paths,
//! an ephemeral Redis per test, sample contact-center messages, and checks
//! made with raw Redis commands (never through the code under test).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use contact_center_contracts::{ClassifiedTaskV2, InteractionV1};
pub use courier_testkit::{RedisOptions, RedisServer};
use serde_json::json;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `schemas/` folder.
pub fn schemas_dir() -> PathBuf {
    workspace_root().join("schemas")
}

/// A namespace no other test uses.
pub fn namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A client of `server` in a fresh namespace.
pub async fn client(server: &RedisServer) -> courier::Client {
    courier::Client::connect(&server.url(), &namespace())
        .await
        .expect("connect to the test redis-server")
}

/// A raw connection for checks that must not go through courier.
pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A UUID made from a number, so tests can name messages.
pub fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Interaction number `n`.
pub fn interaction(n: u64) -> InteractionV1 {
    let region = ["amer", "emea", "apac"][(n % 3) as usize];
    serde_json::from_value(json!({
        "interaction_id": uuid(n),
        "customer_id": format!("C{:07}", n % 10_000_000),
        "region": region,
        "medium": "chat",
        "text": format!("Contact number {n}"),
        "received_at": "2026-11-28T09:00:00Z"
    }))
    .unwrap()
}

/// The task a classifier derives from interaction `n`: the same input
/// always gives the same task and idempotency key.
pub fn task_for(n: u64) -> ClassifiedTaskV2 {
    serde_json::from_value(json!({
        "task_id": uuid(1_000_000 + n),
        "interaction_id": uuid(n),
        "customer_id": format!("C{:07}", n % 10_000_000),
        "region": "emea",
        "intent": "billing",
        "confidence": 0.9,
        "summary": format!("Task for contact {n}")
    }))
    .unwrap()
}

/// Every key of `namespace` with no TTL: must be empty, since every key the
/// runtime writes has a TTL.
pub async fn keys_without_ttl(server: &RedisServer, namespace: &str) -> Vec<String> {
    let mut conn = raw(server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the test wrote no keys under {namespace}");
    let mut persistent = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if ttl < 0 {
            persistent.push(key);
        }
    }
    persistent
}

/// The README's Rust examples, compiled by `cargo test` as doctests so the
/// documentation cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeExamples;
