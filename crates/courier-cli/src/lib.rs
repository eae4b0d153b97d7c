//! The `courier` operator CLI: what an operator needs to see queue health
//! and fix incidents without writing Redis commands by hand.
//!
//! It reads the same `schemas/` as the code generator to know the channels,
//! and talks to Redis through the runtime, so keys and rules come from one
//! place.
//!
//! # Layout
//!
//! - [`status`]: `courier status`, one table of every channel.
//! - [`dead`]: `courier dlq list|show|replay|purge`.
//! - [`cloudevents`]: messages as CloudEvents 1.0 (`--format cloudevents`).
//! - [`inspect`]: `courier peek` and `courier validate`.
//! - [`acl`]: `courier acl`, Redis ACL users per role.
//! - [`capacity`]: `courier capacity`, projected memory and shards.
//! - [`doctor`]: `courier doctor`, what a Redis needs for courier.
//! - [`ui`]: `courier ui`, the operator console in a browser.
//! - [`transfer`]: `courier export` and `courier import`.
//! - [`keda`]: `courier keda`, KEDA manifests per consumer role.
//! - `entries`: a queue's entries read as bytes, each a message or flagged
//!   (`not_utf8`, `no_envelope`, `not_json`), for `peek` and `export`.

pub mod acl;
pub mod capacity;
pub mod cloudevents;
pub mod dead;
pub mod doctor;
mod entries;
pub mod inspect;
pub mod keda;
pub mod status;
pub mod transfer;
pub mod ui;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use courier::{ChannelSpec, Client};
use courier_schema::Registry;

/// How `peek` and `export` write a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// courier's envelope, as stored.
    #[default]
    Envelope,
    /// a CloudEvents 1.0 event in the JSON format (docs/cloudevents.md).
    Cloudevents,
}

