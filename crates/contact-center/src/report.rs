//! The report at the end of the day: accounting, per-channel figures, the
//! seed's SLA checks and its economics, as a table or as JSON.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

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
    /// Whether the network to Redis was cut for a while during the day.
    #[serde(default)]
    pub network_cut: bool,
    /// Share resolved without a human.
    pub automation_rate: f64,
    /// Resolved without a human although a human was needed: the customer
    /// came back and a human corrected it.
    pub automated_wrongly: u64,
    /// LLM tokens the agents sent and received.
    pub tokens: u64,
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
    pub checks: Vec<Check>,
    /// Real time the day took.
    pub real_seconds: f64,
    /// The model's shared rate limit: declared, needed by the day's peak,
    /// and used.
    pub capacity: Option<crate::capacity::Capacity>,
    /// Redis's highest `used_memory` over the day, in bytes.
    pub peak_used_memory: u64,
}

/// One SLA check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The SLA.
    pub sla: String,
    /// What the day measured against it.
    pub measured: String,
    /// Whether the day met it.
    pub passed: bool,
}

impl Check {
    fn new(sla: &str, measured: String, passed: bool) -> Check {
        Check {
            sla: sla.to_string(),
            measured,
            passed,
        }
    }
}

/// The seed's SLA checks of a day, over every queue of the pipeline
/// (intake included): queue depth, time in queue and handling, retries,
/// the human desk's wait, and nothing lost or resolved twice.
pub fn checks(
    channels: &BTreeMap<String, ChannelFigures>,
    escalation_wait: &Latency,
    lost: u64,
    resolved_twice: u64,
) -> Vec<Check> {
    let short = |name: &str| name.rsplit('.').next().unwrap_or(name).to_string();
    let (deepest, depth) = channels
        .iter()
        .map(|(name, f)| (short(name), f.max_depth))
        .max_by_key(|(_, depth)| *depth)
        .unwrap_or_default();
    let (slowest, p99) = channels
        .iter()
        .map(|(name, f)| (short(name), f.queued.p99_seconds + f.processing.p99_seconds))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or_default();
    let handled: u64 = channels.values().map(|f| f.handled).sum();
    let retried: u64 = channels.values().map(|f| f.retried).sum();
    let retry_rate = retried as f64 / handled.max(1) as f64;
    let wait = escalation_wait.p99_simulated_seconds;
    vec![
        Check::new(
            "queue depth below 500 on every queue",
            format!("{depth} on {deepest}"),
            depth < 500,
        ),
        Check::new(
            "99 % in queue and handled within 30 s on every queue",
            format!("p99 {p99:.2} s real on {slowest}"),
            p99 < 30.0,
        ),
        Check::new(
            "retry rate below 2 %",
            format!("{:.2} %", retry_rate * 100.0),
            retry_rate < 0.02,
        ),
        Check::new(
            "escalation wait p99 below 2 min",
            format!("{wait:.0} s simulated"),
            wait < 120.0,
        ),
        Check::new("nothing lost", format!("{lost}"), lost == 0),
        Check::new(
            "nothing resolved twice",
            format!("{resolved_twice}"),
            resolved_twice == 0,
        ),
    ]
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
    /// Most consumer instances its scaler ran at once.
    pub peak_instances: usize,
    /// How often its scaler changed the pool's size.
    pub scaling_decisions: usize,
    /// Most bytes its keys took in Redis.
    pub peak_memory_bytes: u64,
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

/// Days in a month, to spread monthly costs over days: the seed's $8,000
/// a month is its "~$266/day".
pub const DAYS_PER_MONTH: f64 = 30.0;

/// What the economics are computed from. Every default is the seed's
/// value; each is a flag of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, clap::Args)]
pub struct Costs {
    /// Cost of an hour of a contact-center agent's time (handling a
    /// contact, or supervising one the AI resolves).
    #[arg(long, default_value_t = 45.0)]
    pub hourly_cost: f64,
    /// Minutes a contact takes with no automation.
    #[arg(long, default_value_t = 12.0)]
    pub baseline_minutes: f64,
    /// Minutes of agent time a contact the AI resolves still takes.
    #[arg(long, default_value_t = 2.0)]
    pub ai_minutes: f64,
    /// Minutes a contact escalated to a human takes, with the AI's
    /// summary.
    #[arg(long, default_value_t = 7.0)]
    pub human_minutes: f64,
    /// Redis and compute, per month.
    #[arg(long, default_value_t = 8000.0)]
    pub infrastructure_per_month: f64,
    /// Observability and support, per month.
    #[arg(long, default_value_t = 1200.0)]
    pub observability_per_month: f64,
    /// Price of one LLM token.
    #[arg(long, default_value_t = 0.001)]
    pub price_per_token: f64,
}

impl Costs {
    /// The seed's values.
    pub const SEED: Costs = Costs {
        hourly_cost: 45.0,
        baseline_minutes: 12.0,
        ai_minutes: 2.0,
        human_minutes: 7.0,
        infrastructure_per_month: 8000.0,
        observability_per_month: 1200.0,
        price_per_token: 0.001,
    };
}

/// What a day's economics count: what happened to its contacts and what
/// the model was sent and answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Volumes {
    /// Contacts in the day.
    pub contacts: u64,
    /// Resolved without a human.
    pub automated: u64,
    /// Of those, the ones that needed a human after all: handled again by
    /// one (the customer came back).
    pub automated_wrongly: u64,
    /// Escalated to and handled by a human.
    pub by_humans: u64,
    /// LLM tokens sent and received.
    pub tokens: u64,
}

