//! `courier status`: one table of every channel and partition.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use courier::breaker::{Breaker, BreakerConfig, BreakerState};
use courier::{partition, ChannelSpec, Client, Transport};
use redis::streams::StreamInfoGroupsReply;
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
    /// Messages waiting (streams: for the slowest group, undelivered plus
    /// pending).
    pub depth: Option<u64>,
    /// Delivered and not yet settled.
    pub pending: Option<u64>,
    /// Consumers (or subscribers) present.
    pub consumers: u64,
    /// Undelivered entries for the slowest group (streams).
    pub lag: Option<u64>,
    /// Age of the oldest waiting message, in seconds.
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

/// The rows of one channel, a partition each.
pub async fn channel_rows(client: &Client, spec: &'static ChannelSpec) -> Result<Vec<Row>> {
    let state = channel_state(client, spec).await;
    let mut rows = Vec::new();
    for partition in partition::all(spec) {
        let keys = client.keys(spec, partition.as_deref());
        let inbox = keys.inbox(spec.transport);
        let mut row = Row {
            channel: spec.qualified_name(),
            partition: partition.clone(),
            transport: spec.transport.as_str(),
            depth: None,
            pending: None,
            consumers: 0,
            lag: None,
            oldest_seconds: None,
            delayed: client
                .query(redis::cmd("ZCARD").arg(keys.delayed()))
                .await?,
            dlq: client.query(redis::cmd("XLEN").arg(keys.dlq())).await?,
            sla_breaches: None,
            lost_by_trim: None,
            state: state.clone(),
            memory_bytes: None,
        };
        match spec.transport {
            Transport::Stream => {
                stream_row(client, &inbox, &mut row).await?;
                row.lost_by_trim = Some(
                    client
                        .query::<Option<u64>>(redis::cmd("GET").arg(keys.lost_by_trim()))
                        .await?
                        .unwrap_or(0),
                );
            }
            Transport::List | Transport::Priority => {
                held_row(client, spec, &keys, &mut row).await?;
                if spec.transport == Transport::Priority {
                    row.sla_breaches = Some(
                        client
                            .query::<Option<u64>>(redis::cmd("GET").arg(keys.sla_breaches()))
                            .await?
                            .unwrap_or(0),
                    );
                }
            }
            Transport::Pubsub => {
                let counts: redis::Value = client
                    .query(redis::cmd("PUBSUB").arg("NUMSUB").arg(&inbox))
                    .await?;
                row.consumers = subscribers(counts);
            }
        }
        if spec.transport != Transport::Pubsub {
            row.memory_bytes = client
                .query(redis::cmd("MEMORY").arg("USAGE").arg(&inbox))
                .await
                .unwrap_or(None);
        }
        rows.push(row);
    }
    Ok(rows)
}

async fn stream_row(client: &Client, stream: &str, row: &mut Row) -> Result<()> {
    let length: u64 = client.query(redis::cmd("XLEN").arg(stream)).await?;
    let groups: StreamInfoGroupsReply = if length > 0 {
        client
            .query(redis::cmd("XINFO").arg("GROUPS").arg(stream))
            .await
            .unwrap_or_default()
    } else {
        StreamInfoGroupsReply::default()
    };
    let pending: u64 = groups.groups.iter().map(|g| g.pending as u64).sum();
    row.consumers = groups.groups.iter().map(|g| g.consumers as u64).sum();
    row.pending = Some(pending);
    // The slowest group decides depth, lag and the oldest waiting message.
    let slowest = groups
        .groups
        .iter()
        .max_by_key(|g| g.lag.unwrap_or(length as usize) + g.pending);
    match slowest {
        Some(group) => {
            let lag = group.lag.map(|l| l as u64);
            row.lag = lag;
            row.depth = Some(lag.unwrap_or(length) + group.pending as u64);
            let next: Vec<(String, Vec<(String, String)>)> = client
                .query(
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg(format!("({}", group.last_delivered_id))
                        .arg("+")
                        .arg("COUNT")
                        .arg(1),
                )
                .await
                .unwrap_or_default();
            row.oldest_seconds = next.first().and_then(|(id, _)| age_of_id(id));
        }
        None => {
            row.depth = Some(length);
            let first: Vec<(String, Vec<(String, String)>)> = client
                .query(
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg("-")
                        .arg("+")
                        .arg("COUNT")
                        .arg(1),
                )
                .await?;
            row.oldest_seconds = first.first().and_then(|(id, _)| age_of_id(id));
        }
    }
    Ok(())
}

