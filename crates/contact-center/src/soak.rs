//! The soak (`cargo xtask soak --minutes N`): the contact-center pipeline,
//! day after day in one namespace on one Redis, for as long as asked, with
//! random faults, then checks that nothing was lost or done twice and that
//! nothing leaks.
//!
//! Each day is a short one of [`day_in`](crate::day_in), its contacts
//! numbered after the previous day's. Before it, a seeded draw picks its
//! faults: the classifier killed halfway and replaced, Redis SIGKILLed two
//! thirds in and restarted from its append-only file (`appendfsync
//! always`), the network to Redis cut for one to three seconds at a random
//! moment (every client talks to Redis through a [`FaultProxy`]).
//!
//! After every day it samples this process (resident memory, open file
//! descriptors) and Redis (keys, memory, consumers listed in stream
//! groups, keys without a TTL). At the end it checks:
//!
//! - lost 0 and resolved twice 0, summed over the days;
//! - no key without a TTL, after any day;
//! - no lease left once its TTL passed (partition leases of the stopped
//!   consumers);
//! - consumer groups not growing: no consumer stays listed in a stream's
//!   group longer than its life (a day), the forget horizon (three of the
//!   channel's visibility timeouts: 90 s on intake, 3 min on evaluations)
//!   and a day more; a run shorter than that cannot see the difference;
//! - memory back to the starting level once TTLs pass: every key with a
//!   TTL is made to expire now (`PEXPIRE 1`), as if its time had come;
//!   then no key may remain, and Redis' memory must be back within
//!   64 KiB of its level before the first day, besides courier's scripts
//!   in the script cache (per-command statistics reset on both sides);
//! - resident memory growth under 10 % from the end of the warm-up (the
//!   first quarter of the run) to the end; open file descriptors and
//!   threads flat (within 4 and 2), and at most 2 tasks alive on the
//!   runtime a second after any day (a dropped connection's reconnect may
//!   still be ending; a leak would pile them up).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use courier_testkit::{FaultProxy, RedisOptions, RedisServer};
use serde::Serialize;

use crate::{day_in, Args, Env};

/// Run the contact-center pipeline for a while with random faults, then
/// check for losses, duplicates and leaks.
#[derive(Debug, Clone, Parser)]
#[command(name = "contact-center-soak", version, about)]
pub struct SoakArgs {
    /// How long to run, in minutes (a day that has started is finished).
    #[arg(long, default_value_t = 2.0)]
    pub minutes: f64,
    /// Contacts per day.
    #[arg(long, default_value_t = 600)]
    pub interactions: u64,
    /// Simulated seconds per real second: 8,640 makes a day 10 s long.
    #[arg(long, default_value_t = 8640.0)]
    pub time_factor: f64,
    /// Seed of the fault draw (0: from the clock; the report names it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the samples and the verdict as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What one day did and what was measured after it.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The day, from 1.
    pub day: u32,
    /// Seconds since the soak started.
    pub at_seconds: f64,
    /// The faults of the day.
    pub faults: Vec<&'static str>,
    /// Contacts lost.
    pub lost: u64,
    /// Contacts resolved twice.
    pub resolved_twice: u64,
    /// Contacts dead-lettered (retries exhausted).
    pub dead_lettered: u64,
    /// This process's resident memory, KiB.
    pub rss_kib: u64,
    /// This process's open file descriptors.
    pub fds: u64,
    /// Tasks alive on the runtime.
    pub tasks: u64,
    /// This process's threads.
    pub threads: u64,
    /// Keys in Redis.
    pub keys: u64,
    /// Redis `used_memory`, bytes.
    pub used_memory: u64,
    /// Consumers listed in the stream groups, summed.
    pub group_consumers: u64,
    /// Of those, listed for longer than their forget horizon allows.
    pub overdue_consumers: u64,
    /// Keys without a TTL.
    pub keys_without_ttl: u64,
}