impl Volumes {
    /// The seed's day: 4,800 contacts, 65 % automated, 1.5 M tokens.
    pub const SEED: Volumes = Volumes {
        contacts: 4800,
        automated: 3120,
        automated_wrongly: 0,
        by_humans: 1680,
        tokens: 1_500_000,
    };
}

/// One day's economics, line by line, as the seed models them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lines {
    /// What was counted.
    pub volumes: Volumes,
    /// Share of contacts resolved without a human.
    pub automation_rate: f64,
    /// Share of automated contacts that needed a human after all.
    pub automated_wrongly_rate: f64,
    /// Labor hours with no automation: every contact at the baseline
    /// minutes.
    pub baseline_hours: f64,
    /// Their cost.
    pub baseline_cost: f64,
    /// Agent hours on contacts the AI resolved.
    pub ai_hours: f64,
    /// Hours of humans on escalated contacts and on wrong automations.
    pub human_hours: f64,
    /// AI and human hours.
    pub labor_hours: f64,
    /// Their cost.
    pub labor_cost: f64,
    /// Redis and compute, per day.
    pub infrastructure_cost: f64,
    /// Observability and support, per day.
    pub observability_cost: f64,
    /// Tokens at their price.
    pub llm_cost: f64,
    /// Labor, infrastructure, observability and LLM.
    pub total_cost: f64,
    /// Baseline cost less the total.
    pub net_savings_per_day: f64,
    /// The same over 365 days.
    pub net_savings_per_year: f64,
}

impl Lines {
    /// The economics of `volumes` at `costs`.
    pub fn of(volumes: Volumes, costs: &Costs) -> Lines {
        let hours = |contacts: u64, minutes: f64| contacts as f64 * minutes / 60.0;
        let baseline_hours = hours(volumes.contacts, costs.baseline_minutes);
        let ai_hours = hours(volumes.automated, costs.ai_minutes);
        let human_hours = hours(
            volumes.by_humans + volumes.automated_wrongly,
            costs.human_minutes,
        );
        let labor_hours = ai_hours + human_hours;
        let labor_cost = labor_hours * costs.hourly_cost;
        let infrastructure_cost = costs.infrastructure_per_month / DAYS_PER_MONTH;
        let observability_cost = costs.observability_per_month / DAYS_PER_MONTH;
        let llm_cost = volumes.tokens as f64 * costs.price_per_token;
        let total_cost = labor_cost + infrastructure_cost + observability_cost + llm_cost;
        let baseline_cost = baseline_hours * costs.hourly_cost;
        Lines {
            volumes,
            automation_rate: volumes.automated as f64 / volumes.contacts.max(1) as f64,
            automated_wrongly_rate: volumes.automated_wrongly as f64
                / volumes.automated.max(1) as f64,
            baseline_hours,
            baseline_cost,
            ai_hours,
            human_hours,
            labor_hours,
            labor_cost,
            infrastructure_cost,
            observability_cost,
            llm_cost,
            total_cost,
            net_savings_per_day: baseline_cost - total_cost,
            net_savings_per_year: (baseline_cost - total_cost) * 365.0,
        }
    }
}

/// The seed's economics beside this run's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Economics {
    /// The costs this run was priced at.
    pub costs: Costs,
    /// The seed's day at the seed's costs.
    pub seed: Lines,
    /// This run's day at `costs`.
    pub run: Lines,
}

