//! Per-sandbox CPU and memory of real sandboxes.

use crate::common::*;
use serde_json::Value;

#[test]
fn a_cpu_burner_shows_busy_and_a_sleeper_shows_idle() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let world = World::new();
    for (name, argv) in [
        ("burn", &["sh", "-c", "while :; do :; done"][..]),
        ("rest", &["sleep", "600"][..]),
    ] {
        let dir = world.project(name);
        let mut args = vec!["create", dir.to_str().unwrap(), "--shell", "--"];
        args.extend_from_slice(argv);
        world.json(&args);
    }
    let metrics = |report: &Value, name: &str| -> Value {
        report["sandboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {report}"))["metrics"]
            .clone()
    };
    let cpu = |m: &Value| m["cpu_percent_of_core"].as_f64().unwrap();
    // The other tests of the binary run alongside on a small machine and may take the
    // burner's core for a whole sample: up to three samples for it to show busy.
    let mut report = world.json(&["status", "--metrics"]);
    for _ in 0..2 {
        if cpu(&metrics(&report, "burn")) > 50.0 {
            break;
        }
        report = world.json(&["status", "--metrics"]);
    }
    let burn = metrics(&report, "burn");
    let rest = metrics(&report, "rest");
    assert!(cpu(&burn) > 50.0, "the burner used {burn}");
    assert!(cpu(&rest) < 5.0, "the sleeper used {rest}");
    // Normalised to the host: one core of `cores`.
    let cores = report["host"]["cores"].as_f64().unwrap();
    let of_host = burn["cpu_percent_of_host"].as_f64().unwrap();
    assert!((of_host - cpu(&burn) / cores).abs() < 1e-6);
    // The tree is bwrap and what it runs; its memory is real.
    assert!(burn["processes"].as_u64().unwrap() >= 2, "{burn}");
    assert!(rest["rss_bytes"].as_u64().unwrap() > 100_000, "{rest}");
    let host = &report["host"];
    assert!(host["memory_total_bytes"].as_u64().unwrap() > 0);
    assert!(host["disk"]["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(host["load_average"].as_array().unwrap().len(), 3);
}
