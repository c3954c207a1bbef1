//! What the workers report: agent states (with the notifications they call for), metrics
//! and usage, all kept by sandbox id.

use std::collections::HashMap;

use super::flash;
use crate::engine::status::{AgentState, Assessment, should_notify};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxState};
use crate::tui::action::{AgentReading, Effect};
use crate::tui::live::UsageSummary;
use crate::tui::state::State;

pub(super) fn on_agents(state: &mut State, readings: Vec<AgentReading>) -> Vec<Effect> {
    let mut effects = Vec::new();
    let mut alerts = Vec::new();
    for AgentReading {
        id,
        name,
        sandbox,
        assessment: reading,
    } in &readings
    {
        let before = state.live.agents.get(id).map(|a| a.state);
        if !deserves_notice(before, reading.state) {
            continue;
        }
        // A sandbox someone stopped has not ended by surprise.
        if *sandbox == SandboxState::Stopped || state.busy_with(name.as_str()).is_some() {
            continue;
        }
        let Some(record) = state.records.iter().find(|r| &r.id == id) else {
            continue;
        };
        alerts.push(format!("{name} is {}: {}", reading.state, reading.reason));
        effects.push(Effect::Notify(Box::new((record.clone(), reading.clone()))));
    }
    state.live.agents = readings
        .into_iter()
        .map(|r| (r.id, r.assessment))
        .collect::<HashMap<SandboxId, Assessment>>();
    if !alerts.is_empty() {
        flash(state, alerts.join(" · "));
        if state.settings.bell {
            effects.insert(0, Effect::Bell);
        }
    }
    effects
}

/// Entering waiting always deserves a notice; exited and dead only as a change seen while
/// the deck is open (a sandbox that died last week is not news).
fn deserves_notice(before: Option<AgentState>, after: AgentState) -> bool {
    match before {
        None => after == AgentState::Waiting,
        Some(_) => should_notify(before, after),
    }
}

/// New held connections: a flash naming the keys, and the bell (notify.command is the
/// engine's, run once per held connection).
pub(super) fn on_held(
    state: &mut State,
    held: HashMap<SandboxId, Vec<crate::egress::held::Held>>,
) -> Vec<Effect> {
    let mut alerts = Vec::new();
    for (id, now) in &held {
        let before = state.live.held.get(id);
        let new = now
            .iter()
            .filter(|h| !before.is_some_and(|b| b.iter().any(|k| k.id == h.id)));
        let name = state.records.iter().find(|r| &r.id == id).map(|r| &r.name);
        if let Some(name) = name {
            alerts.extend(new.map(|h| format!("{name} wants {}", h.target())));
        }
    }
    state.live.held = held;
    if alerts.is_empty() {
        return Vec::new();
    }
    let keys = super::table::answer_keys(state);
    flash(state, format!("{} ({keys})", alerts.join(" · ")));
    if state.settings.bell {
        vec![Effect::Bell]
    } else {
        Vec::new()
    }
}

pub(super) fn on_metrics(
    state: &mut State,
    metrics: HashMap<SandboxId, SandboxMetrics>,
) -> Vec<Effect> {
    state.live.metrics = metrics;
    Vec::new()
}

pub(super) fn on_usage(state: &mut State, summary: UsageSummary) -> Vec<Effect> {
    state.live.usage = Some(summary);
    Vec::new()
}
