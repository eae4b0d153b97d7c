//! A reduced day of the contact center, on its own ephemeral Redis: every
//! interaction is resolved (automatically or by a human) or dead-lettered,
//! none lost, and specialist failures were retried.

use clap::Parser;

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
    assert_eq!(report.lost, 0, "{report:#?}");
    assert_eq!(
        report.resolved_automated + report.resolved_by_humans + report.dead_lettered,
        300,
        "{report:#?}"
    );
    let retried: u64 = report.channels.values().map(|c| c.retried).sum();
    assert!(
        retried > 0,
        "a 5 % failure rate must show retries: {report:#?}"
    );
    assert!(report.resolved_by_humans > 0 && report.resolved_automated > 0);
    assert!(report
        .checks
        .iter()
        .any(|(name, passed)| name == "nothing lost" && *passed));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_with_failures_a_killed_agent_corrupt_messages_and_a_redis_restart_loses_nothing() {
    let json = std::env::temp_dir().join(format!("contact-center-{}.json", std::process::id()));
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
    let _ = std::fs::remove_file(json);
}
