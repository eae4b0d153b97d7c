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
