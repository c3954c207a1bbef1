//! The mirror as a screen (issue 13), in real tmux like the tests:
//! - key → frame: a key that moves the selection, until the pane shows the new selection,
//!   in the mirror of the host against the host's own TUI, alternating;
//! - a fleet of hosts × sandboxes (each host its own XDG dirs and engine behind its own
//!   sshd, all on this machine): the idle mirror's CPU and memory (the TUI and its ssh
//!   clients), against the local TUI of one of those hosts in the same run.

use std::time::{Duration, Instant};

use crate::common::descendants;
use crate::common::sshd::{RemoteDeck, SshClient, Sshd};
use crate::common::tui::TuiWorld;

const KEY_ROUNDS: usize = 40;
const FLEET_HOSTS: usize = 5;
const FLEET_SANDBOXES: usize = 20;

/// The name in the detail pane's title: the selected sandbox.
fn selected(screen: &str) -> Option<String> {
    let title = screen
        .lines()
        .find(|l| l.starts_with("┌ ") && !l.starts_with("┌ Sandboxes"))?;
    Some(title.trim_start_matches("┌ ").split(' ').next()?.to_owned())
}

/// From sending `key` until the screen shows another selection.
fn one_key(world: &TuiWorld, key: &str) -> Duration {
    let before = selected(&world.screen());
    let started = Instant::now();
    world.keys(&[key]);
    loop {
        let now = selected(&world.screen());
        if now.is_some() && now != before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no new frame after {key}"
        );
    }
}

pub fn key_to_frame(host: &TuiWorld, laptop: &TuiWorld, alias: &str, sandboxes: usize) {
    host.start_tui();
    laptop.start_tui_with(&["mirror", alias]);
    let all = format!("Sandboxes {sandboxes}/{sandboxes}");
    for world in [host, laptop] {
        world.wait_for("the table", |s| s.contains(&all));
        world.keys(&["g"]);
    }
    std::thread::sleep(Duration::from_secs(1));
    let (mut local, mut mirror) = (Vec::new(), Vec::new());
    for round in 0..KEY_ROUNDS {
        let key = if round % 2 == 0 { "j" } else { "k" };
        local.push(one_key(host, key));
        mirror.push(one_key(laptop, key));
    }
    crate::report(
        "key → frame, the mirror over ssh",
        mirror,
        local,
        "the host's own TUI",
    );
    host.quit();
    laptop.quit();
}

/// CPU seconds and resident KiB of `pid` and of its descendants (a mirror's ssh clients).
fn cost(pid: u32) -> ((f64, u64), (f64, u64)) {
    let of = |pid: u32| {
        let cpu =
            sandbox_deck::host::process::stat(pid).map_or(0.0, |s| s.cpu_ticks as f64) / 100.0;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0u64);
        (cpu, rss)
    };
    let own = of(pid);
    let children = descendants(pid)
        .into_iter()
        .map(of)
        .fold((0.0, 0), |(c, r), (c2, r2)| (c + c2, r + r2));
    (own, children)
}

/// The idle cost of the TUI in `world` over `window`.
fn idle(world: &TuiWorld, what: &str, window: Duration) {
    let pid = world.tui_pid().expect("the TUI's pid") as u32;
    let (before, children_before) = cost(pid);
    std::thread::sleep(window);
    let (after, children_after) = cost(pid);
    let percent = |a: f64, b: f64| (a - b) / window.as_secs_f64() * 100.0;
    println!(
        "{what}: CPU {:.2}% (with its {} child processes {:.2}%), RSS {:.1} MiB (with them {:.1} MiB)",
        percent(after.0, before.0),
        descendants(pid).len(),
        percent(after.0 + children_after.0, before.0 + children_before.0),
        after.1 as f64 / 1024.0,
        (after.1 + children_after.1) as f64 / 1024.0,
    );
}

pub fn fleet_idle(window: Duration) {
    let hosts: Vec<TuiWorld> = (0..FLEET_HOSTS).map(|_| TuiWorld::new()).collect();
    let sshds: Vec<Sshd> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Sshd::start(h, &format!("fleet-{i}"), RemoteDeck::Real).expect("sshd"))
        .collect();
    for host in &hosts {
        for j in 0..FLEET_SANDBOXES {
            host.create_idle(&format!("s{j}"));
        }
    }
    let laptop = TuiWorld::new();
    let servers: Vec<&Sshd> = sshds.iter().collect();
    let ssh = SshClient::new(&laptop, &servers);
    ssh.configure(&laptop);
    let mut args = vec!["mirror".to_owned()];
    args.extend(sshds.iter().map(|s| s.alias.clone()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    laptop.start_tui_in((120, 40), &[], &args);
    let total = FLEET_HOSTS * FLEET_SANDBOXES;
    let all = format!("Sandboxes {total}/{total}");
    laptop.wait_for("the fleet's table", |s| s.contains(&all));
    hosts[0].start_tui_in((120, 40), &[], &[]);
    let one = format!("Sandboxes {FLEET_SANDBOXES}/{FLEET_SANDBOXES}");
    hosts[0].wait_for("the host's table", |s| s.contains(&one));
    // Past the first samples of everything (metrics, usage).
    std::thread::sleep(Duration::from_secs(5));
    idle(
        &laptop,
        &format!("idle mirror of {FLEET_HOSTS} hosts × {FLEET_SANDBOXES} sandboxes"),
        window,
    );
    idle(
        &hosts[0],
        &format!("baseline: the local TUI of one of them ({FLEET_SANDBOXES} sandboxes)"),
        window,
    );
    laptop.quit();
    hosts[0].quit();
}