/// The flags of `peek` and `export` (`entries::Flag`), for their `--help`;
/// a macro because `concat!` takes literals only.
macro_rules! flags_help {
    () => {
        "  not_utf8     bytes that are not UTF-8 text
  no_envelope  a stream entry without the envelope field `m` (\"fields\" lists its fields)
  not_json     text that is not JSON
In \"raw\" and \"fields\", `\\` is written `\\\\` and a byte that is not UTF-8 `\\xNN`.
"
    };
}

/// Operate courier channels: status, dead letters, validation, ACLs.
#[derive(Debug, Parser)]
#[command(name = "courier", version, about, long_about = None)]
#[command(after_help = "Examples:
  courier status --watch
  courier dlq list --channel contact_center.billing --reason max_attempts
  courier dlq replay --channel billing --since 2026-11-28T09:00:00Z --dry-run
  courier validate contact_center.classified_task@2 task.json
  courier acl --password classifier=s3cret > users.acl")]
pub struct Cli {
    /// Redis URL (`redis://`, `rediss://`, with `user:password@` for ACL users).
    #[arg(
        long = "redis",
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379/",
        global = true
    )]
    pub redis: String,
    /// Key namespace (environment) to operate on.
    #[arg(
        long,
        env = "COURIER_NAMESPACE",
        hide_env_values = true,
        default_value = "default",
        global = true
    )]
    pub namespace: String,
    /// The schemas folder that declares the channels.
    #[arg(
        long,
        env = "COURIER_SCHEMAS",
        hide_env_values = true,
        default_value = "schemas",
        global = true
    )]
    pub schemas: PathBuf,
    /// PEM file of the CA that signs a `rediss://` server's certificate.
    #[arg(long, env = "COURIER_TLS_CA", hide_env_values = true, global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Speak the Redis Cluster protocol; `--redis` may then list several
    /// seed nodes, comma-separated.
    #[arg(long, env = "COURIER_CLUSTER", global = true)]
    pub cluster: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One table of every channel and partition: depth, pending, consumers,
    /// lag, oldest message, delayed, dead letters, SLA breaches, state.
    #[command(
        after_help = "Examples:\n  courier status\n  courier status --watch 5\n  courier status --json | jq '.channels[] | select(.dlq > 0)'"
    )]
    Status(status::Args),
    /// Dead letters: list, show, replay after a fix, purge.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier dlq list --channel billing --reason max_attempts\n  courier dlq show --channel billing 1732780800000-0\n  courier dlq replay --channel billing --since 2026-11-28T09:00:00Z --dry-run\n  courier dlq purge --reason expired --yes"
    )]
    Dlq(dead::Command),
    /// Recent messages of a channel, decoded with their envelopes; entries
    /// that are not messages are shown too, flagged.
    #[command(after_help = concat!(
        "Entries that are not messages are shown, not skipped, each after a line\n",
        "`! <flag>: <where>: <what>` and with its flag in the JSON:\n",
        flags_help!(),
        "\nExample:\n  courier peek contact_center.intake --count 3",
    ))]
    Peek(inspect::PeekArgs),
    /// Validate a payload against a message schema; every error with its pointer.
    #[command(
        after_help = "Examples:\n  courier validate contact_center.classified_task task.json\n  cat task.json | courier validate contact_center.classified_task@1 -"
    )]
    Validate(inspect::ValidateArgs),
    /// Stop every consumer of a channel, on every worker; messages wait.
    Pause {
        /// The channel: `<domain>.<channel>`, or `<channel>` when unique.
        channel: String,
    },
    /// Let the consumers of a paused channel take work again.
    Resume {
        /// The channel: `<domain>.<channel>`, or `<channel>` when unique.
        channel: String,
    },
    /// Redis ACL users per role from `channels.json`.
    #[command(
        after_help = "Examples:\n  courier acl --password telephony=s3cret --password classifier=s3cret > users.acl\n  courier acl --format commands | redis-cli"
    )]
    Acl(acl::Args),
    /// Check a Redis for what courier needs; warn about what loses data.
    #[command(after_help = "Example:\n  courier --redis redis://redis.internal:6379/ doctor")]
    Doctor,
    /// Write a channel's messages (or dead letters) as JSON lines, consuming nothing.
    #[command(after_help = concat!(
        "A message is written {\"envelope\": ...}. An entry that is not a message is\n",
        "written as found, with \"flag\", \"partition\", \"id\" (streams) or \"index\"\n",
        "(lists, priority queues), and \"raw\" or \"fields\"; the export goes on, and\n",
        "import refuses those lines:\n",
        flags_help!(),
        "\nExamples:\n  courier export intake > intake.jsonl\n  courier export billing --dlq > billing-dead.jsonl",
    ))]
    Export(transfer::ExportArgs),
    /// Validate and publish messages from JSON lines, keeping their idempotency keys.
    #[command(
        after_help = "Example:\n  courier --redis redis://staging:6379/ import intake intake.jsonl --rate 200"
    )]
    Import(transfer::ImportArgs),
    /// Projected Redis memory per channel and in total, and the shards needed.
    #[command(
        after_help = "Examples:\n  courier capacity --offline --rate intake=4800 --size 1024\n  courier capacity --node-memory-mib 8192"
    )]
    Capacity(capacity::Args),
    /// KEDA ScaledObjects (and TriggerAuthentications) per consumer role,
    /// from the contracts.
    #[command(
        after_help = "Examples:\n  courier --namespace prod keda --address redis.prod:6379 > keda.yaml\n  courier --cluster keda --address node1:6379,node2:6379,node3:6379 --role classifier\n  courier keda --mode pending --target 50 --group specialist=specialists"
    )]
    Keda(keda::Args),
    /// The operator console in a browser: every channel at a glance, a
    /// channel's messages, dead letters to replay or purge, the contracts.
    /// Listens on localhost unless told otherwise; actions need a login
    /// with the token of COURIER_UI_TOKEN or --token-file.
    #[command(
        after_help = "Examples:\n  COURIER_UI_TOKEN=$(openssl rand -hex 16) courier --namespace prod ui\n  courier ui --listen 0.0.0.0:8080 --read-only"
    )]
    Ui(ui::UiArgs),
}

