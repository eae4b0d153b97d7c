//! `courier status`: one table of every channel and partition.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use courier::breaker::BreakerState;
use courier::{ChannelSpec, Client};
use serde::Serialize;

use crate::Context;

/// `courier status` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Refresh in place every N seconds until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<u64>,
}

/// One channel partition's health.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// `<domain>.<channel>`.
    pub channel: String,
    /// The partition, if any.
    pub partition: Option<String>,
    /// The transport.
    pub transport: &'static str,
    /// Messages not yet delivered (streams: to the slowest group).
    pub depth: Option<u64>,
    /// Delivered and not yet settled (streams: over every group).
    pub pending: Option<u64>,
    /// Consumers with a live heartbeat (pubsub: subscribers).
    pub consumers: u64,
    /// Undelivered entries for the slowest group (streams).
    pub lag: Option<u64>,
    /// Age of the oldest message not yet delivered, in seconds.
    pub oldest_seconds: Option<u64>,
    /// Retries and scheduled messages waiting for their time.
    pub delayed: u64,
    /// Dead letters.
    pub dlq: u64,
    /// SLA breaches found (priority channels).
    pub sla_breaches: Option<u64>,
    /// Pending messages trimmed away before any consumer handled them
    /// (streams).
    pub lost_by_trim: Option<u64>,
    /// `ok`, `paused`, or the dependency breaker's state.
    pub state: String,
    /// Bytes the channel's queue key takes in Redis.
    pub memory_bytes: Option<u64>,
}

/// Runs `courier status`.
pub async fn run(ctx: &Context, args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let client = ctx.client().await?;
    let channels = ctx.channels()?;
    loop {
        let mut rows = Vec::new();
        for spec in &channels {
            rows.extend(channel_rows(&client, spec).await?);
        }
        let used: String = match client.info("memory").await.as_deref() {
            Ok([(_, info)]) => info_field(info, "used_memory_human"),
            // A cluster: the sum over its masters.
            Ok(nodes) if !nodes.is_empty() => {
                let total: u64 = nodes
                    .iter()
                    .filter_map(|(_, info)| info_field(info, "used_memory")?.parse::<u64>().ok())
                    .sum();
                Some(format!("{} on {} masters", human_bytes(total), nodes.len()))
            }
            _ => None,
        }
        .unwrap_or_else(|| "?".into());
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "namespace": ctx.cli.namespace,
                    "redis_memory": used,
                    "channels": rows,
                }))?
            )?;
        } else {
            if args.watch.is_some() {
                // Clear the screen and go home, so the table refreshes in place.
                write!(out, "\x1b[2J\x1b[H")?;
            }
            write!(out, "{}", table(&rows))?;
            for row in rows.iter().filter(|r| r.lost_by_trim.unwrap_or(0) > 0) {
                writeln!(
                    out,
                    "warning: {}{}: {} pending message(s) trimmed away before any consumer handled them; raise the channel's retention",
                    row.channel,
                    row.partition.as_ref().map(|p| format!("#{p}")).unwrap_or_default(),
                    row.lost_by_trim.unwrap_or(0)
                )?;
            }
            writeln!(
                out,
                "namespace {} · redis memory used {used}",
                ctx.cli.namespace
            )?;
        }
        let Some(every) = args.watch else {
            return Ok(ExitCode::SUCCESS);
        };
        out.flush()?;
        tokio::time::sleep(Duration::from_secs(every.max(1))).await;
    }
}

/// The rows of one channel, a partition each, from the runtime's reading
/// of its state (every group of a stream).
pub async fn channel_rows(client: &Client, spec: &'static ChannelSpec) -> Result<Vec<Row>> {
    let state = client
        .channel_state(spec, None)
        .await
        .with_context(|| format!("reading the state of {}", spec.qualified_name()))?;
    let label = if state.paused {
        "paused".to_string()
    } else {
        match (&spec.dependency, state.dependency) {
            (Some(dependency), Some(breaker)) if breaker != BreakerState::Closed => {
                format!("{} {}", dependency.name, breaker.as_str())
            }
            _ => "ok".to_string(),
        }
    };
    Ok(state
        .partitions
        .into_iter()
        .map(|p| {
            let f = p.figures;
            Row {
                channel: state.channel.clone(),
                partition: p.partition,
                transport: spec.transport.as_str(),
                depth: f.waiting,
                pending: f.held,
                consumers: f.consumers,
                lag: f.lag,
                oldest_seconds: f.oldest.map(|age| age.as_secs()),
                delayed: f.delayed,
                dlq: f.dead,
                sla_breaches: f.sla_breaches,
                lost_by_trim: f.lost_by_trim,
                state: label.clone(),
                memory_bytes: f.memory_bytes,
            }
        })
        .collect())
}

fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// The rows as an aligned table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "CHANNEL",
        "PARTITION",
        "TRANSPORT",
        "DEPTH",
        "PENDING",
        "CONSUMERS",
        "LAG",
        "OLDEST",
        "DELAYED",
        "DLQ",
        "SLA",
        "STATE",
        "MEMORY",
    ];
    let dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.channel.clone(),
                r.partition.clone().unwrap_or_else(|| "-".into()),
                r.transport.to_string(),
                dash(r.depth),
                dash(r.pending),
                r.consumers.to_string(),
                dash(r.lag),
                r.oldest_seconds.map_or("-".into(), |s| format!("{s}s")),
                r.delayed.to_string(),
                r.dlq.to_string(),
                dash(r.sla_breaches),
                r.state.clone(),
                r.memory_bytes.map_or("-".into(), human_bytes),
            ]
        })
        .collect();
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect()];
    rows.extend(cells);
    crate::aligned(&rows)
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1}K", b as f64 / (1 << 10) as f64),
        b => format!("{b}B"),
    }
}
