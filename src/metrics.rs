//! CPU and memory per sandbox (its launcher's process tree) and for the host, from sysinfo.
//!
//! Only the pids of the sandboxes asked about are refreshed, never the whole process table.
//! CPU is CPU time over wall time between two samples, so nothing is reported before two
//! samples exist.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::host::process::{ProcRef, ProcessTree};
use crate::sandbox::{SandboxId, SandboxRecord};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxMetrics {
    /// Processes in the tree now (the launcher and its descendants).
    pub processes: usize,
    /// CPU over the last interval in percent of one core: 100 is one core busy, and a
    /// sandbox using two cores reads 200.
    pub cpu_percent_of_core: f64,
    /// The same in percent of the whole host (all cores): at most 100.
    pub cpu_percent_of_host: f64,
    /// Resident memory of the tree, in bytes.
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskMetrics {
    /// The directory whose filesystem this is (the state dir).
    pub path: PathBuf,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostMetrics {
    pub cores: usize,
    /// All cores together, in percent of the whole host.
    pub cpu_percent: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_available_bytes: u64,
    pub load_average: [f64; 3],
    /// The filesystem that holds the state dir (not a sum over every mount).
    pub disk: Option<DiskMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// The wall time between the two samples this snapshot compares.
    pub interval_ms: u64,
    pub host: HostMetrics,
    /// Per sandbox id; a sandbox without a live launcher has no entry.
    pub sandboxes: HashMap<SandboxId, SandboxMetrics>,
}

/// Keeps what the previous sample saw. Create one per consumer (e.g. the TUI's worker).
pub struct MetricsSampler {
    system: System,
    state_dir: PathBuf,
    previous: Option<Instant>,
    /// Accumulated CPU milliseconds of each process at the previous sample.
    cpu_ms: HashMap<(u32, u64), u64>,
    cores: usize,
}

impl MetricsSampler {
    pub fn new(state_dir: PathBuf) -> MetricsSampler {
        let mut system = System::new();
        system.refresh_cpu_usage();
        let cores = system.cpus().len().max(1);
        MetricsSampler {
            system,
            state_dir,
            previous: None,
            cpu_ms: HashMap::new(),
            cores,
        }
    }

    /// Samples the host and the process trees of `records`. Returns None on the first call:
    /// a CPU figure needs two samples.
    pub fn sample(&mut self, records: &[SandboxRecord]) -> Option<MetricsSnapshot> {
        let now = Instant::now();
        let launchers: Vec<(&SandboxId, ProcRef)> = records
            .iter()
            .filter_map(|r| Some((&r.id, r.launcher.filter(ProcRef::is_alive)?)))
            .collect();
        // One scan of /proc for every tree.
        let table = (!launchers.is_empty()).then(ProcessTree::read);
        let trees: Vec<(&SandboxId, Vec<ProcRef>)> = launchers
            .into_iter()
            .map(|(id, launcher)| {
                let mut tree = vec![launcher];
                tree.extend(table.iter().flat_map(|t| t.descendants(&launcher)));
                (id, tree)
            })
            .collect();
        let pids: Vec<Pid> = trees
            .iter()
            .flat_map(|(_, t)| t.iter().map(|p| Pid::from_u32(p.pid)))
            .collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();

        let elapsed_ms = self
            .previous
            .map(|p| now.duration_since(p).as_secs_f64() * 1e3);
        let mut cpu_ms = HashMap::new();
        let mut sandboxes = HashMap::new();
        for (id, tree) in &trees {
            let mut used_ms = 0u64;
            let mut rss = 0u64;
            let mut processes = 0;
            for p in tree {
                let Some(process) = self.system.process(Pid::from_u32(p.pid)) else {
                    continue;
                };
                processes += 1;
                rss += process.memory();
                let total = process.accumulated_cpu_time();
                // A process new since the last sample spent all of its CPU time within it.
                used_ms += total.saturating_sub(
                    self.cpu_ms
                        .get(&(p.pid, p.start_time))
                        .copied()
                        .unwrap_or(0),
                );
                cpu_ms.insert((p.pid, p.start_time), total);
            }
            if let Some(elapsed) = elapsed_ms.filter(|e| *e > 0.0) {
                let of_core = used_ms as f64 / elapsed * 100.0;
                sandboxes.insert(
                    (*id).clone(),
                    SandboxMetrics {
                        processes,
                        cpu_percent_of_core: of_core,
                        cpu_percent_of_host: of_core / self.cores as f64,
                        rss_bytes: rss,
                    },
                );
            }
        }
        self.cpu_ms = cpu_ms;
        self.previous = Some(now);
        let elapsed = elapsed_ms?;
        let load = System::load_average();
        Some(MetricsSnapshot {
            interval_ms: elapsed.round() as u64,
            host: HostMetrics {
                cores: self.cores,
                cpu_percent: f64::from(self.system.global_cpu_usage()),
                memory_total_bytes: self.system.total_memory(),
                memory_used_bytes: self.system.used_memory(),
                memory_available_bytes: self.system.available_memory(),
                load_average: [load.one, load.five, load.fifteen],
                disk: disk_of(&self.state_dir),
            },
            sandboxes,
        })
    }
}

fn disk_of(dir: &std::path::Path) -> Option<DiskMetrics> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let block = st.fragment_size() as u64;
    let total = st.blocks() as u64 * block;
    let free = st.blocks_free() as u64 * block;
    let available = st.blocks_available() as u64 * block;
    Some(DiskMetrics {
        path: dir.to_owned(),
        total_bytes: total,
        available_bytes: available,
        used_bytes: total.saturating_sub(free),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sample_reports_nothing_and_the_second_sees_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = MetricsSampler::new(dir.path().to_owned());
        assert!(s.sample(&[]).is_none());
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let snap = s.sample(&[]).unwrap();
        assert!(snap.host.memory_total_bytes > 0);
        assert!(snap.host.cores >= 1);
        let disk = snap.host.disk.unwrap();
        assert!(disk.total_bytes >= disk.available_bytes && disk.total_bytes > 0);
    }
}