/// Runs one command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode> {
    let ctx = Context::new(cli);
    match &ctx.cli.command {
        Command::Status(args) => status::run(&ctx, args, out).await,
        Command::Dlq(command) => dead::run(&ctx, command, out).await,
        Command::Peek(args) => inspect::peek(&ctx, args, out).await,
        Command::Validate(args) => inspect::validate(&ctx, args, out),
        Command::Pause { channel } => {
            let spec = ctx.channel(channel)?;
            ctx.client().await?.pause(spec).await?;
            writeln!(out, "paused {}", spec.qualified_name())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { channel } => {
            let spec = ctx.channel(channel)?;
            ctx.client().await?.resume(spec).await?;
            writeln!(out, "resumed {}", spec.qualified_name())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Acl(args) => acl::run(&ctx, args, out),
        Command::Doctor => doctor::run(&ctx, out).await,
        Command::Export(args) => transfer::export(&ctx, args, out).await,
        Command::Import(args) => transfer::import(&ctx, args, out).await,
        Command::Capacity(args) => capacity::run(&ctx, args, out).await,
        Command::Keda(args) => keda::run(&ctx, args, out),
        Command::Ui(args) => ui::run(&ctx, args, out).await,
    }
}

/// What every command shares: the arguments, the registry, the client.
#[derive(Debug)]
pub struct Context {
    /// The parsed arguments.
    pub cli: Cli,
    /// The registry of `--schemas`, loaded on first use.
    registry: OnceLock<&'static Registry>,
}

impl Context {
    /// A context for these arguments; nothing is read yet.
    pub fn new(cli: Cli) -> Context {
        Context {
            cli,
            registry: OnceLock::new(),
        }
    }

    /// The channels and messages of `--schemas`, loaded once per process
    /// and leaked: the runtime runs a channel by a `&'static ChannelSpec`
    /// (what generated code gives it), and the registry's channels are
    /// those specs. One registry per process is a bounded leak, where
    /// copying each spec into a leaked box per use was not (`status
    /// --watch` asks every tick).
    pub fn registry(&self) -> Result<&'static Registry> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let registry = Registry::load(&self.cli.schemas).map_err(|problems| {
            anyhow::anyhow!(
                "cannot read the schemas in {} ({} problem(s); run `cargo xtask lint`):\n{problems}",
                self.cli.schemas.display(),
                problems.len()
            )
        })?;
        Ok(self.registry.get_or_init(|| Box::leak(Box::new(registry))))
    }

    /// A client of `--redis` in `--namespace`.
    pub async fn client(&self) -> Result<Client> {
        let options = courier::ConnectOptions {
            tls_ca_file: self.cli.tls_ca.clone(),
            cluster: self.cli.cluster,
        };
        Ok(
            Client::connect_with(&self.cli.redis, &self.cli.namespace, &options)
                .await
                .map(|c| c.with_name("courier-cli"))?,
        )
    }

    /// Every channel, sorted by domain, then name.
    pub fn channels(&self) -> Result<Vec<&'static ChannelSpec>> {
        let registry = self.registry()?;
        Ok(registry
            .domains
            .values()
            .flat_map(|domain| domain.channels.values())
            .collect())
    }

    /// One channel by `<domain>.<channel>` or a unique `<channel>`.
    pub fn channel(&self, name: &str) -> Result<&'static ChannelSpec> {
        let matches: Vec<_> = self
            .channels()?
            .into_iter()
            .filter(|spec| spec.qualified_name() == name || spec.name == name)
            .collect();
        match matches[..] {
            [spec] => Ok(spec),
            [] => bail!(
                "no channel {name:?} in {}; `courier status` lists them",
                self.cli.schemas.display()
            ),
            _ => bail!("channel name {name:?} is ambiguous; use <domain>.<channel>"),
        }
    }
}

/// Rows (the first is the header) as columns aligned on the widest cell.
pub(crate) fn aligned(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