impl Economics {
    /// This run's `volumes` at `costs`, beside the seed's.
    pub fn new(volumes: Volumes, costs: Costs) -> Economics {
        Economics {
            costs,
            seed: Lines::of(Volumes::SEED, &Costs::SEED),
            run: Lines::of(volumes, &costs),
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
        "resolved: {} automated + {} escalated and handled by humans ({:.1} % automated); \
         {} automated wrongly, corrected by a human ({:.1} % of automated); {} LLM tokens",
        report.resolved_automated,
        report.resolved_by_humans,
        report.automation_rate * 100.0,
        report.automated_wrongly,
        report.automated_wrongly as f64 / report.resolved_automated.max(1) as f64 * 100.0,
        report.tokens,
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
    if report.corrupt_injected > 0
        || report.agent_killed
        || report.redis_restarted
        || report.network_cut
    {
        writeln!(
            out,
            "faults: {} corrupt messages injected{}{}{}",
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
            },
            if report.network_cut {
                ", the network to Redis cut for a while"
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
        "\n{:<18} {:>7} {:>7} {:>6} {:>5} {:>5} {:>6} {:>9} {:>9}",
        "channel", "handled", "retried", "retry%", "dead", "dupes", "depth", "instances", "memory"
    )?;
    for (name, f) in &report.channels {
        let name = name.rsplit('.').next().unwrap_or(name);
        writeln!(
            out,
            "{name:<18} {:>7} {:>7} {:>6.2} {:>5} {:>5} {:>6} {:>9} {:>9}",
            f.handled,
            f.retried,
            f.retry_rate * 100.0,
            f.dead,
            f.duplicates,
            f.max_depth,
            f.peak_instances,
            bytes(f.peak_memory_bytes)
        )?;
    }
    writeln!(
        out,
        "depth, instances and memory are peaks; Redis used_memory peaked at {}",
        bytes(report.peak_used_memory)
    )?;
    if let Some(c) = &report.capacity {
        let hourly = |per_second| {
            crate::capacity::Capacity::per_simulated_hour(per_second, report.time_factor)
        };
        writeln!(
            out,
            "model capacity: the shared `{}` rate limit (intake and evaluations), declared {:.0}/s \
             ({:.0} calls per simulated hour), would leave {:.0} calls waiting at the day's peak; \
             {:.0}/s keeps them under {:.0}; ran with {:.0}/s{}",
            c.name,
            c.declared,
            hourly(c.declared),
            c.backlog_at_declared,
            c.needed,
            crate::capacity::MAX_BACKLOG,
            c.used,
            if c.raised() {
                " (raised: more consumers cannot get past it)"
            } else {
                ""
            }
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
                    "{intent} {} automated / {} corrected / {} by humans (confidence ×{:.2})",
                    h.accepted,
                    h.corrected,
                    h.handled_by_humans,
                    h.trust()
                )
            })
            .collect();
        writeln!(out, "classifier feedback: {}", heard.join("; "))?;
    }

    print_economics(&report.economics, out)?;

    writeln!(out, "\nSLA checks:")?;
    for check in &report.checks {
        writeln!(
            out,
            "  [{}] {} ({})",
            if check.passed { "pass" } else { "FAIL" },
            check.sla,
            check.measured
        )?;
    }
    Ok(())
}

/// The economics as a table: the seed's figure beside this run's, line
/// by line.
pub fn print_economics(e: &Economics, out: &mut dyn Write) -> Result<()> {
    let seed = economics_rows(&e.seed, &e.costs);
    let run = economics_rows(&e.run, &e.costs);
    writeln!(
        out,
        "\n{:<40} {:>18} {:>18}",
        "economics (per day)", "seed", "this run"
    )?;
    for ((label, seed), (_, run)) in seed.into_iter().zip(run) {
        writeln!(out, "{label:<40} {seed:>18} {run:>18}")?;
    }
    Ok(())
}

/// Every line of a day's economics at `costs`, as (label, figure).
pub fn economics_rows(lines: &Lines, c: &Costs) -> Vec<(String, String)> {
    let v = &lines.volumes;
    let count = |n: u64| group(n as f64, 0);
    let share = |n: u64, rate: f64| format!("{} ({:.1} %)", count(n), rate * 100.0);
    let hours = |h: f64| format!("{} h", group(h, 0));
    let money = |m: f64| format!("${}", group(m, 0));
    vec![
        ("contacts".into(), count(v.contacts)),
        (
            "resolved without a human".into(),
            share(v.automated, lines.automation_rate),
        ),
        (
            "  of which needed a human".into(),
            share(v.automated_wrongly, lines.automated_wrongly_rate),
        ),
        ("escalated to a human".into(), count(v.by_humans)),
        (
            format!("baseline labor ({} min each)", c.baseline_minutes),
            hours(lines.baseline_hours),
        ),
        (
            format!("baseline cost (${}/h)", c.hourly_cost),
            money(lines.baseline_cost),
        ),
        (
            format!("AI-resolved time ({} min each)", c.ai_minutes),
            hours(lines.ai_hours),
        ),
        (
            format!("human time ({} min each)", c.human_minutes),
            hours(lines.human_hours),
        ),
        ("labor cost".into(), money(lines.labor_cost)),
        (
            format!(
                "Redis + compute (${}/month)",
                group(c.infrastructure_per_month, 0)
            ),
            money(lines.infrastructure_cost),
        ),
        (
            format!(
                "observability + support (${}/month)",
                group(c.observability_per_month, 0)
            ),
            money(lines.observability_cost),
        ),
        ("LLM tokens".into(), count(v.tokens)),
        (
            format!("LLM cost (${}/token)", c.price_per_token),
            money(lines.llm_cost),
        ),
        ("total cost / day".into(), money(lines.total_cost)),
        ("net savings / day".into(), money(lines.net_savings_per_day)),
        (
            "net savings / year".into(),
            format!("${:.2}M", lines.net_savings_per_year / 1e6),
        ),
    ]
}

/// Bytes as KiB or MiB.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", n as f64 / 1024.0)
    }
}

