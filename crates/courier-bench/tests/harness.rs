//! The benchmark harness itself, in its quick mode against its own
//! ephemeral `redis-server`: every scenario measures its sides (courier,
//! the same-work baseline, and the pipelined one where it runs), and the
//! JSON holds every figure. Speed is not judged here (that is what the
//! printed figures are for); correctness the harness relies on is.

use clap::Parser;

#[tokio::test(flavor = "multi_thread")]
async fn a_quick_round_measures_every_scenario_on_every_side() {
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
        for side in ["courier", "same_work"] {
            let values = figure[side].as_array().unwrap();
            assert_eq!(values.len(), 1, "{figure}");
            assert!(values[0].as_f64().unwrap().is_finite(), "{figure}");
        }
        // The pipelined baseline runs beside them where it has a shape.
        let pipelined = figure["pipelined"].as_array().unwrap();
        let expected = match figure["scenario"].as_str().unwrap() {
            "publish_batch" | "end_to_end" | "latency_1k_per_s" => 1,
            _ => 0,
        };
        assert_eq!(pipelined.len(), expected, "{figure}");
        if figure["unit"] == "msg/s" {
            assert!(figure["courier"][0].as_f64().unwrap() > 0.0, "{figure}");
            if expected == 1 {
                assert!(figure["pipelined"][0].as_f64().unwrap() > 0.0, "{figure}");
            }
        }
        if figure["unit"] == "µs/msg" {
            for side in ["courier", "same_work", "pipelined"] {
                assert!(figure[side][0].as_f64().unwrap() >= 0.0, "{figure}");
            }
        }
        // BullMQ runs only with --peers.
        assert!(figure["bullmq"].as_array().unwrap().is_empty(), "{figure}");
    }
    // Every figure has its medians and ratios in the summary.
    let summary = run["summary"].as_array().unwrap();
    assert_eq!(summary.len(), figures.len());
    let drain = summary
        .iter()
        .find(|s| s["scenario"] == "end_to_end" && s["metric"] == "drain")
        .unwrap();
    assert!(drain["ratio_pipelined"].as_f64().unwrap() > 0.0, "{drain}");
    assert!(drain["ratio_bullmq"].is_null(), "{drain}");
    // Idempotency keys are gone once their window passed, on both sides.
    let left = figures
        .iter()
        .find(|f| f["metric"] == "idem keys after window")
        .unwrap();
    assert_eq!(left["courier"][0], 0.0, "{left}");
    assert_eq!(left["same_work"][0], 0.0, "{left}");
    // The envelope is bigger than the ~256-byte payload it carries.
    let envelope = figures.iter().find(|f| f["metric"] == "envelope").unwrap();
    assert!(
        envelope["courier"][0].as_f64().unwrap() > 256.0,
        "{envelope}"
    );
}