/// The soak's figures and checks.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// The seed of the fault draw.
    pub seed: u64,
    /// One sample per day.
    pub samples: Vec<Sample>,
    /// Redis' `used_memory` before the first day, bytes.
    pub used_memory_at_start: u64,
    /// Redis' `used_memory` once every TTL had passed, bytes.
    pub used_memory_at_end: u64,
    /// Of which courier's scripts in Redis' script cache, bytes.
    pub script_cache: u64,
    /// Keys left once every TTL had passed.
    pub keys_at_end: u64,
    /// Leases left once their TTL had passed.
    pub leases_at_end: u64,
    /// The checks: what, the figure, whether it passed.
    pub checks: Vec<(String, String, bool)>,
}

impl SoakReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, _, ok)| *ok)
    }
}

/// Runs the soak, prints its samples and checks, and returns them.
pub async fn run(args: SoakArgs) -> Result<SoakReport> {
    let seed = if args.seed == 0 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    } else {
        args.seed
    };
    let mut draw = fastrand::Rng::with_seed(seed);
    let mut server = RedisServer::start_with(RedisOptions::default().with_aof("always"))
        .map_err(anyhow::Error::msg)?;
    let proxy = FaultProxy::start(server.port()).map_err(anyhow::Error::msg)?;
    let url = proxy.url();
    let namespace = format!("soak-{}", &uuid::Uuid::new_v4().to_string()[..8]);
    let used_memory_at_start = settled_memory(&server)?.0;
    println!(
        "soak: {} min of {}-contact days on {url} (namespace {namespace}), fault seed {seed}",
        args.minutes, args.interactions
    );
    println!(
        "{:>4} {:>7}  {:<24} {:>4} {:>5} {:>4} {:>9} {:>4} {:>5} {:>7} {:>6} {:>10} {:>9} {:>6}",
        "day",
        "at s",
        "faults",
        "lost",
        "twice",
        "dead",
        "rss KiB",
        "fds",
        "tasks",
        "threads",
        "keys",
        "used mem",
        "consumers",
        "no TTL"
    );
    let started = Instant::now();
    let length = Duration::from_secs_f64(args.minutes * 60.0);
    let mut samples: Vec<Sample> = Vec::new();
    let mut first_seen: HashMap<(String, String, String), f64> = HashMap::new();
    let mut longest_day = 0f64;
    let mut day = 0u32;
    while day == 0 || started.elapsed() < length {
        day += 1;
        let mut faults = Vec::new();
        let mut day_args = Args::parse_from([
            "contact-center",
            "--quiet",
            "--interactions",
            &args.interactions.to_string(),
            "--time-factor",
            &args.time_factor.to_string(),
            "--seed",
            &day.to_string(),
            "--timeout",
            "600",
        ]);
        if draw.f64() < 0.5 {
            day_args.kill_agent = true;
            faults.push("classifier killed");
        }
        if draw.f64() < 0.3 {
            day_args.redis_restart = true;
            faults.push("redis restarted");
        }
        let network_cut = (draw.f64() < 0.5).then(|| {
            faults.push("network cut");
            let share = 0.2 + 0.6 * draw.f64();
            let length = Duration::from_millis(1000 + draw.u64(0..2000));
            (&proxy, share, length)
        });
        let env = Env {
            url: &url,
            namespace: &namespace,
            server: Some(&mut server),
            first_contact: u64::from(day) * 1_000_000,
            network_cut,
        };
        // The day prints nothing; its report is summed here.
        let (report, _stages) = day_in(&day_args, env)
            .await
            .with_context(|| format!("day {day}"))?;
        // Let the day's connections close before counting.
        tokio::time::sleep(Duration::from_secs(1)).await;

        let at = started.elapsed().as_secs_f64();
        longest_day = longest_day.max(at - samples.last().map_or(0.0, |s: &Sample| s.at_seconds));
        let listed = group_listing(&server, &namespace).await?;
        let mut overdue = 0;
        for (stream, group, name) in &listed {
            let seen = *first_seen
                .entry((stream.clone(), group.clone(), name.clone()))
                .or_insert(at);
            // Its life, the horizon, the next day's maintenance, and slack.
            let limit = 3.0 * visibility_of(stream).as_secs_f64() + 2.0 * longest_day + 10.0;
            if at - seen > limit {
                overdue += 1;
            }
        }
        let sample = Sample {
            day,
            at_seconds: at,
            faults,
            lost: report.lost,
            resolved_twice: report.resolved_twice,
            dead_lettered: report.dead_lettered,
            rss_kib: own_status("VmRSS:")?,
            fds: open_fds(proxy.port(), server.port())?,
            tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks() as u64,
            threads: own_status("Threads:")?,
            keys: info_keys(&server)?,
            used_memory: info_number(&server, "memory", "used_memory")?,
            group_consumers: listed.len() as u64,
            overdue_consumers: overdue,
            keys_without_ttl: keys_without_ttl(&server).await?,
        };
        println!(
            "{:>4} {:>7.1}  {:<24} {:>4} {:>5} {:>4} {:>9} {:>4} {:>5} {:>7} {:>6} {:>10} {:>9} {:>6}",
            sample.day,
            sample.at_seconds,
            short(&sample.faults),
            sample.lost,
            sample.resolved_twice,
            sample.dead_lettered,
            sample.rss_kib,
            sample.fds,
            sample.tasks,
            sample.threads,
            sample.keys,
            sample.used_memory,
            sample.group_consumers,
            sample.keys_without_ttl
        );
        samples.push(sample);
    }

    // Every consumer has stopped; the partition leases of a killed one
    // expire after their TTL (2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leases_at_end = count_keys(&server, &format!("{namespace}:{{lock.*}}:lease")).await?;
    // As if every TTL had passed.
    expire_everything(&server).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys_at_end = info_keys(&server)?;
    let (used_memory_at_end, script_cache) = settled_memory(&server)?;
    drop(proxy);
    drop(server);

    let checks = checks(
        &samples,
        started.elapsed(),
        &args,
        (keys_at_end, leases_at_end),
        (used_memory_at_start, used_memory_at_end, script_cache),
    );
    let report = SoakReport {
        seed,
        samples,
        used_memory_at_start,
        used_memory_at_end,
        script_cache,
        keys_at_end,
        leases_at_end,
        checks,
    };
    println!(
        "after the last day, every TTL made to pass: {keys_at_end} keys, {leases_at_end} leases, used memory {used_memory_at_end} bytes, {script_cache} of them the script cache (before the first day: {used_memory_at_start})"
    );
    for (what, figure, ok) in &report.checks {
        println!("{} {what}: {figure}", if *ok { "ok  " } else { "FAIL" });
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// The soak's checks over its samples and the end state.
fn checks(
    samples: &[Sample],
    ran: Duration,
    args: &SoakArgs,
    (keys_at_end, leases_at_end): (u64, u64),
    (memory_at_start, memory_at_end, script_cache): (u64, u64, u64),
) -> Vec<(String, String, bool)> {
    let mut checks = Vec::new();
    let mut check = |what: &str, figure: String, ok: bool| {
        checks.push((what.to_string(), figure, ok));
    };
    let lost: u64 = samples.iter().map(|s| s.lost).sum();
    let twice: u64 = samples.iter().map(|s| s.resolved_twice).sum();
    let contacts = samples.len() as u64 * args.interactions;
    check(
        "lost",
        format!("{lost} of {contacts} contacts over {} days", samples.len()),
        lost == 0,
    );
    check("resolved twice", format!("{twice}"), twice == 0);
    let without_ttl = samples
        .iter()
        .map(|s| s.keys_without_ttl)
        .max()
        .unwrap_or(0);
    check(
        "keys without a TTL, after any day",
        format!("{without_ttl}"),
        without_ttl == 0,
    );
    check(
        "leases left once their TTL passed",
        format!("{leases_at_end}"),
        leases_at_end == 0,
    );
    check(
        "keys left once every TTL passed",
        format!("{keys_at_end}"),
        keys_at_end == 0,
    );
    let grown = memory_at_end.saturating_sub(memory_at_start + script_cache);
    check(
        "Redis memory back to its starting level once every TTL passed",
        format!(
            "{memory_at_start} -> {memory_at_end} bytes, of which {script_cache} the script cache; +{grown} besides"
        ),
        grown <= 64 << 10,
    );
    // The warm-up: the days that ended in the first quarter of the run
    // (at least the first day).
    let warm = samples
        .iter()
        .take_while(|s| s.at_seconds <= ran.as_secs_f64() / 4.0)
        .last()
        .unwrap_or(&samples[0]);
    let last = samples.last().expect("at least one day");
    let growth = last.rss_kib as f64 / warm.rss_kib.max(1) as f64 - 1.0;
    check(
        "resident memory growth after warm-up",
        format!(
            "{} KiB after day {} -> {} KiB after day {} ({:+.1} %)",
            warm.rss_kib,
            warm.day,
            last.rss_kib,
            last.day,
            growth * 100.0
        ),
        growth < 0.10,
    );
    check(
        "open file descriptors flat after warm-up",
        format!(
            "{} after day {} -> {} after day {}",
            warm.fds, warm.day, last.fds, last.day
        ),
        last.fds <= warm.fds + 4,
    );
    check(
        "threads flat after warm-up",
        format!(
            "{} after day {} -> {} after day {}",
            warm.threads, warm.day, last.threads, last.day
        ),
        last.threads <= warm.threads + 2,
    );
    // A task may still be ending a second after its day (a dropped
    // connection's last reconnect attempt); a leak would pile them up.
    let tasks = samples.iter().map(|s| s.tasks).max().unwrap_or(0);
    let days_with_tasks = samples.iter().filter(|s| s.tasks > 0).count();
    check(
        "tasks left on the runtime after a day",
        format!(
            "at most {tasks} (on {days_with_tasks} of {} days)",
            samples.len()
        ),
        tasks <= 2,
    );
    // A group forgets a consumer three of its channel's visibility
    // timeouts after it went quiet, at the next maintenance of a live one.
    let overdue = samples
        .iter()
        .map(|s| s.overdue_consumers)
        .max()
        .unwrap_or(0);
    let most = samples.iter().map(|s| s.group_consumers).max().unwrap_or(0);
    check(
        "no consumer listed in a group past its forget horizon",
        format!(
            "{overdue} overdue; at most {most} listed, {} after the last day",
            last.group_consumers
        ),
        overdue == 0,
    );
    checks
}

fn short(faults: &[&str]) -> String {
    if faults.is_empty() {
        return "-".into();
    }
    faults
        .iter()
        .map(|f| match *f {
            "classifier killed" => "kill",
            "redis restarted" => "restart",
            _ => "cut",
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A number from `/proc/self/status` (`VmRSS:` is in KiB, `Threads:` a
/// count).
fn own_status(field: &str) -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// Open file descriptors of this process, but for the fault proxy's own
/// sockets (listening on or accepted at `proxy`, or connected to Redis on
/// `redis`), which are the soak's harness, not the pipeline.
fn open_fds(proxy: u16, redis: u16) -> Result<u64> {
    let harness = harness_sockets(proxy, redis);
    let mut count = 0;
    for entry in std::fs::read_dir("/proc/self/fd").context("reading /proc/self/fd")? {
        let Ok(target) = entry.and_then(|e| std::fs::read_link(e.path())) else {
            continue; // closed since listed
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok());
        if !inode.is_some_and(|i| harness.contains(&i)) {
            count += 1;
        }
    }
    Ok(count)
}

/// The inodes of the TCP sockets with local port `proxy` or remote port
/// `redis`, from `/proc/net/tcp` and `/proc/net/tcp6`.
fn harness_sockets(proxy: u16, redis: u16) -> std::collections::HashSet<u64> {
    let port = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                continue;
            }
            let (local, remote) = (port(fields[1]), port(fields[2]));
            if local == Some(proxy) || remote == Some(redis) {
                if let Ok(inode) = fields[9].parse() {
                    inodes.insert(inode);
                }
            }
        }
    }
    inodes
}

/// A field of `INFO <section>`, read straight from the server.
fn info_number(server: &RedisServer, section: &str, field: &str) -> Result<u64> {
    let info = server
        .command_text(&format!("INFO {section}"))
        .map_err(anyhow::Error::msg)?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no {field} in INFO {section}"))
}

/// Redis' `used_memory` and the script cache's share of it, with the
/// per-command statistics reset first (`CONFIG RESETSTAT`): Redis keeps a
/// latency histogram per command it has run, about 1 MiB for courier's
/// commands, which is bookkeeping bounded by the command table, not data.
fn settled_memory(server: &RedisServer) -> Result<(u64, u64)> {
    server
        .command("CONFIG RESETSTAT")
        .map_err(anyhow::Error::msg)?;
    Ok((
        info_number(server, "memory", "used_memory")?,
        info_number(server, "memory", "used_memory_scripts")?,
    ))
}

/// Keys in the server (`DBSIZE`).
fn info_keys(server: &RedisServer) -> Result<u64> {
    let reply = server.command("DBSIZE").map_err(anyhow::Error::msg)?;
    reply
        .trim_start_matches(':')
        .parse()
        .with_context(|| format!("unexpected DBSIZE reply {reply:?}"))
}

async fn connection(server: &RedisServer) -> Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?)
}

