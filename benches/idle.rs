//! Idle cost of watching running sandboxes (issue 15): `cargo bench --bench idle [-- --secs N]`.
//!
//! Ten running sandboxes whose agent is a quiet shell, and the engine handle asked what the
//! TUI's workers ask (every agent state every 1.5 s, the selected sandbox's preview every
//! 250 ms), two ways in the same run:
//! - before: a `tmux capture-pane` process per look (what `Deck::agent_status` and
//!   `capture_pane` do, the path the handle took until control mode);
//! - after: through the handle (`agent_states`, `preview`): one tmux control client per
//!   session, a capture only for a pane that printed since the last look.
//!
//! The cost counted is the whole of it: this process, the children it started (reaped
//! `capture-pane` processes, and the control clients, read from `/proc`), and the tmux
//! server. Everything runs under its own HOME and XDG dirs in a temp dir; every sandbox is
//! removed with `rm --force`, the tmux server is ended by its socket, and the last line
//! says whether any process of ours was left (those are then killed by pid).

#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::time::Duration;

use world::{
    PREVIEW_EVERY, STATUS_EVERY, configure, create_sandboxes, measure, report, run_in_temp_dir,
    server_pid,
};

use sandbox_deck::config::Config;
use sandbox_deck::engine::{Deck, EngineHandle};
use sandbox_deck::paths::Paths;

const SANDBOXES: usize = 10;

fn main() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30u64);
    run_in_temp_dir("sdi-", |base| run(base, Duration::from_secs(secs)));
}

fn run(base: &Path, period: Duration) -> Result<(), String> {
    let config_dir = configure(base, "exec sh", "")?;
    create_sandboxes(base, SANDBOXES)?;
    let paths = Paths {
        state_dir: base.join("state/sandbox-deck"),
        config_dir,
        runtime_dir: base.join("run/sandbox-deck"),
    };
    let config = Config::load(&paths.config_file()).map_err(|e| e.to_string())?;
    let deck = Deck::with(paths, config).map_err(|e| e.to_string())?;
    let records = deck.list().map_err(|e| e.to_string())?;
    let server = server_pid(base).ok_or("no tmux server pid")?;
    println!(
        "{} running sandboxes (agent: a quiet shell), {}s each way, status every {:?}, \
         preview every {:?}",
        records.len(),
        period.as_secs(),
        STATUS_EVERY,
        PREVIEW_EVERY
    );
    let before = measure(
        server,
        period,
        || {
            for r in &records {
                let _ = deck.agent_status(r);
            }
        },
        || {
            let _ = deck.capture_pane(records[0].name.as_str());
        },
    );
    // The first look attaches the control clients; the idle cost is what comes after.
    EngineHandle::agent_states(&deck, &records);
    let after = measure(
        server,
        period,
        || {
            EngineHandle::agent_states(&deck, &records);
        },
        || {
            let _ = EngineHandle::preview(&deck, &records[0].name);
        },
    );
    report("before (a capture-pane process per look)", &before, period);
    report("after (control mode)", &after, period);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    println!(
        "ratio before/after, whole cost: {:.1}x; tmux processes started: {} vs {}",
        ratio(before.total(), after.total()),
        before.spawned,
        after.spawned
    );
    Ok(())
}
