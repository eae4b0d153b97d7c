//! Benchmarks of courier against a baseline: hand-written `redis` crate
//! calls doing the same Redis work without courier (same payloads, same
//! batching, same concurrency), measured in the same run, alternating, over
//! several rounds. The machine is shared and noisy, so medians and ratios
//! are what count.
//!
//! # Layout
//!
//! - `lib.rs`: [`Args`], [`run`], and the summary ([`Figure`]).
//! - [`scenarios`]: each scenario, its courier side and its baseline.

pub mod scenarios;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use serde::Serialize;

/// Benchmark courier against raw Redis calls doing the same work.
#[derive(Debug, Clone, Parser)]
#[command(name = "courier-bench", version, about)]
pub struct Args {
    /// Use this Redis instead of starting an ephemeral `redis-server`
    /// (its keys are namespaced and deleted afterwards).
    #[arg(long)]
    pub redis: Option<String>,
    /// Rounds of every scenario; courier and baseline alternate in each.
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
    /// The baseline's value in each round.
    pub baseline: Vec<f64>,
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
            baseline: Vec::new(),
        }
    }

    /// courier's median over the baseline's; NaN when the baseline's is
    /// 0 (a count that should be zero on both sides).
    pub fn ratio(&self) -> f64 {
        let baseline = median(&self.baseline);
        if baseline == 0.0 {
            return f64::NAN;
        }
        median(&self.courier) / baseline
    }
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
    let bench = scenarios::Bench::connect(&url, args.quick).await?;
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
            // Alternate which side goes first, so neither always runs on
            // a warmer (or more fragmented) server.
            let measured = bench
                .run(scenario, round % 2 == 1)
                .await
                .with_context(|| format!("scenario {scenario}"))?;
            for (metric, courier, baseline) in measured.values {
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
                figures[at].courier.push(courier);
                figures[at].baseline.push(baseline);
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
            figures: &figures,
        };
        std::fs::write(path, serde_json::to_string_pretty(&run)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    drop(server);
    Ok(())
}

/// Medians, min–max and ratios, one line per figure.
pub fn print_table(figures: &[Figure], out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "\n{:<24} {:<30} {:>24} {:>24} {:>9}",
        "scenario", "metric", "courier median (min–max)", "baseline median (min–max)", "ratio"
    )?;
    let cell = |values: &[f64]| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} ({}–{})", short(median(values)), short(min), short(max))
    };
    for f in figures {
        let ratio = f.ratio();
        writeln!(
            out,
            "{:<24} {:<30} {:>24} {:>24} {:>9}",
            f.scenario,
            format!("{} ({})", f.metric, f.unit),
            cell(&f.courier),
            cell(&f.baseline),
            if ratio.is_nan() {
                "—".to_string()
            } else {
                format!("{ratio:.2}×")
            }
        )?;
    }
    writeln!(
        out,
        "\nratio: courier's median over the baseline's (throughput: higher is better; latency and bytes: lower)"
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
        figure.baseline = vec![100.0, 100.0, 100.0];
        assert!((figure.ratio() - 0.8).abs() < 1e-12);
        assert_eq!(quantile(&mut [5.0, 1.0, 3.0], 0.5), 3.0);
    }
}
