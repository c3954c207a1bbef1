//! CPU and memory per sandbox (its launcher's process tree) and for the host, from sysinfo.
//! [`HostSampler`] is the one source of the host's CPU and memory figures: `status --metrics`
//! and the TUI header (through [`crate::engine::host_stats`]) both read it.
//!
//! Only the pids of the sandboxes asked about are refreshed, never the whole process table.
//! CPU is CPU time over wall time between two samples, so nothing is reported before two
//! samples exist.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::host::process::{ProcRef, ProcessTree};
use crate::sandbox::{SandboxId, SandboxRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskMetrics {
    /// The directory whose filesystem this is (the state dir).
    pub path: PathBuf,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The host's CPU use and memory, from sysinfo. CPU use is measured between two calls (the
/// kernel's counters of busy and idle time, iowait counting as idle), so the first call has
/// none. Keep one per consumer: each measures since its own previous call.
pub struct HostSampler {
    /// None where sysinfo cannot read this system: every figure then stays zero.
    system: Option<System>,
    cores: usize,
    primed: bool,
}

/// One reading of [`HostSampler`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostSample {
    /// All cores together since the previous reading, in percent of the whole host; None on
    /// the first reading.
    pub cpu_percent: Option<f64>,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_available_bytes: u64,
}

impl Default for HostSampler {
    fn default() -> Self {
        HostSampler::new()
    }
}

impl HostSampler {
    pub fn new() -> HostSampler {
        let mut system = System::new().ok();
        if let Some(system) = &mut system {
            system.refresh_cpu_usage();
        }
        let cores = system.as_ref().map_or(0, |s| s.cpus().len()).max(1);
        HostSampler {
            system,
            cores,
            primed: false,
        }
    }

    pub fn cores(&self) -> usize {
        self.cores
    }

    /// CPU since the previous call (or since [`HostSampler::new`]), memory now.
    pub fn sample(&mut self) -> HostSample {
        let Some(system) = &mut self.system else {
            return HostSample {
                cpu_percent: None,
                memory_total_bytes: 0,
                memory_used_bytes: 0,
                memory_available_bytes: 0,
            };
        };
        system.refresh_cpu_usage();
        system.refresh_memory();
        let cpu_percent = self.primed.then(|| f64::from(system.global_cpu_usage()));
        self.primed = true;
        HostSample {
            cpu_percent,
            memory_total_bytes: system.total_memory(),
            memory_used_bytes: system.used_memory(),
            memory_available_bytes: system.available_memory(),
        }
    }

    /// The host's name, as the kernel has it (empty when it cannot say).
    pub fn hostname() -> String {
        System::host_name().unwrap_or_default()
    }
}

/// Keeps what the previous sample saw. Create one per consumer (e.g. the TUI's worker).
pub struct MetricsSampler {
    /// Only the sandboxes' processes (the host's figures come from `host`); None where
    /// sysinfo cannot read this system.
    processes: Option<System>,
    host: HostSampler,
    state_dir: PathBuf,
    previous: Option<Instant>,
    /// Accumulated CPU milliseconds of each process at the previous sample.
    cpu_ms: HashMap<(u32, u64), u64>,
    cores: usize,
}

impl MetricsSampler {
    pub fn new(state_dir: PathBuf) -> MetricsSampler {
        let host = HostSampler::new();
        let cores = host.cores();
        MetricsSampler {
            processes: System::new().ok(),
            host,
            state_dir,
            previous: None,
            cpu_ms: HashMap::new(),
            cores,
        }
    }

    /// Samples the host and the process trees of `records`. Returns None on the first call:
    /// a CPU figure needs two samples.
    pub fn sample(&mut self, records: &[SandboxRecord]) -> Option<MetricsSnapshot> {
        let host = self.host.sample();
        let (elapsed_ms, sandboxes) = self.sample_trees(records);
        let elapsed = elapsed_ms?;
        let load = System::load_average()
            .map(|l| [l.one, l.five, l.fifteen])
            .unwrap_or_default();
        Some(MetricsSnapshot {
            interval_ms: elapsed.round() as u64,
            host: HostMetrics {
                cores: self.cores,
                cpu_percent: host.cpu_percent.unwrap_or_default(),
                memory_total_bytes: host.memory_total_bytes,
                memory_used_bytes: host.memory_used_bytes,
                memory_available_bytes: host.memory_available_bytes,
                load_average: load,
                disk: disk_of(&self.state_dir),
            },
            sandboxes,
        })
    }

    /// Only the sandboxes' figures, for a front end whose host figures come from
    /// `Deck::host_stats` (the same sampler type): nothing is computed to be thrown away.
    /// None on the first call.
    pub fn sample_sandboxes(
        &mut self,
        records: &[SandboxRecord],
    ) -> Option<HashMap<SandboxId, SandboxMetrics>> {
        let (elapsed_ms, sandboxes) = self.sample_trees(records);
        elapsed_ms.map(|_| sandboxes)
    }

    /// The process trees' figures since the last sample, and that interval (None at first).
    fn sample_trees(
        &mut self,
        records: &[SandboxRecord],
    ) -> (Option<f64>, HashMap<SandboxId, SandboxMetrics>) {
        let now = Instant::now();
        let trees = process_trees(records);
        self.refresh(&trees);
        let elapsed_ms = self
            .previous
            .map(|p| now.duration_since(p).as_secs_f64() * 1e3);
        let sandboxes = self.sandbox_metrics(&trees, elapsed_ms);
        self.previous = Some(now);
        (elapsed_ms, sandboxes)
    }

    /// Refreshes CPU and memory of exactly the processes of `trees`.
    fn refresh(&mut self, trees: &[(&SandboxId, Vec<ProcRef>)]) {
        let pids: Vec<Pid> = trees
            .iter()
            .flat_map(|(_, t)| t.iter().map(|p| Pid::from_u32(p.pid)))
            .collect();
        if let Some(system) = &mut self.processes {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
    }

    /// Each tree's figures since the last sample (none on the first: no interval yet), and
    /// the CPU time of every process seen, for the next one.
    fn sandbox_metrics(
        &mut self,
        trees: &[(&SandboxId, Vec<ProcRef>)],
        elapsed_ms: Option<f64>,
    ) -> HashMap<SandboxId, SandboxMetrics> {
        let mut cpu_ms = HashMap::new();
        let mut sandboxes = HashMap::new();
        for (id, tree) in trees {
            let mut used_ms = 0u64;
            let mut rss = 0u64;
            let mut processes = 0;
            for p in tree {
                let found = self.processes.as_ref();
                let Some(process) = found.and_then(|s| s.process(Pid::from_u32(p.pid))) else {
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
        sandboxes
    }
}

/// The process tree of each record whose launcher is alive, from one scan of /proc.
fn process_trees(records: &[SandboxRecord]) -> Vec<(&SandboxId, Vec<ProcRef>)> {
    let launchers: Vec<(&SandboxId, ProcRef)> = records
        .iter()
        .filter_map(|r| Some((&r.id, r.launcher.filter(ProcRef::is_alive)?)))
        .collect();
    let table = (!launchers.is_empty()).then(ProcessTree::read);
    launchers
        .into_iter()
        .map(|(id, launcher)| {
            let mut tree = vec![launcher];
            tree.extend(table.iter().flat_map(|t| t.descendants(&launcher)));
            (id, tree)
        })
        .collect()
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
