//! What the workers report, as plain data in the state: each sandbox's agent state (debounced),
//! its CPU and memory, and Claude usage per project directory with today's total and the
//! current 5-hour block.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::engine::host_stats::HostStats;
use crate::engine::status::{AgentState, Assessment};
use crate::format::{human_duration, kib_as_gib};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord, SandboxState};

pub use crate::engine::usage::{ProjectUsage, UsageSummary};

#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The debounced agent state, by sandbox id (a name can be reused after `rm`).
    pub agents: HashMap<SandboxId, Assessment>,
    /// The last metrics sample; a sandbox is missing until two samples exist.
    pub metrics: HashMap<SandboxId, SandboxMetrics>,
    pub usage: Option<UsageSummary>,
    /// Connections held for an answer, by sandbox id (only those holding any).
    pub held: HashMap<SandboxId, Vec<crate::egress::held::Held>>,
}

impl Live {
    /// The agent state to show for a sandbox: only while it runs (the sandbox's own state
    /// says the rest), and never for a shell sandbox (it has no agent).
    pub fn agent(&self, record: &SandboxRecord) -> Option<&Assessment> {
        if !record.is_running() || !record.runs_agent() {
            return None;
        }
        self.agents.get(&record.id)
    }

    /// CPU and memory to show for a sandbox: only while it runs, so a stopped one never
    /// shows the last figures it had.
    pub fn metrics_of(&self, record: &SandboxRecord) -> Option<&SandboxMetrics> {
        if !record.is_running() {
            return None;
        }
        self.metrics.get(&record.id)
    }

    /// The connections a running sandbox's proxy holds for an answer, oldest first.
    pub fn held_of(&self, record: &SandboxRecord) -> &[crate::egress::held::Held] {
        if !record.is_running() {
            return &[];
        }
        self.held.get(&record.id).map_or(&[], Vec::as_slice)
    }

    pub fn is_waiting(&self, record: &SandboxRecord) -> bool {
        self.agent(record)
            .is_some_and(|a| a.state == AgentState::Waiting)
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

/// The table's UPTIME of a sandbox at `now`.
pub fn uptime(r: &SandboxRecord, now: DateTime<Utc>) -> String {
    match (r.state, r.started_at) {
        (SandboxState::Running, Some(t)) => human_duration(now - t),
        _ => "-".into(),
    }
}

/// The table's CPU of a sandbox.
pub fn cpu_text(metrics: Option<&SandboxMetrics>) -> String {
    metrics.map_or("-".into(), cpu)
}

/// The table's MEM of a sandbox.
pub fn mem_text(metrics: Option<&SandboxMetrics>) -> String {
    metrics.map_or("-".into(), |m| bytes(m.rss_bytes))
}

/// The host's name, and its CPU and memory as the header writes them.
pub fn host_figures(host: Option<&HostStats>, cpu_percent: Option<f64>) -> Option<[String; 2]> {
    let host = host?;
    let cpu = cpu_percent.map_or("–".to_owned(), |p| format!("{p:.0}%"));
    let mut figures = format!("  cpu {cpu}");
    if host.mem_total_kib > 0 {
        let used = host.mem_total_kib.saturating_sub(host.mem_available_kib);
        figures += &format!(
            "  mem {}/{} GiB",
            kib_as_gib(used),
            kib_as_gib(host.mem_total_kib)
        );
    }
    Some([host.hostname.clone(), figures])
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
}
