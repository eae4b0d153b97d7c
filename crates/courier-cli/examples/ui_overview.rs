//! How long `courier ui`'s overview takes to render with 50 channels
//! holding a million waiting messages in all: a benchmark that prints
//! figures, not a test.
//!
//! ```sh
//! cargo run --release -p courier-cli --example ui_overview
//! ```
//!
//! It writes a registry of 50 channels (40 lists, 10 streams, each carrying
//! `contact_center.classified_task`) to a temporary folder, starts its own
//! `redis-server`, fills the channels with 1,000,000 messages through
//! `publish_many`, then asks the console for `/` over HTTP 30 times and
//! prints the median and the slowest.

use std::time::{Duration, Instant};

use clap::Parser;
use contact_center_contracts::ClassifiedTaskV2;
use courier::{Producer, PublishOptions};
use courier_cli::{ui, Cli, Context};
use courier_testkit::RedisServer;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioExecutor;
use serde_json::json;

const CHANNELS: usize = 50;
const MESSAGES: usize = 1_000_000;
const ROUNDS: usize = 30;

fn schemas() -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let dir = std::env::temp_dir().join(format!("courier-ui-bench-{}", std::process::id()));
    let domain = dir.join("contact_center");
    std::fs::create_dir_all(&domain).unwrap();
    std::fs::create_dir_all(dir.join("courier")).unwrap();
    for entry in std::fs::read_dir(source.join("courier")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("courier").join(entry.file_name())).unwrap();
    }
    for entry in std::fs::read_dir(source.join("contact_center")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("classified_task.") {
            std::fs::copy(entry.path(), domain.join(name)).unwrap();
        }
    }
    let channels: serde_json::Map<String, serde_json::Value> = (0..CHANNELS)
        .map(|i| {
            let transport = if i % 5 == 0 { "stream" } else { "list" };
            (
                format!("queue_{i:02}"),
                json!({
                    "description": "A queue of the console's benchmark.",
                    "message": "classified_task", "transport": transport, "ttl": "2h",
                    "compatibility": "backward",
                    "producers": ["bench"], "consumers": ["workers"]
                }),
            )
        })
        .collect();
    let file = json!({
        "$schema": "../courier/channels.schema.json",
        "domain": "contact_center",
        "description": "Fifty queues for the console's benchmark.",
        "channels": channels
    });
    std::fs::write(domain.join("channels.json"), file.to_string()).unwrap();
    dir
}

fn task(n: usize) -> ClassifiedTaskV2 {
    serde_json::from_value(json!({
        "task_id": format!("00000000-0000-4000-8000-{n:012}"),
        "interaction_id": format!("00000000-0000-4000-8000-{n:012}"),
        "customer_id": "C0012345", "region": "emea", "intent": "billing",
        "confidence": 0.9, "summary": "A task of the benchmark."
    }))
    .unwrap()
}

#[tokio::main]
async fn main() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let schemas = schemas();
    let url = server.url();
    let cli = Cli::try_parse_from([
        "courier",
        "--redis",
        &url,
        "--namespace",
        "bench",
        "--schemas",
        schemas.to_str().unwrap(),
        "doctor",
    ])
    .unwrap();
    let ctx = Context::new(cli);
    let args = ui::UiArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        read_only: true,
        token_file: None,
        refresh: 5,
    };
    let state = ui::state(&ctx, &args).await.unwrap();
    let client = ctx.client().await.unwrap();

    let started = Instant::now();
    let per_channel = MESSAGES / CHANNELS;
    for (c, spec) in state.channels.iter().enumerate() {
        let producer = Producer::<ClassifiedTaskV2>::untyped(&client, spec);
        let tasks: Vec<ClassifiedTaskV2> = (0..per_channel)
            .map(|i| task(c * per_channel + i))
            .collect();
        producer
            .publish_many(&tasks, &PublishOptions::default())
            .await
            .unwrap();
    }
    let figures: u64 = futures_util::future::join_all(
        state
            .channels
            .iter()
            .map(|spec| client.channel_state(spec, None)),
    )
    .await
    .into_iter()
    .map(|s| s.unwrap().total.waiting.unwrap_or(0))
    .sum();
    println!(
        "filled {} channels with {figures} waiting messages in {:.1} s",
        state.channels.len(),
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = axum::serve(listener, ui::router(state.clone()));
    tokio::spawn(async move { serving.await });
    let http: hyper_util::client::legacy::Client<_, Empty<axum::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let at = Instant::now();
        let response = http
            .get(format!("http://{addr}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len();
        times.push(at.elapsed());
    }
    times.sort();
    println!(
        "overview of {CHANNELS} channels, {figures} messages waiting: median {:.1} ms, slowest {:.1} ms over {ROUNDS} requests ({bytes} bytes)",
        times[ROUNDS / 2].as_secs_f64() * 1e3,
        times[ROUNDS - 1].as_secs_f64() * 1e3,
    );
    let _ = std::fs::remove_dir_all(schemas);
}
