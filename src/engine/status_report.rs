//! What `status` reports: each sandbox's agent state from one reading (not debounced), with
//! `--metrics` its CPU and memory from two samples. Built here, so the CLI and the API
//! (`status_report`, what `status --host` asks for) give the same answer.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Deck;
use super::status::{AgentState, Source};
use crate::metrics::{HostMetrics, SandboxMetrics};
use crate::sandbox::{SandboxRecord, SandboxState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Always "single": one reading, so it is not debounced.
    pub sampling: String,
    pub note: String,
    pub sandboxes: Vec<StatusRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRow {
    pub name: String,
    pub sandbox_state: SandboxState,
    /// None (null) for a shell sandbox: no agent runs there.
    pub state: Option<AgentState>,
    pub reason: String,
    pub source: Option<Source>,
    pub project: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SandboxMetrics>,
}

impl Deck {
    /// The report of `records`; with `metrics`, sampled twice a second apart (blocking).
    pub fn status_report(&self, records: &[SandboxRecord], metrics: bool) -> StatusReport {
        let snapshot = metrics
            .then(|| {
                let mut sampler = self.metrics_sampler();
                sampler.sample(records);
                let pause = self.config.metrics.interval_ms.min(1000);
                std::thread::sleep(std::time::Duration::from_millis(pause));
                sampler.sample(records)
            })
            .flatten();
        let sandboxes = records
            .iter()
            .map(|r| StatusRow {
                metrics: snapshot
                    .as_ref()
                    .and_then(|s| s.sandboxes.get(&r.id).cloned()),
                ..self.status_row(r)
            })
            .collect();
        StatusReport {
            sampling: "single".into(),
            note: "one reading, not debounced (the dashboard waits for two before showing idle)"
                .into(),
            sandboxes,
            host: snapshot.map(|s| s.host),
        }
    }

    /// One sandbox's row, without its metrics.
    fn status_row(&self, r: &SandboxRecord) -> StatusRow {
        let a = r.runs_agent().then(|| self.agent_status(r));
        StatusRow {
            name: r.name.to_string(),
            sandbox_state: r.state,
            state: a.as_ref().map(|a| a.state),
            reason: match &r.unreachable {
                Some(why) => format!("unreachable: {why}"),
                None => a.as_ref().map_or_else(
                    || format!("a shell sandbox (no agent); it is {}", r.state),
                    |a| a.reason.clone(),
                ),
            },
            source: a.map(|a| a.source),
            project: r.project_dir.as_path().to_owned(),
            metrics: None,
        }
    }
}
