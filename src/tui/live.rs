//! What the workers report, as plain data in the state: each sandbox's agent state (debounced),
//! its CPU and memory, and Claude usage per project directory with today's total and the
//! current 5-hour block.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::engine::status::{AgentState, Assessment};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord};
use crate::usage::{Block, Totals, cwd_in_project};

#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The debounced agent state, by sandbox name.
    pub agents: HashMap<String, Assessment>,
    /// The last metrics sample; a sandbox is missing until two samples exist.
    pub metrics: HashMap<SandboxId, SandboxMetrics>,
    pub usage: Option<UsageSummary>,
}

impl Live {
    /// The agent state to show for a sandbox: only while it runs (the sandbox's own state
    /// says the rest), and never for a shell sandbox (it has no agent).
    pub fn agent(&self, record: &SandboxRecord) -> Option<&Assessment> {
        if !record.is_running() || !record.runs_agent() {
            return None;
        }
        self.agents.get(record.name.as_str())
    }

    /// CPU and memory to show for a sandbox: only while it runs, so a stopped one never
    /// shows the last figures it had.
    pub fn metrics_of(&self, record: &SandboxRecord) -> Option<&SandboxMetrics> {
        if !record.is_running() {
            return None;
        }
        self.metrics.get(&record.id)
    }

    pub fn is_waiting(&self, record: &SandboxRecord) -> bool {
        self.agent(record)
            .is_some_and(|a| a.state == AgentState::Waiting)
    }
}

/// Usage from the local Claude logs, as the usage worker last computed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageSummary {
    /// All time, per working directory the logs name.
    pub projects: Vec<ProjectUsage>,
    /// Since local midnight, every project.
    pub today: Totals,
    /// The active 5-hour block over every project (limits are per account, not per sandbox).
    pub block: Option<Block>,
    /// When Claude said the usage limit resets, if a log line said so.
    pub limit_resets_at: Option<DateTime<Utc>>,
    /// Files under the Claude roots the last refresh did not read (symlinks, FIFOs, too
    /// large...); `sandbox-deck usage` names them.
    pub skipped_files: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectUsage {
    pub cwd: String,
    pub totals: Totals,
    /// Sessions that started in this directory.
    pub sessions: u64,
    pub last_seen: Option<DateTime<Utc>>,
}

impl UsageSummary {
    /// Everything logged in `project` or below it.
    pub fn for_project(&self, project: &Path) -> ProjectUsage {
        let mut sum = ProjectUsage {
            cwd: project.display().to_string(),
            ..ProjectUsage::default()
        };
        for p in self
            .projects
            .iter()
            .filter(|p| cwd_in_project(&p.cwd, project))
        {
            sum.totals += &p.totals;
            sum.sessions += p.sessions;
            sum.last_seen = sum.last_seen.max(p.last_seen);
        }
        sum
    }
}

/// `$0.42`, `$12.34`, `$123`, `$1.2k`: at most 6 characters.
pub fn usd(cost: f64) -> String {
    match cost {
        c if c < 100.0 => format!("${c:.2}"),
        c if c < 10_000.0 => format!("${c:.0}"),
        c => format!("${:.1}k", c / 1000.0),
    }
}

/// `950`, `12.3k`, `4.5M`, `1.2B`.
pub fn count(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n < 1e3 => format!("{n:.0}"),
        n if n < 1e6 => format!("{:.1}k", n / 1e3),
        n if n < 1e9 => format!("{:.1}M", n / 1e6),
        n => format!("{:.1}B", n / 1e9),
    }
}

/// `34M`, `512M`, `1.2G`: resident memory in a 5-character column.
pub fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = n as f64 / MIB;
    if mib < 1000.0 {
        format!("{mib:.0}M")
    } else {
        format!("{:.1}G", mib / 1024.0)
    }
}

/// CPU in percent of one core, as the table shows it.
pub fn cpu(m: &SandboxMetrics) -> String {
    format!("{:.0}%", m.cpu_percent_of_core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_fit_their_columns() {
        assert_eq!(usd(0.4249), "$0.42");
        assert_eq!(usd(123.4), "$123");
        assert_eq!(usd(12_345.0), "$12.3k");
        assert_eq!(count(950), "950");
        assert_eq!(count(12_340), "12.3k");
        assert_eq!(count(4_500_000), "4.5M");
        assert_eq!(bytes(34 * 1024 * 1024), "34M");
        assert_eq!(bytes(1288 * 1024 * 1024), "1.3G");
    }

    #[test]
    fn a_project_sums_its_subdirectories_and_not_its_siblings() {
        let entry = |cwd: &str, cost: f64, sessions| ProjectUsage {
            cwd: cwd.into(),
            totals: Totals {
                cost_usd: cost,
                input_tokens: 10,
                ..Totals::default()
            },
            sessions,
            last_seen: None,
        };
        let summary = UsageSummary {
            projects: vec![
                entry("/src/api", 1.0, 2),
                entry("/src/api/sub", 0.5, 1),
                entry("/src/api-v2", 7.0, 1),
            ],
            ..UsageSummary::default()
        };
        let api = summary.for_project(Path::new("/src/api"));
        assert_eq!(api.totals.cost_usd, 1.5);
        assert_eq!(api.totals.input_tokens, 20);
        assert_eq!(api.sessions, 3);
    }
}
