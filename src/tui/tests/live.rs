//! What the workers report (agent states, metrics, usage): how the reducer takes it, which
//! notifications it calls for, and how the table, the Usage tab and the header show it.

use std::collections::HashMap;

use super::snapshots::{buffer, find, live_state, render};
use super::*;
use crate::engine::status::{AgentState, Assessment, Source};
use crate::metrics::SandboxMetrics;
use crate::sandbox::SandboxId;
use crate::sandbox::SandboxState;
use crate::tui::action::{AgentReading, Op};
use crate::tui::live::{ProjectUsage, UsageSummary};
use crate::tui::state::Tab;
use crate::tui::theme::ColorSupport;
use crate::usage::Totals;
use crate::usage::blocks::{BurnRate, ESTIMATE_NOTE, Projection};

fn reading(state: AgentState, reason: &str) -> Assessment {
    Assessment::new(state, Source::Hook, reason)
}

fn agents(state: &mut State, readings: &[(&str, AgentState)]) -> Vec<Effect> {
    let readings = readings
        .iter()
        .map(|(name, s)| AgentReading {
            id: id(name),
            name: named(name),
            sandbox: state
                .records
                .iter()
                .find(|r| r.name.as_str() == *name)
                .map_or(SandboxState::Running, |r| r.state),
            assessment: reading(*s, &format!("{name} reason")),
        })
        .collect();
    update(state, Action::AgentsSampled(readings))
}

fn names(state: &State) -> Vec<String> {
    state.rows().iter().map(|r| r.name.to_string()).collect()
}

fn id_of(state: &State, name: &str) -> SandboxId {
    state
        .records
        .iter()
        .find(|r| r.name.as_str() == name)
        .map(|r| r.id.clone())
        .expect("a record of that name")
}

/// The five records plus two more running agents, `docs` and `ml`.
fn with_more_agents(mut state: State) -> State {
    let mut records = records();
    records.push(record("docs", "running", Some(20)));
    records.push(record("ml", "running", Some(3)));
    update(&mut state, Action::Loaded(Ok(records)));
    state
}

#[test]
fn agent_readings_fill_the_rows_and_redraw_only_when_they_change() {
    let mut state = state();
    state.dirty = false;
    assert!(agents(&mut state, &[("api", AgentState::Working)]).is_empty());
    assert!(state.dirty);
    let api = state.rows()[0];
    assert_eq!(
        state.live.agent(api).map(|a| a.state),
        Some(AgentState::Working)
    );
    state.dirty = false;
    agents(&mut state, &[("api", AgentState::Working)]);
    assert!(!state.dirty, "the same reading again draws nothing");
    // A stopped sandbox shows no agent state of its own.
    agents(&mut state, &[("web", AgentState::Exited)]);
    let web = state.rows().into_iter().find(|r| r.name.as_str() == "web");
    assert!(state.live.agent(web.unwrap()).is_none());
}

#[test]
fn entering_waiting_notifies_once_rings_the_bell_and_flashes() {
    let mut state = state();
    agents(&mut state, &[("api", AgentState::Working)]);
    let effects = agents(&mut state, &[("api", AgentState::Waiting)]);
    let api = state.records[0].clone();
    assert_eq!(
        effects,
        [
            Effect::Bell,
            Effect::Notify(Box::new((api, reading(AgentState::Waiting, "api reason"))))
        ]
    );
    assert_eq!(
        state.flash.as_ref().map(|f| f.text.as_str()),
        Some("api is waiting: api reason")
    );
    // Still waiting: nothing more.
    assert!(agents(&mut state, &[("api", AgentState::Waiting)]).is_empty());
    // Back to work, then waiting again: a new notice.
    assert!(agents(&mut state, &[("api", AgentState::Working)]).is_empty());
    let again = agents(&mut state, &[("api", AgentState::Waiting)]);
    assert_eq!(again.len(), 2);
}

#[test]
fn without_the_bell_only_the_command_runs() {
    let mut state = state();
    state.settings.bell = false;
    let effects = agents(&mut state, &[("api", AgentState::Waiting)]);
    assert!(
        matches!(effects.as_slice(), [Effect::Notify(_)]),
        "{effects:?}"
    );
}

#[test]
fn an_agent_that_ends_notifies_unless_it_was_already_over_or_stopped_by_the_user() {
    let mut state = state();
    // Found dead or exited when the deck opens: old news.
    assert!(
        agents(
            &mut state,
            &[("legacy", AgentState::Dead), ("api", AgentState::Working)]
        )
        .is_empty()
    );
    // Seen to end while the deck is open: news.
    let effects = agents(
        &mut state,
        &[("legacy", AgentState::Dead), ("api", AgentState::Exited)],
    );
    assert!(
        matches!(effects.as_slice(), [Effect::Bell, Effect::Notify(n)] if n.0.name.as_str() == "api"),
        "{effects:?}"
    );
    // The user's own stop is not a surprise: while it runs, nor once it is done (even when
    // the table has not caught up with it yet).
    agents(&mut state, &[("api", AgentState::Working)]);
    state.busy.push((named("api"), Op::Stop));
    assert!(agents(&mut state, &[("api", AgentState::Exited)]).is_empty());
    agents(&mut state, &[("api", AgentState::Working)]);
    state.busy.clear();
    let stopped = AgentReading {
        id: id("api"),
        name: named("api"),
        sandbox: SandboxState::Stopped,
        assessment: reading(AgentState::Exited, "stopped"),
    };
    assert!(update(&mut state, Action::AgentsSampled(vec![stopped])).is_empty());
}

