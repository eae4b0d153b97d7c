//! The ops files refer only to metrics the runtime records, and the
//! dashboard is valid JSON.

use std::collections::BTreeSet;

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("courier_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        names.insert(
            name.trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum")
                .to_string(),
        );
    }
    names
}

#[test]
fn alerts_and_dashboard_use_recorded_metrics() {
    let root = courier_suites::workspace_root();
    let recorded = std::fs::read_to_string(root.join("crates/courier/src/metrics.rs")).unwrap();
    let recorded: BTreeSet<String> = metric_names(&recorded);
    let alerts = std::fs::read_to_string(root.join("docs/ops/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(root.join("docs/ops/grafana-dashboard.json")).unwrap();
    let _: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    for (file, text) in [
        ("alerts.yml", &alerts),
        ("grafana-dashboard.json", &dashboard),
    ] {
        let used = metric_names(text);
        assert!(!used.is_empty(), "{file} uses no metric");
        let unknown: Vec<_> = used.difference(&recorded).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics the runtime does not record: {unknown:?}"
        );
    }
    let runbook = std::fs::read_to_string(root.join("docs/runbook.md")).unwrap();
    for anchor in [
        "## Backlog",
        "## Dead letters overflowing",
        "## Redis failover",
        "## A poison message",
    ] {
        assert!(runbook.contains(anchor), "runbook lacks {anchor}");
    }
}
