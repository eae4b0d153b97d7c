//! `courier ui`: the operator console in a browser.
//!
//! Server-rendered pages (axum, maud templates compiled into the binary, one
//! embedded stylesheet, no script needed), over the same runtime API as the
//! other commands: channel state from `Client::channel_state`, messages
//! held from `Client::in_flight`, dead letters from `Dlq`.
//!
//! - [`overview`]: every channel of every domain, refreshing itself.
//! - [`channel`]: one channel (waiting, in flight, scheduled, dead
//!   letters; pause and resume) and one message.
//! - [`dead`]: dead letters filtered, replayed and purged.
//! - [`contracts`]: domains, channels, message versions and the flow.
//! - [`auth`]: the login, sessions and CSRF tokens that guard actions.
//! - [`layout`]: the page shell, the stylesheet, error pages and
//!   small renderers (ages, sparklines).
//! - [`history`]: each channel's backlog over the last minutes.
//!
//! Security: the console listens on localhost unless told otherwise;
//! `--read-only` hides and refuses every action; without a token (from
//! `COURIER_UI_TOKEN` or `--token-file`) it is read-only too. Actions need
//! a login with that token and carry the session's CSRF token; each is
//! logged on stderr (who, what, how many) and counted in
//! `courier_ui_actions_total`, served with the rest on `/metrics`.

pub mod auth;
pub mod channel;
pub mod contracts;
pub mod dead;
pub mod history;
pub mod layout;
pub mod overview;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::routing::{get, post};
use axum::Router;
use courier::{ChannelSpec, Client};
use courier_schema::Registry;

use crate::Context;

/// `courier ui` options.
#[derive(Debug, clap::Args)]
pub struct UiArgs {
    /// Where to listen. Only localhost unless told otherwise: the console
    /// shows message contents.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Show everything, change nothing: every action is hidden and refused.
    #[arg(long)]
    pub read_only: bool,
    /// A file holding the login token (its first line). Without it and
    /// without `COURIER_UI_TOKEN`, the console is read-only.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Seconds between the overview's refreshes and backlog samples.
    #[arg(long, default_value_t = 5)]
    pub refresh: u64,
}

/// What every request handler shares.
#[derive(Debug)]
pub struct Ui {
    /// The Redis client.
    pub client: Client,
    /// The contracts.
    pub registry: &'static Registry,
    /// Every channel, sorted by domain and name.
    pub channels: Vec<&'static ChannelSpec>,
    /// The login token; `None`: read-only.
    pub token: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// Seconds between refreshes.
    pub refresh: u64,
    /// Logged-in sessions.
    pub sessions: auth::Sessions,
    /// Each channel's recent backlog.
    pub history: history::History,
    /// The metrics recorder, for `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Ui {
    /// Whether actions may be offered at all.
    pub fn writable(&self) -> bool {
        !self.read_only && self.token.is_some()
    }

    /// The channel named `name` (`<domain>.<channel>`).
    pub fn channel(&self, name: &str) -> Option<&'static ChannelSpec> {
        self.channels
            .iter()
            .copied()
            .find(|spec| spec.qualified_name() == name)
    }
}

/// The console's routes over `ui`.
pub fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(overview::show))
        .route("/channels/{channel}", get(channel::show))
        .route("/channels/{channel}/messages/{id}", get(channel::message))
        .route("/channels/{channel}/pause", post(channel::pause))
        .route("/channels/{channel}/resume", post(channel::resume))
        .route("/channels/{channel}/dead", get(dead::show))
        .route("/channels/{channel}/dead/replay", post(dead::replay))
        .route("/channels/{channel}/dead/purge", post(dead::purge))
        .route("/contracts", get(contracts::show))
        .route("/contracts/{message}/{version}", get(contracts::schema))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/style.css", get(layout::stylesheet))
        .route("/metrics", get(metrics))
        .fallback(layout::not_found)
        .with_state(ui)
}

async fn metrics(axum::extract::State(ui): axum::extract::State<Arc<Ui>>) -> String {
    ui.metrics.as_ref().map(|m| m.render()).unwrap_or_default()
}

/// The process's Prometheus recorder, installed by the first console (a
/// process has one recorder; later consoles share it).
fn recorder() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static RECORDER: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    RECORDER
        .get_or_init(|| courier::metrics::install().ok())
        .clone()
}

/// The shared state of a console for `ctx`'s Redis and schemas.
pub async fn state(ctx: &Context, args: &UiArgs) -> Result<Arc<Ui>> {
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        None => std::env::var("COURIER_UI_TOKEN").ok(),
    }
    .filter(|t| !t.is_empty());
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        anyhow::bail!("the login token must be at least 16 characters");
    }
    Ok(Arc::new(Ui {
        client: ctx.client().await?,
        registry: ctx.registry()?,
        channels: ctx.channels()?,
        token,
        read_only: args.read_only,
        refresh: args.refresh.max(1),
        sessions: auth::Sessions::default(),
        history: history::History::default(),
        metrics: recorder(),
    }))
}

/// Runs `courier ui` until interrupted.
pub async fn run(ctx: &Context, args: &UiArgs, out: &mut dyn std::io::Write) -> Result<ExitCode> {
    let ui = state(ctx, args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mode = if ui.writable() {
        "actions need a login"
    } else if ui.read_only {
        "read-only"
    } else {
        "read-only: no login token (COURIER_UI_TOKEN or --token-file)"
    };
    writeln!(
        out,
        "courier ui on http://{} ({mode})",
        listener.local_addr()?
    )?;
    out.flush()?;
    tokio::spawn(history::sample(ui.clone()));
    axum::serve(listener, router(ui))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
