//! The report at the end of the day: accounting, per-channel figures, the
//! seed's SLA checks and its economics, as a table or as JSON.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Minutes of a human agent's time per contact in the seed's baseline: its
/// 4,800 contacts a day take 960 labor hours.
pub const BASELINE_MINUTES_PER_CONTACT: f64 = 960.0 * 60.0 / 4800.0;

/// How the day went.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Interactions published by telephony.
    pub interactions: u64,
    /// Resolved by the evaluator without a human.
    pub resolved_automated: u64,
    /// Escalated and handled by the human desk.
    pub resolved_by_humans: u64,
    /// Interactions dead-lettered anywhere along the way.
    pub dead_lettered: u64,
    /// Interactions not accounted for: must be 0.
    pub lost: u64,
    /// Corrupt messages injected on intake.
    pub corrupt_injected: u64,
    /// Dead letters by reason, across channels (corrupt ones included).
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Interactions resolved more than once: must be 0.
    pub resolved_twice: u64,
    /// Whether Redis was killed and restarted during the day.
    pub redis_restarted: bool,
    /// Whether an agent was killed and replaced during the day.
    pub agent_killed: bool,
    /// Share resolved without a human.
    pub automation_rate: f64,
    /// Simulated seconds per real second.
    pub time_factor: f64,
    /// Per channel, by qualified name.
    pub channels: BTreeMap<String, ChannelFigures>,
    /// Wait on the human-escalation queue.
    pub escalation_wait: Latency,
    /// SLA breaches on the human-escalation queue.
    pub sla_breaches: u64,
    /// Contact to resolution.
    pub resolution: Latency,
    /// Contact to automated resolution: what the "99 % within 30 s" SLA
    /// judges.
    pub automated_resolution: Latency,
    /// What the classifier heard on the feedback broadcast, by intent.
    pub feedback: BTreeMap<String, crate::agents::Heard>,
    /// Labor and cost against the seed's baseline.
    pub economics: Economics,
    /// The seed's SLAs, each passed or not.
    pub checks: Vec<(String, bool)>,
    /// Real time the day took.
    pub real_seconds: f64,
}

/// One channel's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelFigures {
    /// Messages handled.
    pub handled: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Retries per handled message.
    pub retry_rate: f64,
    /// Dead letters.
    pub dead: u64,
    /// Dead letters by reason.
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Duplicates skipped.
    pub duplicates: u64,
    /// Highest backlog seen (waiting plus held by a consumer).
    pub max_depth: u64,
    /// From publishing to a handler's start, retries included.
    pub queued: Latency,
    /// A handler's run.
    pub processing: Latency,
}

/// A duration's p50 and p99, in real and in simulated seconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median, real seconds.
    pub p50_seconds: f64,
    /// 99th percentile, real seconds.
    pub p99_seconds: f64,
    /// Median, simulated seconds.
    pub p50_simulated_seconds: f64,
    /// 99th percentile, simulated seconds.
    pub p99_simulated_seconds: f64,
}

impl Latency {
    /// From real-second samples and the time factor.
    pub fn of(samples: &[f64], factor: f64) -> Latency {
        let (p50, p99) = (
            crate::stages::quantile(samples, 0.5),
            crate::stages::quantile(samples, 0.99),
        );
        Latency {
            p50_seconds: p50,
            p99_seconds: p99,
            p50_simulated_seconds: p50 * factor,
            p99_simulated_seconds: p99 * factor,
        }
    }
}

/// The seed's economics, recomputed from an automation rate: every contact
/// a human handles takes [`BASELINE_MINUTES_PER_CONTACT`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Economics {
    /// Labor hours with no automation (960 for the seed's 4,800 contacts).
    pub baseline_hours: f64,
    /// Cost per day with no automation.
    pub baseline_cost: f64,
    /// Cost of an hour of a human agent's time.
    pub hourly_cost: f64,
    /// The measured scenario.
    pub measured: Scenario,
    /// The seed's sensitivity case: half the contacts automated.
    pub at_half: Scenario,
}

/// Labor and cost at one automation rate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    /// Share of contacts resolved without a human.
    pub automation_rate: f64,
    /// Labor hours a day.
    pub labor_hours: f64,
    /// Hours saved against the baseline.
    pub hours_saved: f64,
    /// Labor cost a day.
    pub cost: f64,
}

impl Economics {
    /// For a day of `interactions` at a measured automation rate.
    pub fn new(interactions: u64, automation_rate: f64, hourly_cost: f64) -> Economics {
        let baseline_hours = interactions as f64 * BASELINE_MINUTES_PER_CONTACT / 60.0;
        let scenario = |rate: f64| {
            let labor_hours = baseline_hours * (1.0 - rate);
            Scenario {
                automation_rate: rate,
                labor_hours,
                hours_saved: baseline_hours - labor_hours,
                cost: labor_hours * hourly_cost,
            }
        };
        Economics {
            baseline_hours,
            baseline_cost: baseline_hours * hourly_cost,
            hourly_cost,
            measured: scenario(automation_rate),
            at_half: scenario(0.5),
        }
    }
}

impl Latency {
    /// The median as real and simulated time: `12 ms (43.2 s)`.
    pub fn p50(&self) -> String {
        format!(
            "{} ({})",
            human(self.p50_seconds),
            human(self.p50_simulated_seconds)
        )
    }

    /// The 99th percentile as real and simulated time.
    pub fn p99(&self) -> String {
        format!(
            "{} ({})",
            human(self.p99_seconds),
            human(self.p99_simulated_seconds)
        )
    }
}

