//! `courier capacity`: projected Redis memory per channel and in total,
//! and the shards needed, from the channel contracts (retention, TTL, dedup
//! window, partitions) and declared or measured rates and message sizes.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use courier::Transport;

use crate::Context;

/// Bytes an idempotency or done key takes: key name, value, TTL bookkeeping.
const KEY_BYTES: f64 = 120.0;

/// `courier capacity` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A channel's rate, `CHANNEL=MESSAGES_PER_DAY`; repeat per channel.
    /// Channels without one use the live rate (streams), else `--default-rate`.
    #[arg(long = "rate", value_name = "CHANNEL=PER_DAY")]
    pub rates: Vec<String>,
    /// Messages per day for channels with neither a declared nor a live rate.
    #[arg(long, default_value_t = 4800.0)]
    pub default_rate: f64,
    /// Bytes per stored message when Redis has none to measure.
    #[arg(long, default_value_t = 1024.0)]
    pub size: f64,
    /// Memory of one Redis node, in MiB, for the shard count (70 % usable).
    #[arg(long, default_value_t = 4096.0)]
    pub node_memory_mib: f64,
    /// Do not connect to Redis: declared and default figures only.
    #[arg(long)]
    pub offline: bool,
}

/// Runs `courier capacity`.
pub async fn run(ctx: &Context, args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let mut declared = std::collections::BTreeMap::new();
    for pair in &args.rates {
        let Some((channel, rate)) = pair.split_once('=') else {
            bail!("--rate takes CHANNEL=PER_DAY, got {pair:?}");
        };
        let spec = ctx.channel(channel)?;
        declared.insert(spec.qualified_name(), rate.parse::<f64>()?);
    }
    let client = if args.offline {
        None
    } else {
        Some(ctx.client().await?)
    };
    writeln!(
        out,
        "CHANNEL                          RATE/DAY  SOURCE    SIZE  WINDOW  MESSAGES  PROJECTED"
    )?;
    let mut total = 0.0;
    for spec in ctx.channels()? {
        if spec.transport == Transport::Pubsub {
            continue;
        }
        let name = spec.qualified_name();
        let (mut rate, mut source) = match declared.get(&name) {
            Some(rate) => (*rate, "declared"),
            None => (args.default_rate, "default"),
        };
        let mut size = args.size;
        if let Some(client) = &client {
            let (live_rate, measured) = measure(client, spec).await?;
            if let (Some(live), false) = (live_rate, declared.contains_key(&name)) {
                rate = live;
                source = "live";
            }
            if let Some(measured) = measured {
                size = measured;
            }
        }
        // How long a message stays in Redis at the most: streams keep
        // entries for their retention (or up to max_len); queues hold a
        // message until handled, at worst for its TTL.
        let window = match spec.transport {
            Transport::Stream => spec.retention.max_age,
            _ => spec.ttl,
        };
        let days = |d: Duration| d.as_secs_f64() / 86_400.0;
        let mut messages = rate * days(window);
        if let (Transport::Stream, Some(max_len)) = (spec.transport, spec.retention.max_len) {
            let partitions = courier::partition::all(spec).len() as f64;
            messages = messages.min(max_len as f64 * partitions);
        }
        let keys = rate * (days(spec.dedup_window) + days(spec.ttl)) * KEY_BYTES;
        let projected = messages * size + keys;
        total += projected;
        writeln!(
            out,
            "{name:<32} {rate:>9.0}  {source:<8} {size:>5.0}  {:>6}  {messages:>8.0}  {:>9}",
            courier_schema::duration::format_duration(window),
            mib(projected)
        )?;
    }
    let usable = args.node_memory_mib * 0.7 * 1024.0 * 1024.0;
    let shards = (total / usable).ceil().max(1.0);
    writeln!(
        out,
        "total {} · {shards} shard(s) of {} MiB at 70 % usable",
        mib(total),
        args.node_memory_mib
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The live rate (messages a day, from the last hour of stream entries) and
/// the measured bytes per stored message, where Redis has data.
async fn measure(
    client: &courier::Client,
    spec: &'static courier::ChannelSpec,
) -> Result<(Option<f64>, Option<f64>)> {
    let (mut recent, mut items, mut bytes) = (0u64, 0u64, 0u64);
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    // How many entries each partition keeps comes from the runtime's state
    // reading; the rate and the bytes per entry are measured here.
    let state = client.channel_state(spec, None).await?;
    for partition in state.partitions {
        let inbox = client
            .keys(spec, partition.partition.as_deref())
            .inbox(spec.transport);
        let count = partition.figures.stored;
        if spec.transport == Transport::Stream {
            let ids: Vec<(String, Vec<(String, String)>)> = client
                .query(
                    redis::cmd("XRANGE")
                        .arg(&inbox)
                        .arg(format!("{hour_ago}-0"))
                        .arg("+")
                        .arg("COUNT")
                        .arg(100_000),
                )
                .await?;
            recent += ids.len() as u64;
        }
        if count > 0 {
            items += count;
            let usage: Option<u64> = client
                .query(
                    redis::cmd("MEMORY")
                        .arg("USAGE")
                        .arg(&inbox)
                        .arg("SAMPLES")
                        .arg(0),
                )
                .await
                .unwrap_or(None);
            bytes += usage.unwrap_or(0);
        }
    }
    let rate = (spec.transport == Transport::Stream && recent > 0).then_some(recent as f64 * 24.0);
    let size = (items > 0 && bytes > 0).then(|| bytes as f64 / items as f64);
    Ok((rate, size))
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}
