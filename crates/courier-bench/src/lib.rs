//! Benchmarks of courier against two baselines, measured in the same run,
//! the sides taking turns over several rounds:
//!
//! - **same-work**: hand-written `redis` crate calls doing courier's Redis
//!   work without courier (same payloads, same batching, same
//!   concurrency);
//! - **pipelined**: the fastest straightforward hand-written queue (`SET
//!   NX` + `XADD` pipelined 500 at a time; 50 readers, each `XREADGROUP
//!   COUNT 100` on its own connection, then one pipeline of `XACK` and done
//!   marks per read batch), in publish_batch, end_to_end and
//!   latency_1k_per_s;
//! - with `--peers`, **BullMQ** (a pinned release, installed from npm into
//!   a temporary directory when `node` is on PATH, skipped with a message
//!   otherwise) on end_to_end's workload. Not run in CI.
//!
//! Each side also reports the client's CPU per message (user+sys of the
//! process over the messages handled). The machine is shared and noisy, so
//! medians and ratios of medians are what count.
//!
//! # Layout
//!
//! - `lib.rs`: [`Args`], [`run`], and the summary ([`Figure`]).
//! - [`scenarios`]: each scenario and its sides.
//! - [`pipelined`]: the pipelined baseline's queue.
//! - [`peers`]: BullMQ's installation and run (`peers/bullmq.mjs`).
//! - [`cpu`]: the process's CPU time.

pub mod cpu;
pub mod peers;
pub mod pipelined;
pub mod scenarios;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use serde::Serialize;

/// Benchmark courier against hand-written Redis queues (and BullMQ).
///
/// Two baselines run beside courier: "same-work", raw `redis` calls doing
/// courier's Redis work, and "pipelined", the fastest straightforward
/// hand-written stream queue. Ratios are courier's median over each.
#[derive(Debug, Clone, Parser)]
#[command(name = "courier-bench", version)]
pub struct Args {
    /// Use this Redis instead of starting an ephemeral `redis-server`
    /// (its keys are namespaced and deleted afterwards).
    #[arg(long)]
    pub redis: Option<String>,
    /// Rounds of every scenario; every side runs once in each, the sides
    /// taking turns going first.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Smaller counts and shorter runs, for a quick look (and the tests).
    #[arg(long)]
    pub quick: bool,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// Also write every figure and sample as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also run BullMQ on end_to_end's workload: needs `node` and `npm` on
    /// PATH (skipped with a message otherwise) and installs a pinned
    /// bullmq and ioredis from npm into a temporary directory. Not for CI.
    #[arg(long)]
    pub peers: bool,
    /// Run courier's side alone (no baselines, no ratios): for a profiler.
    #[arg(long)]
    pub courier_only: bool,
}

/// One figure, measured once per round on each side.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The scenario.
    pub scenario: &'static str,
    /// What was measured.
    pub metric: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Whether more is better (throughput) or less (latency, memory).
    pub higher_is_better: bool,
    /// courier's value in each round.
    pub courier: Vec<f64>,
    /// The same-work baseline's value in each round.
    pub same_work: Vec<f64>,
    /// The pipelined baseline's value in each round; empty where it does
    /// not run.
    pub pipelined: Vec<f64>,
    /// BullMQ's value in each round; empty without `--peers`.
    pub bullmq: Vec<f64>,
}

impl Figure {
    /// A figure with no samples yet.
    pub fn new(
        scenario: &'static str,
        metric: &'static str,
        unit: &'static str,
        higher_is_better: bool,
    ) -> Figure {
        Figure {
            scenario,
            metric,
            unit,
            higher_is_better,
            courier: Vec::new(),
            same_work: Vec::new(),
            pipelined: Vec::new(),
            bullmq: Vec::new(),
        }
    }

    /// courier's median over `other`'s; NaN when `other` has no samples or
    /// its median is 0 (a count that should be zero on both sides).
    pub fn ratio_to(&self, other: &[f64]) -> f64 {
        let other = median(other);
        if other == 0.0 {
            return f64::NAN;
        }
        median(&self.courier) / other
    }