async fn held_row(
    client: &Client,
    spec: &ChannelSpec,
    keys: &courier::keys::ChannelKeys,
    row: &mut Row,
) -> Result<()> {
    let queue = keys.queue();
    let (depth, next): (u64, Vec<String>) = if spec.transport == Transport::List {
        (
            client.query(redis::cmd("LLEN").arg(&queue)).await?,
            client
                .query(redis::cmd("LRANGE").arg(&queue).arg(-1).arg(-1))
                .await?,
        )
    } else {
        (
            client.query(redis::cmd("ZCARD").arg(&queue)).await?,
            client
                .query(redis::cmd("ZRANGE").arg(&queue).arg(0).arg(0))
                .await?,
        )
    };
    row.depth = Some(depth);
    row.oldest_seconds = next.first().and_then(|record| age_of_record(record));
    let consumers: Vec<String> = client
        .query(redis::cmd("SMEMBERS").arg(keys.consumers()))
        .await?;
    let mut pending = 0;
    for consumer in &consumers {
        let held: u64 = client
            .query(redis::cmd("LLEN").arg(keys.processing(consumer)))
            .await?;
        pending += held;
        let alive: bool = client
            .query(redis::cmd("EXISTS").arg(keys.alive(consumer)))
            .await?;
        row.consumers += u64::from(alive);
    }
    row.pending = Some(pending);
    Ok(())
}

/// `paused`, the dependency breaker's state, or `ok`.
async fn channel_state(client: &Client, spec: &'static ChannelSpec) -> String {
    let pause = Breaker::channel(client, spec, BreakerConfig::default());
    if let Ok(pause) = pause {
        if matches!(pause.state().await, Ok(BreakerState::Paused)) {
            return "paused".into();
        }
    }
    if let Some(dependency) = &spec.dependency {
        if let Ok(breaker) = Breaker::new(client, &dependency.name, BreakerConfig::default()) {
            match breaker.state().await {
                Ok(BreakerState::Closed) | Err(_) => {}
                Ok(state) => return format!("{} {}", dependency.name, state.as_str()),
            }
        }
    }
    "ok".into()
}

fn age_of_id(id: &str) -> Option<u64> {
    let ms: i64 = id.split('-').next()?.parse().ok()?;
    Some(((Utc::now().timestamp_millis() - ms).max(0) / 1000) as u64)
}

fn age_of_record(record: &str) -> Option<u64> {
    let envelope: serde_json::Value =
        serde_json::from_str(&courier::envelope::parse_record(record).envelope).ok()?;
    let created = envelope.get("created_at")?.as_str()?;
    let created = chrono::DateTime::parse_from_rfc3339(created).ok()?;
    Some(
        (Utc::now() - created.with_timezone(&Utc))
            .num_seconds()
            .max(0) as u64,
    )
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

/// Subscribers in a `PUBSUB NUMSUB` reply of one channel; on a cluster,
/// where each node counts its own, the sum over the nodes.
fn subscribers(reply: redis::Value) -> u64 {
    match reply {
        redis::Value::Map(nodes) => nodes.into_iter().map(|(_, n)| subscribers(n)).sum(),
        other => redis::from_redis_value::<Vec<(String, u64)>>(other)
            .ok()
            .and_then(|counts| counts.first().map(|(_, n)| *n))
            .unwrap_or(0),
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1}K", b as f64 / (1 << 10) as f64),
        b => format!("{b}B"),
    }
}
