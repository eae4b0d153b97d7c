//! The benchmark harness itself, in its quick mode against its own
//! ephemeral `redis-server`: every scenario measures both sides, and the
//! JSON holds every figure. Speed is not judged here (that is what the
//! printed figures are for); correctness the harness relies on is.

use clap::Parser;

#[tokio::test(flavor = "multi_thread")]
async fn a_quick_round_measures_every_scenario_on_both_sides() {
    let json = std::env::temp_dir().join(format!("courier-bench-{}.json", std::process::id()));
    let args = courier_bench::Args::parse_from([
        "courier-bench",
        "--quick",
        "--rounds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    courier_bench::run(args).await.unwrap();
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let figures = run["figures"].as_array().unwrap();
    for scenario in courier_bench::scenarios::ALL {
        assert!(
            figures.iter().any(|f| f["scenario"] == *scenario),
            "{scenario} missing: {run:#}"
        );
    }
    for figure in figures {
        for side in ["courier", "baseline"] {
            let values = figure[side].as_array().unwrap();
            assert_eq!(values.len(), 1, "{figure}");
            assert!(values[0].as_f64().unwrap().is_finite(), "{figure}");
        }
        if figure["unit"] == "msg/s" {
            assert!(figure["courier"][0].as_f64().unwrap() > 0.0, "{figure}");
        }
    }
    // Idempotency keys are gone once their window passed, on both sides.
    let left = figures
        .iter()
        .find(|f| f["metric"] == "idem keys after window")
        .unwrap();
    assert_eq!(left["courier"][0], 0.0, "{left}");
    assert_eq!(left["baseline"][0], 0.0, "{left}");
    // The envelope is bigger than the ~256-byte payload it carries.
    let envelope = figures.iter().find(|f| f["metric"] == "envelope").unwrap();
    assert!(
        envelope["courier"][0].as_f64().unwrap() > 256.0,
        "{envelope}"
    );
}
