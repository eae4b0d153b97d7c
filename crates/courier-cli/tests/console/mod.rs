//! What the console's suites share: a console served on a free loopback
//! port against a real Redis, seeded with messages and dead letters, and
//! a plain HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use clap::Parser;
use contact_center_contracts::{channels, ClassifiedTaskV2, InteractionV1};
use courier::{Client, Outcome};
use courier_cli::ui::{self, Ui, UiArgs};
use courier_cli::{Cli, Context};
use courier_testkit::RedisServer;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

/// The login token of every test console.
pub const TOKEN: &str = "test-token-0123456789";

/// A namespace no other test uses.
pub fn namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ui{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A console on a free port: its address and its state.
pub struct Console {
    pub addr: SocketAddr,
    pub ui: Arc<Ui>,
    pub client: Client,
}

/// Serves a console for `server` in `namespace`; `read_only` as the flag.
pub async fn serve(server: &RedisServer, namespace: &str, read_only: bool) -> Console {
    serve_at(&server.url(), false, namespace, read_only).await
}

/// Serves a console for the Redis at `url` (a cluster's seeds with
/// `cluster`) in `namespace`.
pub async fn serve_at(url: &str, cluster: bool, namespace: &str, read_only: bool) -> Console {
    let schemas = format!("{}/../../schemas", env!("CARGO_MANIFEST_DIR"));
    let token_file = std::env::temp_dir().join(format!("courier-ui-token-{namespace}"));
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut argv = vec![
        "courier",
        "--redis",
        url,
        "--namespace",
        namespace,
        "--schemas",
        &schemas,
    ];
    if cluster {
        argv.push("--cluster");
    }
    argv.push("doctor");
    let cli = Cli::try_parse_from(argv).unwrap();
    let ctx = Context::new(cli);
    let args = UiArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        read_only,
        token_file: Some(token_file),
        refresh: 1,
    };
    let ui = ui::state(&ctx, &args).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = axum::serve(listener, ui::router(ui.clone()));
    tokio::spawn(async move { serving.await });
    tokio::spawn(ui::history::sample(ui.clone()));
    let client = ctx.client().await.unwrap();
    Console { addr, ui, client }
}

/// An answer: status, `Location` and `Set-Cookie` headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub cookie: Option<String>,
    pub body: String,
}

/// Sends one request; `form` makes it a POST of those fields.
pub async fn request(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let client: hyper_util::client::legacy::Client<HttpConnector, Full<axum::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let mut builder = axum::http::Request::builder().uri(format!("http://{addr}{path}"));
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let body = match form {
        Some(fields) => {
            builder = builder
                .method("POST")
                .header("content-type", "application/x-www-form-urlencoded");
            let mut encoded = form_urlencoded_encode(fields);
            encoded.shrink_to_fit();
            encoded
        }
        None => String::new(),
    };
    let response = client
        .request(
            builder
                .body(Full::new(axum::body::Bytes::from(body)))
                .unwrap(),
        )
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, location, cookie) = (
        response.status().as_u16(),
        header("location"),
        header("set-cookie").map(|c| c.split(';').next().unwrap_or("").to_owned()),
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn form_urlencoded_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Logs in: the session cookie, and the CSRF token of its forms.
pub async fn login(addr: SocketAddr) -> (String, String) {
    let answer = request(addr, "/login", None, Some(&[("token", TOKEN)])).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    let cookie = answer.cookie.expect("a session cookie");
    let page = request(
        addr,
        "/channels/contact_center.billing",
        Some(&cookie),
        None,
    )
    .await;
    (cookie, csrf_of(&page.body))
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A classified task numbered `n`.
pub fn task(n: u64) -> ClassifiedTaskV2 {
    serde_json::from_value(json!({
        "task_id": format!("00000000-0000-4000-8000-{:012}", 500 + n),
        "interaction_id": format!("00000000-0000-4000-8000-{n:012}"),
        "customer_id": "C0012345", "region": "emea", "intent": "billing",
        "confidence": 0.9, "summary": format!("task {n}")
    }))
    .unwrap()
}

/// An interaction numbered `n`.
pub fn interaction(n: u64) -> InteractionV1 {
    let region = ["amer", "emea", "apac"][n as usize % 3];
    serde_json::from_value(json!({
        "interaction_id": format!("00000000-0000-4000-8000-{n:012}"),
        "customer_id": "C0012345", "region": region,
        "medium": "chat", "text": format!("contact {n}"), "received_at": "2026-11-28T09:00:00Z"
    }))
    .unwrap()
}

/// Publishes `tasks` on billing and has a consumer refuse each as fatal,
/// so each becomes a dead letter.
pub async fn dead_letter(client: &Client, tasks: std::ops::Range<u64>) {
    let producer = channels::billing::producer(client);
    let count = tasks.end - tasks.start;
    for n in tasks {
        producer.publish(&task(n)).await.unwrap();
    }
    let dlq = client.dlq(&channels::billing::SPEC);
    let before = dlq.len().await.unwrap();
    let token = courier::CancellationToken::new();
    let consumer = channels::billing::consumer(client, "specialists");
    let running = tokio::spawn({
        let token = token.clone();
        async move {
            consumer
                .run_until(|_| async { Outcome::fatal("refused for the test") }, token)
                .await
        }
    });
    for _ in 0..400 {
        if dlq.len().await.unwrap() >= before + count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    token.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(dlq.len().await.unwrap(), before + count);
}

impl Console {
    /// How many dead letters billing holds.
    pub async fn billing_dead(&self) -> u64 {
        self.client
            .dlq(&channels::billing::SPEC)
            .len()
            .await
            .unwrap()
    }
}