/// `x` rounded to `decimals`, with thousands separated by commas.
pub fn group(x: f64, decimals: usize) -> String {
    let text = format!("{:.decimals$}", x.abs());
    let (whole, fraction) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(w, f)| (w, f));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if x < 0.0 && text.chars().any(|c| c != '0' && c != '.') {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_s_economics_come_out_as_the_seed_states_them() {
        let seed = Lines::of(Volumes::SEED, &Costs::SEED);
        let close = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(close(seed.baseline_hours, 960.0));
        assert!(close(seed.baseline_cost, 43_200.0));
        assert!(close(seed.ai_hours, 104.0));
        assert!(close(seed.human_hours, 196.0));
        assert!(close(seed.labor_hours, 300.0));
        assert!(close(seed.labor_cost, 13_500.0));
        assert!(close(seed.infrastructure_cost, 266.67));
        assert!(close(seed.observability_cost, 40.0));
        assert!(close(seed.llm_cost, 1_500.0));
        // "Net savings ≈ $27,894/day, ≈ $10.2M/year".
        assert_eq!(seed.net_savings_per_day.round(), 27_893.0);
        assert_eq!((seed.net_savings_per_year / 1e5).round(), 102.0);
        assert!(close(seed.automation_rate, 0.65));
    }

    #[test]
    fn a_wrong_automation_costs_the_ai_time_and_a_human_s() {
        let volumes = Volumes {
            contacts: 100,
            automated: 60,
            automated_wrongly: 6,
            by_humans: 40,
            tokens: 30_000,
        };
        let costs = Costs {
            hourly_cost: 60.0,
            ..Costs::SEED
        };
        let run = Lines::of(volumes, &costs);
        assert!((run.ai_hours - 2.0).abs() < 1e-9); // 60 × 2 min
        assert!((run.human_hours - 46.0 * 7.0 / 60.0).abs() < 1e-9);
        assert!((run.labor_cost - (2.0 + 46.0 * 7.0 / 60.0) * 60.0).abs() < 1e-9);
        assert!((run.automated_wrongly_rate - 0.1).abs() < 1e-9);
        assert!((run.llm_cost - 30.0).abs() < 1e-9);
        assert!((run.baseline_cost - 100.0 * 12.0).abs() < 1e-9);
        let e = Economics::new(volumes, costs);
        assert_eq!(e.seed, Lines::of(Volumes::SEED, &Costs::SEED));
        let mut text = Vec::new();
        print_economics(&e, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("$43,200"), "{text}");
        assert!(text.contains("$10.18M"), "{text}");
        assert!(text.contains("6 (10.0 %)"), "{text}");
        assert!(text.contains("baseline cost ($60/h)"), "{text}");
    }

    #[test]
    fn figures_are_grouped_by_thousands() {
        assert_eq!(group(0.0, 0), "0");
        assert_eq!(group(999.4, 0), "999");
        assert_eq!(group(43_200.0, 0), "43,200");
        assert_eq!(group(1_500_000.0, 0), "1,500,000");
        assert_eq!(group(-27_893.3, 1), "-27,893.3");
    }

    #[test]
    fn durations_show_real_and_simulated_time() {
        let latency = Latency::of(&[0.012, 0.5], 3600.0);
        assert_eq!(latency.p50(), "500 ms (30.0 min)");
        assert_eq!(Latency::of(&[0.012], 3600.0).p99(), "12 ms (43.2 s)");
    }
}
