//! A reduced day of the contact center, on its own ephemeral Redis: every
//! interaction is resolved (automatically or by a human) or dead-lettered,
//! none lost, and specialist failures were retried; also on a local Redis
//! Cluster.

use clap::Parser;

/// Nothing lost, and each of `interactions` resolved (automatically or by
/// a human) or dead-lettered.
fn assert_accounted(report: &contact_center::Report, interactions: u64) {
    assert_eq!(report.lost, 0, "{report:#?}");
    assert_eq!(
        report.resolved_automated + report.resolved_by_humans + report.dead_lettered,
        interactions,
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reduced_day_accounts_for_every_interaction() {
    let args = contact_center::Args::parse_from([
        "contact-center",
        "--interactions",
        "300",
        "--fail-rate",
        "0.05",
        "--time-factor",
        "20000",
        "--quiet",
        "--timeout",
        "120",
    ]);
    let report = contact_center::run(args).await.unwrap();
    assert_accounted(&report, 300);
    let retried: u64 = report.channels.values().map(|c| c.retried).sum();
    assert!(
        retried > 0,
        "a 5 % failure rate must show retries: {report:#?}"
    );
    assert!(report.resolved_by_humans > 0 && report.resolved_automated > 0);
    assert!(report
        .checks
        .iter()
        .any(|check| check.sla == "nothing lost" && check.passed));
    // Every queue counts, intake included.
    assert!(
        report.channels["contact_center.intake"].peak_instances >= 1,
        "{report:#?}"
    );
    assert!(report.peak_used_memory > 0);
    let capacity = report.capacity.as_ref().unwrap();
    assert_eq!((capacity.name.as_str(), capacity.declared), ("llm", 500.0));
    // Every stage was measured, and the economics follow the 12-minute
    // human contact of the seed's 960-hour day.
    for (name, figures) in &report.channels {
        assert!(figures.handled > 0, "{name}: {figures:?}");
        assert!(figures.queued.p99_seconds >= figures.queued.p50_seconds);
        assert!(figures.processing.p50_seconds > 0.0, "{name}: {figures:?}");
        assert!(
            (figures.queued.p50_simulated_seconds - figures.queued.p50_seconds * 20000.0).abs()
                < 1e-6
        );
    }
    // The economics count what happened: 300 contacts at 12 minutes are 60
    // baseline hours, each resolution is priced as it went, and the tokens
    // are the model's (a classification and a resolution per contact).
    let run = &report.economics.run;
    assert_eq!(run.volumes.contacts, 300);
    assert!((run.baseline_hours - 60.0).abs() < 1e-9);
    assert_eq!(run.volumes.automated, report.resolved_automated);
    assert_eq!(run.volumes.by_humans, report.resolved_by_humans);
    assert_eq!(run.volumes.automated_wrongly, report.automated_wrongly);
    assert_eq!(run.volumes.tokens, report.tokens);
    assert!(report.tokens > 300 * 250, "{}", report.tokens);
    // Automation emerged near the resolvable share, few of them wrongly.
    assert!(
        (0.5..0.75).contains(&report.automation_rate),
        "{}",
        report.automation_rate
    );
    assert!(report.automated_wrongly * 10 < report.resolved_automated);
    assert_eq!(report.checks.len(), 6, "{:?}", report.checks);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_with_failures_a_killed_agent_corrupt_messages_and_a_redis_restart_loses_nothing() {
    let json = std::env::temp_dir().join(format!("contact-center-{}.json", std::process::id()));
    let html = json.with_extension("html");
    let args = contact_center::Args::parse_from([
        "contact-center",
        "--interactions",
        "300",
        "--fail-rate",
        "0.05",
        "--kill-agent",
        "--redis-restart",
        "--corrupt",
        "0.05",
        "--time-factor",
        "20000",
        "--quiet",
        "--timeout",
        "120",
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    contact_center::run(args).await.unwrap();
    // Judged from the JSON report, as a user would.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["lost"], 0, "{report:#}");
    assert_eq!(report["resolved_twice"], 0, "{report:#}");
    assert_eq!(report["redis_restarted"], true, "{report:#}");
    let injected = report["corrupt_injected"].as_u64().unwrap();
    assert!(injected > 0);
    let reasons = &report["dead_by_reason"];
    let corrupt_dead: u64 = ["invalid_payload", "version_unsupported", "schema_mismatch"]
        .iter()
        .map(|r| reasons[*r].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        corrupt_dead, injected,
        "every corrupt message in the DLQ with its reason: {reasons}"
    );
    assert!(reasons["invalid_payload"].as_u64().unwrap_or(0) > 0);
    assert!(reasons["version_unsupported"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        report["channels"]["contact_center.intake"]["dead"], injected,
        "the corrupt messages are intake's dead letters: {report:#}"
    );
    assert_eq!(report["agent_killed"], true);
    // The seed's economics beside the run's, every line in the JSON.
    let economics = &report["economics"];
    assert_eq!(
        economics["seed"]["net_savings_per_day"]
            .as_f64()
            .unwrap()
            .round(),
        27_893.0
    );
    assert_eq!(economics["costs"]["hourly_cost"], 45.0);
    assert!(
        economics["run"]["llm_cost"].as_f64().unwrap() > 0.0,
        "{economics:#}"
    );
    // The page holds both charts, a line per channel each.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 3);
    assert_eq!(page.matches("<polyline").count(), 18);
    assert!(page.contains("Consumer instances per stage"));
    assert!(page.contains("lost = 0"));
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(html);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reduced_day_on_a_redis_cluster_loses_nothing() {
    let args = contact_center::Args::parse_from([
        "contact-center",
        "--cluster",
        "--interactions",
        "200",
        "--corrupt",
        "0.05",
        "--time-factor",
        "20000",
        "--quiet",
        "--timeout",
        "120",
    ]);
    let report = contact_center::run(args).await.unwrap();
    assert_accounted(&report, 200);
    // At ×20,000 the latency checks are out of reach of any Redis; these
    // two are what the cluster must keep.
    for check in ["nothing lost", "nothing resolved twice"] {
        assert!(
            report.checks.iter().any(|c| c.sla == check && c.passed),
            "{check}: {:?}",
            report.checks
        );
    }
}

/// The seed's three cases at a small scale: its day, half again as many
/// contacts, and half of them resolvable without a human, side by side.
#[tokio::test(flavor = "multi_thread")]
async fn the_scenarios_run_the_seed_s_three_cases() {
    let args = contact_center::Args::parse_from([
        "contact-center",
        "--scenarios",
        "--interactions",
        "200",
        "--time-factor",
        "20000",
        "--quiet",
        "--timeout",
        "120",
    ]);
    let outcomes = contact_center::scenarios::run(args).await.unwrap();
    let names: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["seed day (200)", "300 contacts", "automation 50 %"]);
    let counts: Vec<u64> = outcomes.iter().map(|o| o.report.interactions).collect();
    assert_eq!(counts, [200, 300, 200]);
    for outcome in &outcomes {
        assert_accounted(&outcome.report, outcome.report.interactions);
        assert_eq!(outcome.report.checks.len(), 6);
    }
    // Fewer resolvable contacts, fewer automated.
    assert!(
        outcomes[2].report.automation_rate < outcomes[0].report.automation_rate,
        "{} vs {}",
        outcomes[2].report.automation_rate,
        outcomes[0].report.automation_rate
    );
    let mut table = Vec::new();
    contact_center::scenarios::print(&outcomes, &mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    for needle in [
        "seed's figures",
        "queue depth below 500 on every queue",
        "  intake",
        "Redis used_memory, peak",
        "model capacity: needed / ran with",
        "net savings / year",
        "$10.18M",
    ] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
}
