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
    let report = world.json(&["status", "--metrics"]);
    let metrics = |name: &str| -> Value {
        report["sandboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {report}"))["metrics"]
            .clone()
    };
    let burn = metrics("burn");
    let rest = metrics("rest");
    let cpu = |m: &Value| m["cpu_percent_of_core"].as_f64().unwrap();
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