fn human(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

/// The report as tables.
pub fn print_report(report: &Report, out: &mut dyn Write) -> Result<()> {
    let factor = report.time_factor;
    writeln!(
        out,
        "\ncontact center day: {} interactions in {:.1} s real ({:.1} h simulated, time ×{factor:.0})",
        report.interactions,
        report.real_seconds,
        report.real_seconds * factor / 3600.0
    )?;
    writeln!(
        out,
        "resolved: {} automated + {} escalated and handled by humans ({:.1} % automated)",
        report.resolved_automated,
        report.resolved_by_humans,
        report.automation_rate * 100.0,
    )?;
    writeln!(
        out,
        "accounting: produced {} = resolved {} + escalated-and-handled {} + dead-lettered {} + lost {}; lost = {}, resolved twice = {}",
        report.interactions,
        report.resolved_automated,
        report.resolved_by_humans,
        report.dead_lettered,
        report.lost,
        report.lost,
        report.resolved_twice
    )?;
    if report.corrupt_injected > 0 || report.agent_killed || report.redis_restarted {
        writeln!(
            out,
            "faults: {} corrupt messages injected{}{}",
            report.corrupt_injected,
            if report.agent_killed {
                ", the classifier killed and replaced"
            } else {
                ""
            },
            if report.redis_restarted {
                ", Redis killed and restarted from its AOF"
            } else {
                ""
            }
        )?;
    }
    if !report.dead_by_reason.is_empty() {
        let reasons: Vec<String> = report
            .dead_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        writeln!(out, "dead letters by reason: {}", reasons.join(", "))?;
    }

    writeln!(
        out,
        "\n{:<18} {:>7} {:>7} {:>6} {:>5} {:>5} {:>6}",
        "channel", "handled", "retried", "retry%", "dead", "dupes", "depth"
    )?;
    for (name, f) in &report.channels {
        let name = name.rsplit('.').next().unwrap_or(name);
        writeln!(
            out,
            "{name:<18} {:>7} {:>7} {:>6.2} {:>5} {:>5} {:>6}",
            f.handled,
            f.retried,
            f.retry_rate * 100.0,
            f.dead,
            f.duplicates,
            f.max_depth
        )?;
    }
    writeln!(
        out,
        "\n{:<18} {:>22} {:>22} {:>22} {:>22}",
        "real (simulated)", "queued p50", "queued p99", "processing p50", "processing p99"
    )?;
    for (name, f) in &report.channels {
        let name = name.rsplit('.').next().unwrap_or(name);
        writeln!(
            out,
            "{name:<18} {:>22} {:>22} {:>22} {:>22}",
            f.queued.p50(),
            f.queued.p99(),
            f.processing.p50(),
            f.processing.p99(),
        )?;
    }
    writeln!(
        out,
        "\nhuman escalation wait p50/p99: {} / {}; SLA breaches {}",
        report.escalation_wait.p50(),
        report.escalation_wait.p99(),
        report.sla_breaches
    )?;
    writeln!(
        out,
        "contact to resolution p50/p99: {} / {}",
        report.resolution.p50(),
        report.resolution.p99()
    )?;
    if !report.feedback.is_empty() {
        let heard: Vec<String> = report
            .feedback
            .iter()
            .map(|(intent, h)| {
                format!(
                    "{intent} {} accepted / {} corrected (confidence ×{:.2})",
                    h.accepted,
                    h.corrected,
                    h.trust()
                )
            })
            .collect();
        writeln!(out, "classifier feedback: {}", heard.join("; "))?;
    }

    let e = &report.economics;
    writeln!(
        out,
        "\neconomics (a human contact takes {BASELINE_MINUTES_PER_CONTACT:.0} min, an hour costs {:.2}):",
        e.hourly_cost
    )?;
    writeln!(
        out,
        "  baseline, no automation   {:>7.0} labor h/day  cost {:>10.0}/day",
        e.baseline_hours, e.baseline_cost
    )?;
    for (label, s) in [("measured", &e.measured), ("sensitivity", &e.at_half)] {
        writeln!(
            out,
            "  {label:<11} {:>5.1} % auto {:>7.0} labor h/day  cost {:>10.0}/day  saves {:.0} h",
            s.automation_rate * 100.0,
            s.labor_hours,
            s.cost,
            s.hours_saved
        )?;
    }

    writeln!(out, "\nSLA checks:")?;
    for (check, passed) in &report.checks {
        writeln!(out, "  [{}] {check}", if *passed { "pass" } else { "FAIL" })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_day_is_960_hours_and_automation_saves_its_share() {
        let e = Economics::new(4800, 0.65, 30.0);
        assert!((e.baseline_hours - 960.0).abs() < 1e-9);
        assert!((e.measured.labor_hours - 336.0).abs() < 1e-9);
        assert!((e.measured.hours_saved - 624.0).abs() < 1e-9);
        assert!((e.at_half.labor_hours - 480.0).abs() < 1e-9);
        assert!((e.measured.cost - 336.0 * 30.0).abs() < 1e-9);
    }

    #[test]
    fn durations_show_real_and_simulated_time() {
        let latency = Latency::of(&[0.012, 0.5], 3600.0);
        assert_eq!(latency.p50(), "500 ms (30.0 min)");
        assert_eq!(Latency::of(&[0.012], 3600.0).p99(), "12 ms (43.2 s)");
    }
}
