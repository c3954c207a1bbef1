//! The command line's own surface: help that explains every argument, `launch`'s
//! launchers, `doctor`'s versions.

use crate::common::*;

fn help(world: &World, args: &[&str]) -> String {
    let mut full = args.to_vec();
    full.push("--help");
    let out = world.run(&full);
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_name_argument_is_explained() {
    let world = World::new();
    for command in [
        "show",
        "stop",
        "start",
        "restart",
        "rm",
        "attach",
        "screenshot",
    ] {
        let text = help(&world, &[command]);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("<NAME>"))
            .unwrap_or_else(|| panic!("`{command} --help` has no <NAME>: {text}"));
        assert!(
            line.contains("sandbox's name"),
            "`{command} --help` does not explain NAME: {line:?}"
        );
    }
    for command in ["status", "usage"] {
        let text = help(&world, &[command]);
        // Short help sits on the argument's line, long help on the next one.
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with("[NAME]"))
            .unwrap_or_else(|| panic!("`{command} --help` has no [NAME]: {text}"));
        let explained = lines[at..(at + 2).min(lines.len())].join(" ");
        assert!(
            explained.contains("sandbox's name"),
            "`{command} --help`: {text}"
        );
    }
}

#[test]
fn start_and_restart_offer_fresh() {
    let world = World::new();
    for command in ["start", "restart"] {
        let text = help(&world, &[command]);
        assert!(text.contains("--fresh"), "{text}");
    }
    assert!(help(&world, &["rm"]).contains("--purge"));
    assert!(help(&world, &["gc"]).contains("--yes"));
}

#[test]
fn launch_help_explains_the_launchers_and_offers_only_existing_backends() {
    let world = World::new();
    let text = help(&world, &["launch"]);
    assert!(
        text.contains("claude-sandbox") && text.contains("sandbox-deck launch bubblewrap"),
        "{text}"
    );
    assert!(text.contains("[possible values: bubblewrap]"), "{text}");
    for missing in ["container", "vm"] {
        let out = world.run(&["launch", missing, "/tmp"]);
        assert_eq!(out.status.code(), Some(2), "{missing} is refused as usage");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("possible values: bubblewrap"), "{stderr}");
    }
}

#[test]
fn doctor_prints_the_version_of_xvfb() {
    if !prerequisites(&["Xvfb"]) {
        return;
    }
    let world = World::new();
    let out = world.run(&["--json", "doctor"]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let xvfb = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Xvfb")
        .expect("an Xvfb check");
    let detail = xvfb["detail"].as_str().unwrap();
    // "…/Xvfb (xvfb 2:21.1.7-3+deb12u13)": a package and a version with digits.
    let version = detail
        .split_once('(')
        .map(|(_, v)| v.trim_end_matches(')'))
        .unwrap_or_default();
    assert!(
        version.split_whitespace().count() == 2 && version.chars().any(|c| c.is_ascii_digit()),
        "no version in {detail:?}"
    );
    let text = String::from_utf8_lossy(&world.run(&["doctor"]).stdout).into_owned();
    assert!(text.contains(version), "{text}");
}