#[test]
fn waiting_agents_sort_first_then_the_rest_by_name() {
    let mut state = with_more_agents(state());
    assert_eq!(
        names(&state),
        ["api", "ci", "docs", "legacy", "ml", "web", "worker"]
    );
    agents(
        &mut state,
        &[
            ("ml", AgentState::Waiting),
            ("docs", AgentState::Waiting),
            ("api", AgentState::Working),
        ],
    );
    assert_eq!(
        names(&state),
        ["docs", "ml", "api", "ci", "legacy", "web", "worker"]
    );
    // The other sort keys still work, and A comes back to the default.
    press(&mut state, "N");
    press(&mut state, "A");
    assert_eq!(names(&state)[0], "docs");
}

#[test]
fn metrics_redraw_only_when_a_shown_figure_changes() {
    let mut state = state();
    let api = id_of(&state, "api");
    let sample = |cpu: f64, rss: u64| {
        let mut m = HashMap::new();
        m.insert(
            api.clone(),
            SandboxMetrics {
                processes: 3,
                cpu_percent_of_core: cpu,
                cpu_percent_of_host: cpu / 2.0,
                rss_bytes: rss,
            },
        );
        Action::MetricsSampled(m)
    };
    state.dirty = false;
    update(&mut state, sample(12.2, 512 << 20));
    assert!(state.dirty);
    state.dirty = false;
    update(&mut state, sample(11.9, (512 << 20) + 4096));
    assert!(!state.dirty, "12% and 512M either way");
    update(&mut state, sample(40.0, 512 << 20));
    assert!(state.dirty);
}

/// Fixed worker reports: agents in every state, metrics for the running ones, usage with
/// an active block and a limit notice.
// One fixture read top to bottom: splitting it would scatter what the snapshots show.
#[allow(clippy::too_many_lines)]
fn fed_state(width: u16, height: u16) -> State {
    let mut state = with_more_agents(live_state(width, height));
    agents(
        &mut state,
        &[
            ("api", AgentState::Waiting),
            ("ci", AgentState::Starting),
            ("docs", AgentState::Working),
            ("ml", AgentState::Idle),
        ],
    );
    state.flash = None;
    let mut metrics = HashMap::new();
    for (name, cpu, rss) in [
        ("api", 12.4, 512u64 << 20),
        ("docs", 187.0, 1331 << 20),
        ("ml", 0.2, 34 << 20),
        // Stopped, with the last sample it had: the table shows none of it.
        ("web", 99.0, 4096 << 20),
    ] {
        metrics.insert(
            id_of(&state, name),
            SandboxMetrics {
                processes: 4,
                cpu_percent_of_core: cpu,
                cpu_percent_of_host: cpu / 2.0,
                rss_bytes: rss,
            },
        );
    }
    update(&mut state, Action::MetricsSampled(metrics));
    let totals = |input, output, write, read, cost| Totals {
        input_tokens: input,
        output_tokens: output,
        cache_creation_tokens: write,
        cache_read_tokens: read,
        total_tokens: input + output + write + read,
        cost_usd: cost,
        entries: 10,
        skipped_lines: 0,
    };
    let at = |hm: &str| -> DateTime<Utc> {
        format!("2026-01-01T{hm}:00Z")
            .parse()
            .expect("a fixed time")
    };
    let summary = UsageSummary {
        projects: vec![
            ProjectUsage {
                cwd: "/home/dev/src/api".into(),
                totals: totals(12_000, 48_000, 300_000, 2_400_000, 9.5),
                sessions: 3,
                last_seen: Some(at("11:58")),
            },
            ProjectUsage {
                cwd: "/home/dev/src/api/web".into(),
                totals: totals(1_000, 2_000, 10_000, 100_000, 2.84),
                sessions: 1,
                last_seen: Some(at("09:10")),
            },
            ProjectUsage {
                cwd: "/home/dev/src/docs".into(),
                totals: totals(500, 1_500, 4_000, 20_000, 0.42),
                sessions: 1,
                last_seen: Some(at("11:40")),
            },
        ],
        today: totals(8_000, 30_000, 200_000, 1_500_000, 6.75),
        block: Some(crate::usage::Block {
            start: at("10:00"),
            end: at("15:00"),
            first_entry: at("10:05"),
            last_entry: at("11:58"),
            active: true,
            totals: totals(5_000, 20_000, 100_000, 1_000_000, 4.2),
            burn_rate: Some(BurnRate {
                tokens_per_minute: 9_955.75,
                cost_usd_per_minute: 0.037,
                note: ESTIMATE_NOTE,
            }),
            projection: Some(Projection {
                total_tokens: 2_917_000,
                cost_usd: 10.86,
                minutes_left: 180.0,
                note: ESTIMATE_NOTE,
            }),
        }),
        limit_resets_at: Some(at("15:00")),
        skipped_files: 0,
    };
    update(&mut state, Action::UsageUpdated(Box::new(summary)));
    state
}