    /// Medians and ratios, for the JSON summary.
    fn summary(&self) -> Summary {
        Summary {
            scenario: self.scenario,
            metric: self.metric,
            unit: self.unit,
            courier: median(&self.courier),
            same_work: median(&self.same_work),
            pipelined: median(&self.pipelined),
            bullmq: median(&self.bullmq),
            ratio_same_work: self.ratio_to(&self.same_work),
            ratio_pipelined: self.ratio_to(&self.pipelined),
            ratio_bullmq: self.ratio_to(&self.bullmq),
        }
    }
}

/// One figure's medians and courier's ratios to each other side, as the
/// table prints them (JSON `null` where a side did not run).
#[derive(Debug, Serialize)]
struct Summary {
    scenario: &'static str,
    metric: &'static str,
    unit: &'static str,
    courier: f64,
    same_work: f64,
    pipelined: f64,
    bullmq: f64,
    ratio_same_work: f64,
    ratio_pipelined: f64,
    ratio_bullmq: f64,
}

/// The median of `values` (the mean of the middle two for an even count);
/// NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The value at quantile `q` (nearest rank); NaN when empty.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// The whole run as JSON.
#[derive(Debug, Serialize)]
struct Run<'a> {
    redis_version: String,
    cpus: usize,
    rounds: usize,
    quick: bool,
    /// The BullMQ release measured, with `--peers` and Node.
    bullmq: Option<&'static str>,
    summary: Vec<Summary>,
    figures: &'a [Figure],
}

/// Runs every scenario `rounds` times, prints the table and, with
/// `--json`, writes every sample.
pub async fn run(args: Args) -> Result<()> {
    let (server, url) = match &args.redis {
        Some(url) => (None, url.clone()),
        None => {
            // Without persistence: the bench measures courier, not the
            // disk, and both sides would pay the same for it.
            let server = courier_testkit::RedisServer::start_with(courier_testkit::RedisOptions {
                args: ["--appendonly", "no", "--save", ""]
                    .into_iter()
                    .map(String::from)
                    .collect(),
                ..Default::default()
            })
            .map_err(anyhow::Error::msg)?;
            let url = server.url();
            (Some(server), url)
        }
    };
    let peers = if args.peers {
        peers::Peers::install()?
    } else {
        None
    };
    let bullmq = peers.as_ref().map(|_| peers::BULLMQ);
    let mut bench = scenarios::Bench::connect(&url, args.quick, peers).await?;
    bench.courier_only = args.courier_only;
    let info: String = bench.raw_query(redis::cmd("INFO").arg("server")).await?;
    let redis_version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "redis {redis_version} on {url}, {cpus} cpus, {} rounds{}",
        args.rounds,
        if args.quick { ", quick" } else { "" }
    );

    let mut figures: Vec<Figure> = Vec::new();
    for round in 0..args.rounds.max(1) {
        for scenario in scenarios::ALL {
            if args
                .only
                .as_deref()
                .is_some_and(|only| !scenario.contains(only))
            {
                continue;
            }
            eprintln!("  round {}: {scenario}", round + 1);
            // The sides take turns going first (`Bench::sides`), so none
            // always runs on a warmer (or more fragmented) server.
            let measured = bench
                .run(scenario, round)
                .await
                .with_context(|| format!("scenario {scenario}"))?;
            for sample in measured.values {
                let metric = sample.metric;
                let at = match figures
                    .iter()
                    .position(|f| f.scenario == *scenario && f.metric == metric.name)
                {
                    Some(at) => at,
                    None => {
                        figures.push(Figure::new(
                            scenario,
                            metric.name,
                            metric.unit,
                            metric.higher_is_better,
                        ));
                        figures.len() - 1
                    }
                };
                let figure = &mut figures[at];
                figure.courier.push(sample.courier);
                if !sample.same_work.is_nan() {
                    figure.same_work.push(sample.same_work);
                }
                figure.pipelined.extend(sample.pipelined);
                figure.bullmq.extend(sample.bullmq);
            }
        }
    }
    bench.cleanup().await?;
    print_table(&figures, &mut std::io::stdout())?;
    if let Some(path) = &args.json {
        let run = Run {
            redis_version,
            cpus,
            rounds: args.rounds,
            quick: args.quick,
            bullmq,
            summary: figures.iter().map(Figure::summary).collect(),
            figures: &figures,
        };
        std::fs::write(path, serde_json::to_string_pretty(&run)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    drop(server);
    Ok(())
}

/// Medians, min–max and ratios, one line per figure: courier, the
/// same-work and pipelined baselines, and BullMQ's columns when it ran.
pub fn print_table(figures: &[Figure], out: &mut dyn Write) -> Result<()> {
    let with_bullmq = figures.iter().any(|f| !f.bullmq.is_empty());
    let mut header = vec![
        "courier".to_string(),
        "same-work".to_string(),
        "pipelined".to_string(),
    ];
    if with_bullmq {
        header.push("BullMQ".to_string());
    }
    let ratio_header: Vec<String> = header[1..].iter().map(|h| format!("÷ {h}")).collect();
    let row = |scenario: &str, metric: &str, cells: &[String], ratios: &[String]| {
        let mut line = format!("{scenario:<17} {metric:<30}");
        for cell in cells {
            line.push_str(&format!(" {cell:>22}"));
        }
        for ratio in ratios {
            line.push_str(&format!(" {ratio:>11}"));
        }
        line
    };
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        row("scenario", "metric", &header, &ratio_header).trim_end()
    )?;
    let cell = |values: &[f64]| {
        if values.is_empty() {
            return "—".to_string();
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} ({}–{})", short(median(values)), short(min), short(max))
    };
    for f in figures {
        let mut sides = vec![&f.courier, &f.same_work, &f.pipelined];
        if with_bullmq {
            sides.push(&f.bullmq);
        }
        let cells: Vec<String> = sides.iter().map(|values| cell(values)).collect();
        let ratios: Vec<String> = sides[1..]
            .iter()
            .map(|other| {
                let ratio = f.ratio_to(other);
                if ratio.is_nan() {
                    "—".to_string()
                } else {
                    format!("{ratio:.2}×")
                }
            })
            .collect();
        writeln!(
            out,
            "{}",
            row(
                f.scenario,
                &format!("{} ({})", f.metric, f.unit),
                &cells,
                &ratios
            )
        )?;
    }
    writeln!(
        out,
        "\ncells: median (min–max) over rounds. ÷ X: courier's median over X's \
         (throughput: higher is better; latency, CPU and bytes: lower)"
    )?;
    Ok(())
}

