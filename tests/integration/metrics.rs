//! Per-sandbox CPU and memory of real sandboxes.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

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

/// The metrics follow a sandbox's process tree between samples (issue 15): a process
/// started inside after the last full walk of `/proc` is counted, and one killed leaves,
/// with no walk in between.
#[test]
fn a_process_started_inside_after_the_walk_is_counted_and_one_killed_leaves() {
    use sandbox_deck::metrics::MetricsSampler;
    use sandbox_deck::paths::Paths;
    use sandbox_deck::registry::Registry;
    if !prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let world = World::new();
    let dir = world.project("grow");
    let script = "read go; sleep 300 & wait; echo reaped; exec sleep 600";
    let dir_text = dir.to_str().unwrap();
    world.json(&["create", dir_text, "--shell", "--", "sh", "-c", script]);
    let paths = Paths {
        state_dir: world.path("state/sandbox-deck"),
        config_dir: world.path("config/sandbox-deck"),
        runtime_dir: world.runtime.join("sandbox-deck"),
    };
    let records = Registry::new(&paths).load().unwrap();
    assert_eq!(records.len(), 1);
    let id = records[0].id.clone();
    let launcher = records[0]
        .launcher
        .expect("a running sandbox has a launcher")
        .pid;
    let mut sampler = MetricsSampler::new(paths.state_dir.clone());
    assert!(sampler.sample_sandboxes(&records).is_none());
    let processes =
        |sampler: &mut MetricsSampler| sampler.sample_sandboxes(&records).unwrap()[&id].processes;
    let before = processes(&mut sampler);
    assert!(before >= 2, "the launcher and what it runs: {before}");
    let sleepers = || -> Vec<u32> {
        descendants(launcher)
            .into_iter()
            .filter(|p| comm(*p) == "sleep")
            .collect()
    };
    assert!(sleepers().is_empty());
    // Started inside, after the sampler's walk.
    world.tmux(&["send-keys", "-t", "=grow:", "go", "Enter"]);
    wait_for("the sleeper inside", Duration::from_secs(10), || {
        sleepers().len() == 1
    });
    let mut counted = 0;
    wait_for("the sleeper counted", Duration::from_secs(10), || {
        counted = processes(&mut sampler);
        counted == before + 1
    });
    // Each process's `stat` is kept open between samples, and read again in place.
    assert_eq!(sampler.kept_files(), counted);
    // Killed (the shell reaps it, then becomes a sleeper itself: the same process).
    let sleeper = sleepers()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the killed sleeper gone", Duration::from_secs(10), || {
        !is_running(sleeper)
    });
    wait_for(
        "the killed sleeper uncounted",
        Duration::from_secs(10),
        || processes(&mut sampler) == before,
    );
    assert_eq!(
        sampler.kept_files(),
        before,
        "the killed sleeper's file was let go"
    );
    assert_eq!(
        sampler.full_walks(),
        1,
        "followed without walking /proc again"
    );
}