#[test]
fn the_table_with_agent_states_cpu_mem_and_cost() {
    insta::assert_snapshot!(render(&fed_state(120, 30)));
}

#[test]
fn the_table_with_agent_states_on_a_narrow_screen() {
    insta::assert_snapshot!(render(&fed_state(80, 24)));
}

#[test]
fn the_usage_tab() {
    let mut state = fed_state(120, 30);
    state.tab = Tab::Usage;
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_usage_tab_before_the_logs_are_read_and_for_a_project_without_usage() {
    let mut state = live_state(100, 20);
    state.tab = Tab::Usage;
    let before = render(&state);
    let mut state = fed_state(100, 20);
    state.tab = Tab::Usage;
    state.selected = Some(named("ml"));
    insta::assert_snapshot!(format!("{before}\n{}", render(&state)));
}

#[test]
fn a_waiting_agent_is_drawn_bold_and_reversed_even_without_colour() {
    use ratatui::style::Modifier;
    let state = fed_state(120, 30);
    for support in [ColorSupport::TrueColor, ColorSupport::None] {
        let buf = buffer(&state, support);
        let (x, y) = find(&buf, "! waiting").expect("the waiting agent");
        let cell = &buf[(x + 2, y)];
        assert!(
            cell.modifier.contains(Modifier::BOLD | Modifier::REVERSED),
            "{cell:?}"
        );
    }
}

#[test]
fn a_new_sandbox_with_a_reused_name_does_not_inherit_the_old_ones_agent_state() {
    let mut state = state();
    agents(&mut state, &[("api", AgentState::Waiting)]);
    let api = state.rows()[0].clone();
    assert!(state.live.is_waiting(&api));
    // api is deleted and a new api made before the status worker looks again: the same
    // name, a new id.
    let mut now = records();
    now[0] = record("api", "running", Some(1));
    now[0].id = serde_json::from_value(serde_json::json!("00000000deadbeef")).unwrap();
    update(&mut state, Action::Loaded(Ok(now)));
    let new_api = state
        .records
        .iter()
        .find(|r| r.name.as_str() == "api")
        .expect("the new api")
        .clone();
    assert_ne!(new_api.id, api.id);
    assert!(
        state.live.agent(&new_api).is_none(),
        "no reading of its own yet"
    );
    assert!(!state.live.is_waiting(&new_api));
}

fn held(host: &str, id: &str) -> crate::egress::held::Held {
    crate::egress::held::Held {
        id: id.into(),
        kind: "connect".into(),
        host: host.into(),
        port: 443,
        since: now(),
    }
}

#[test]
fn a_held_connection_rings_once_shows_on_its_row_and_the_keys_answer_it() {
    use crate::egress::held::Reply;
    let mut state = state();
    let sampled = |h: Vec<crate::egress::held::Held>| {
        let mut map = HashMap::new();
        if !h.is_empty() {
            map.insert(id("api"), h);
        }
        Action::HeldSampled(map)
    };
    // Control: with nothing held, the keys say so and answer nothing.
    while state.selected_record().map(|r| r.name.as_str()) != Some("api") {
        press(&mut state, "j");
    }
    assert!(press(&mut state, "v").is_empty());
    let effects = update(&mut state, sampled(vec![held("evil.example", "h1")]));
    assert_eq!(effects, vec![Effect::Bell]);
    let flash = state.flash.as_ref().map(|f| f.text.clone()).unwrap();
    assert!(flash.contains("api wants evil.example:443"), "{flash}");
    assert!(
        flash.contains("v once") && flash.contains("x deny"),
        "{flash}"
    );
    // The same connection again is no news.
    assert!(update(&mut state, sampled(vec![held("evil.example", "h1")])).is_empty());
    let screen = render(&state);
    assert!(screen.contains("net? 1"), "{screen}");
    for (key, reply) in [
        ("v", Reply::Once),
        ("V", Reply::Session),
        ("w", Reply::Always),
        ("x", Reply::Deny),
    ] {
        assert_eq!(
            press(&mut state, key),
            vec![Effect::AnswerHeld {
                name: named("api"),
                target: "evil.example:443".into(),
                reply,
            }]
        );
    }
    update(&mut state, sampled(Vec::new()));
    assert!(!render(&state).contains("net?"));
}