fn short(value: f64) -> String {
    if value.abs() >= 100_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let mut figure = Figure::new("s", "m", "msg/s", true);
        figure.courier = vec![70.0, 80.0, 90.0];
        figure.same_work = vec![100.0, 100.0, 100.0];
        assert!((figure.ratio_to(&figure.same_work) - 0.8).abs() < 1e-12);
        assert!(figure.ratio_to(&figure.pipelined).is_nan());
        assert_eq!(quantile(&mut [5.0, 1.0, 3.0], 0.5), 3.0);
    }

    #[test]
    fn the_table_has_a_column_per_side_that_ran() {
        let mut figure = Figure::new("end_to_end", "drain", "msg/s", true);
        figure.courier = vec![30_000.0];
        figure.same_work = vec![40_000.0];
        figure.pipelined = vec![60_000.0];
        let mut out = Vec::new();
        print_table(std::slice::from_ref(&figure), &mut out).unwrap();
        let table = String::from_utf8(out).unwrap();
        assert!(table.contains("÷ pipelined"), "{table}");
        assert!(!table.contains("BullMQ"), "{table}");
        assert!(
            table.contains("0.75×") && table.contains("0.50×"),
            "{table}"
        );
        figure.bullmq = vec![10_000.0];
        let mut out = Vec::new();
        print_table(&[figure], &mut out).unwrap();
        let table = String::from_utf8(out).unwrap();
        assert!(
            table.contains("÷ BullMQ") && table.contains("3.00×"),
            "{table}"
        );
    }
}
