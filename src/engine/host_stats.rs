//! What the dashboard header says about the host: its name, CPU and memory. Counters are
//! cumulative (as the kernel gives them) so a front end computes CPU use from two samples.

use serde::{Deserialize, Serialize};

use super::Deck;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    pub hostname: String,
    /// Jiffies spent not idle, since boot (all CPUs).
    pub cpu_busy: u64,
    /// All jiffies since boot (all CPUs).
    pub cpu_total: u64,
    pub mem_total_kib: u64,
    pub mem_available_kib: u64,
}

impl HostStats {
    /// CPU use between two samples, in percent of all CPUs.
    pub fn cpu_percent_since(&self, earlier: &HostStats) -> Option<f64> {
        let total = self.cpu_total.checked_sub(earlier.cpu_total)?;
        let busy = self.cpu_busy.checked_sub(earlier.cpu_busy)?;
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }
}

impl Deck {
    /// A fresh sample; fields the host does not expose stay zero.
    pub fn host_stats(&self) -> HostStats {
        let mut stats = HostStats {
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            ..HostStats::default()
        };
        if let Ok(text) = std::fs::read_to_string("/proc/stat") {
            (stats.cpu_busy, stats.cpu_total) = parse_cpu_line(&text).unwrap_or_default();
        }
        if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
            stats.mem_total_kib = meminfo_field(&text, "MemTotal:").unwrap_or_default();
            stats.mem_available_kib = meminfo_field(&text, "MemAvailable:").unwrap_or_default();
        }
        stats
    }
}

/// (busy, total) from the aggregate `cpu` line; idle and iowait count as not busy.
fn parse_cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // guest and guest_nice (fields 9, 10) are already counted in user and nice.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_use_comes_from_two_samples() {
        let (busy, total) = parse_cpu_line("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2").unwrap();
        assert_eq!((busy, total), (200, 1000));
        let a = HostStats {
            cpu_busy: 200,
            cpu_total: 1000,
            ..HostStats::default()
        };
        let b = HostStats {
            cpu_busy: 250,
            cpu_total: 1100,
            ..HostStats::default()
        };
        assert_eq!(b.cpu_percent_since(&a), Some(50.0));
        assert_eq!(a.cpu_percent_since(&b), None);
    }

    #[test]
    fn meminfo_fields_parse() {
        let text = "MemTotal:       16000 kB\nMemAvailable:    4000 kB\n";
        assert_eq!(meminfo_field(text, "MemTotal:"), Some(16000));
        assert_eq!(meminfo_field(text, "MemAvailable:"), Some(4000));
        assert_eq!(meminfo_field(text, "Swap:"), None);
    }
}
