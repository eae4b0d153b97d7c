//! `--scenarios`: the seed's sensitivity analysis, run rather than
//! recomputed. Three days, each on its own Redis (with `REDIS_URL`, one
//! after another on that Redis under fresh namespaces, so its
//! `used_memory` includes the earlier days' keys until they expire), with
//! the other options as given:
//!
//! - **the seed's day**: `--interactions` (4,800 by default), the
//!   automation that emerges from `--resolvable` (65 % by default);
//! - **half again as many contacts** (7,200): "if daily interactions climb
//!   to 7,200"; the pools scale and the model's capacity is raised where
//!   the declared one is short (see [`crate::capacity`]);
//! - **automation 50 %**: "if automation coverage drops to 50 %": half the
//!   contacts can be resolved without a human.
//!
//! Printed side by side: every SLA check, each channel's peak backlog and
//! consumer instances, Redis's peak memory (the server's and each
//! channel's), the model's capacity, and every line of the economics.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::report::{self, Report};
use crate::Args;

/// One scenario's name and its report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// What it changes.
    pub name: String,
    /// How its day went.
    pub report: Report,
}

/// The three cases, as changes to `args`: its day (4,800 contacts by
/// default), half again as many (7,200), and its day with half the
/// contacts resolvable without a human.
fn cases(args: &Args) -> Vec<(String, Args)> {
    let base = Args {
        quiet: true,
        json: None,
        html: None,
        scenarios: false,
        ..args.clone()
    };
    let day = args.interactions;
    let more = day * 3 / 2;
    vec![
        (format!("seed day ({})", thousands(day)), base.clone()),
        (
            format!("{} contacts", thousands(more)),
            Args {
                interactions: more,
                ..base.clone()
            },
        ),
        (
            "automation 50 %".into(),
            Args {
                resolvable: 0.5,
                ..base
            },
        ),
    ]
}

fn thousands(n: u64) -> String {
    report::group(n as f64, 0)
}

/// Runs the three days one after another, prints them side by side (and
/// writes them as JSON where asked), and returns them.
pub async fn run(args: Args) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for (name, case) in cases(&args) {
        if !args.quiet {
            eprintln!("running {name}: {} contacts ...", case.interactions);
        }
        let (report, _) = crate::day(&case).await?;
        outcomes.push(Outcome { name, report });
    }
    print(&outcomes, &mut std::io::stdout())?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&outcomes)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(outcomes)
}

/// The scenarios as one table, a column each.
pub fn print(outcomes: &[Outcome], out: &mut dyn Write) -> Result<()> {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let column = |f: &dyn Fn(&Report) -> String| outcomes.iter().map(|o| f(&o.report)).collect();
    rows.push(("SLA checks".into(), vec![String::new(); outcomes.len()]));
    let checks = outcomes.first().map_or(0, |o| o.report.checks.len());
    for i in 0..checks {
        let sla = outcomes[0].report.checks[i].sla.clone();
        rows.push((
            format!("  {sla}"),
            column(&|r| {
                let check = &r.checks[i];
                let verdict = if check.passed { "pass" } else { "FAIL" };
                format!("{verdict}: {}", check.measured)
            }),
        ));
    }
    rows.push((
        "peak backlog / instances / memory".into(),
        vec![String::new(); outcomes.len()],
    ));
    let channels: Vec<String> = outcomes
        .first()
        .map(|o| o.report.channels.keys().cloned().collect())
        .unwrap_or_default();
    for channel in &channels {
        let short = channel.rsplit('.').next().unwrap_or(channel);
        rows.push((
            format!("  {short}"),
            column(&|r| {
                r.channels.get(channel).map_or_else(String::new, |f| {
                    format!(
                        "{} / {} / {}",
                        f.max_depth,
                        f.peak_instances,
                        report::bytes(f.peak_memory_bytes)
                    )
                })
            }),
        ));
    }
    rows.push((
        "Redis used_memory, peak".into(),
        column(&|r| report::bytes(r.peak_used_memory)),
    ));
    rows.push((
        "model capacity: needed / ran with".into(),
        column(&|r| {
            r.capacity.as_ref().map_or_else(
                || "-".into(),
                |c| format!("{:.0}/s / {:.0}/s", c.needed, c.used),
            )
        }),
    ));
    rows.push((
        "economics (per day)".into(),
        vec![String::new(); outcomes.len()],
    ));
    let economics: Vec<Vec<(String, String)>> = outcomes
        .iter()
        .map(|o| report::economics_rows(&o.report.economics.run, &o.report.economics.costs))
        .collect();
    let seed = outcomes
        .first()
        .map(|o| report::economics_rows(&o.report.economics.seed, &o.report.economics.costs));
    for (line, (label, _)) in economics.first().into_iter().flatten().enumerate() {
        let mut cells: Vec<String> = economics.iter().map(|e| e[line].1.clone()).collect();
        if let Some(seed) = &seed {
            cells.push(seed[line].1.clone());
        }
        rows.push((format!("  {label}"), cells));
    }

    let label_width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut names: Vec<String> = outcomes.iter().map(|o| o.name.clone()).collect();
    names.push("seed's figures".into());
    let widths: Vec<usize> = (0..names.len())
        .map(|i| {
            rows.iter()
                .filter_map(|(_, cells)| cells.get(i))
                .chain(std::iter::once(&names[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    write!(out, "\n{:<label_width$}", "")?;
    for (name, width) in names.iter().zip(&widths) {
        write!(out, "  {name:>width$}")?;
    }
    writeln!(out)?;
    for (label, cells) in &rows {
        write!(out, "{label:<label_width$}")?;
        for (cell, width) in cells.iter().zip(&widths) {
            write!(out, "  {cell:>width$}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