/// Runs `command` (`PTTL`, `PEXPIRE`, ...) with `extra` arguments on every
/// key matching `pattern`, one `SCAN` batch at a time, so that the soak's
/// own reading holds one batch, never the whole keyspace (which would grow
/// with it and read as the process's growth); returns the replies' values
/// folded by `fold`.
async fn each_key(
    server: &RedisServer,
    pattern: &str,
    command: Option<(&str, &[&str])>,
    mut fold: impl FnMut(&str, i64),
) -> Result<()> {
    let mut conn = connection(server).await?;
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        match command {
            Some((name, extra)) if !batch.is_empty() => {
                let mut pipe = redis::pipe();
                for key in &batch {
                    pipe.cmd(name).arg(key).arg(extra);
                }
                let replies: Vec<i64> = pipe.query_async(&mut conn).await?;
                for (key, reply) in batch.iter().zip(replies) {
                    fold(key, reply);
                }
            }
            _ => batch.iter().for_each(|key| fold(key, 0)),
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

async fn count_keys(server: &RedisServer, pattern: &str) -> Result<u64> {
    let mut count = 0;
    each_key(server, pattern, None, |_, _| count += 1).await?;
    Ok(count)
}

/// Keys whose `PTTL` is -1 (no TTL).
async fn keys_without_ttl(server: &RedisServer) -> Result<u64> {
    let mut without = 0;
    each_key(server, "*", Some(("PTTL", &[])), |_, ttl| {
        if ttl == -1 {
            without += 1;
        }
    })
    .await?;
    Ok(without)
}

/// Makes every key with a TTL expire now, as if its time had come; a key
/// without a TTL is left (`XX`), and counted by the caller.
async fn expire_everything(server: &RedisServer) -> Result<()> {
    each_key(server, "*", Some(("PEXPIRE", &["1", "XX"])), |_, _| {}).await
}

/// Every consumer listed in a group of the namespace's streams: (stream,
/// group, consumer).
async fn group_listing(
    server: &RedisServer,
    namespace: &str,
) -> Result<Vec<(String, String, String)>> {
    let mut streams = Vec::new();
    each_key(server, &format!("{namespace}:*:stream"), None, |key, _| {
        streams.push(key.to_string())
    })
    .await?;
    let mut conn = connection(server).await?;
    let mut listed = Vec::new();
    for stream in streams {
        let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut conn)
            .await?;
        for group in groups.groups {
            let consumers: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&stream)
                .arg(&group.name)
                .query_async(&mut conn)
                .await?;
            for consumer in consumers.consumers {
                listed.push((stream.clone(), group.name.clone(), consumer.name));
            }
        }
    }
    Ok(listed)
}

/// The visibility timeout of the channel a stream key belongs to
/// (`<namespace>:{contact_center.<channel>[#<partition>]}:stream`); the
/// longest of the pipeline's for a key it does not know.
fn visibility_of(stream: &str) -> Duration {
    let channel = stream
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag.split('#').next().unwrap_or(tag))
        .unwrap_or_default();
    let stages = crate::STAGES.iter().map(|(spec, _)| spec);
    stages
        .clone()
        .find(|spec| spec.qualified_name() == channel)
        .map(|spec| spec.visibility_timeout)
        .unwrap_or_else(|| {
            stages
                .map(|s| s.visibility_timeout)
                .max()
                .unwrap_or_default()
        })
}
