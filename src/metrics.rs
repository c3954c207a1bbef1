//! CPU and memory per sandbox (its launcher's process tree) and for the host, from sysinfo.
//! [`HostSampler`] is the one source of the host's CPU and memory figures: `status --metrics`
//! and the TUI header (through [`crate::engine::host_stats`]) both read it.
//!
//! Only the processes of the sandboxes asked about are read, never the whole process table:
//! their trees are followed between samples ([`trees`]), with a full walk of `/proc` only
//! when a sandbox came or went and as a slow safety net. CPU is CPU time over wall time
//! between two samples, so nothing is reported before two samples exist.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::System;

use crate::host::process::ProcRef;
use crate::sandbox::{SandboxId, SandboxRecord};

pub mod trees;

use trees::Trees;

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
    host: HostSampler,
    state_dir: PathBuf,
    previous: Option<Instant>,
    /// The sandboxes' process trees, followed between samples.
    trees: Trees,
    /// Accumulated CPU ticks of each process at the previous sample, and the map being
    /// filled for the next one (swapped each sample: no allocation once warm).
    cpu_ticks: HashMap<ProcRef, u64>,
    next_ticks: HashMap<ProcRef, u64>,
    cores: usize,
    /// Clock ticks per second and bytes per page, from the kernel.
    ticks_per_second: f64,
    page_bytes: u64,
}

impl MetricsSampler {
    pub fn new(state_dir: PathBuf) -> MetricsSampler {
        let host = HostSampler::new();
        let cores = host.cores();
        let sysconf = |name| nix::unistd::sysconf(name).ok().flatten().filter(|v| *v > 0);
        MetricsSampler {
            host,
            state_dir,
            previous: None,
            trees: Trees::default(),
            cpu_ticks: HashMap::new(),
            next_ticks: HashMap::new(),
            cores,
            ticks_per_second: sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100) as f64,
            page_bytes: sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096) as u64,
        }
    }

    /// How many full walks of `/proc` this sampler took (see [`trees`]).
    pub fn full_walks(&self) -> u64 {
        self.trees.walks()
    }

    /// How many `stat` files it keeps open between samples: one per process in the trees.
    pub fn kept_files(&self) -> usize {
        self.trees.kept_files()
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
        self.trees.refresh(records, now);
        let elapsed_ms = self
            .previous
            .map(|p| now.duration_since(p).as_secs_f64() * 1e3);
        let sandboxes = self.sandbox_metrics(elapsed_ms);
        self.previous = Some(now);
        (elapsed_ms, sandboxes)
    }

    /// Each tree's figures since the last sample (none on the first: no interval yet), and
    /// the CPU time of every process seen, for the next one.
    fn sandbox_metrics(&mut self, elapsed_ms: Option<f64>) -> HashMap<SandboxId, SandboxMetrics> {
        self.next_ticks.clear();
        let mut sandboxes = HashMap::new();
        for tree in self.trees.trees() {
            let mut used_ticks = 0u64;
            let mut rss_pages = 0u64;
            for member in &tree.members {
                rss_pages += member.rss_pages;
                // A process new since the last sample spent all of its CPU time within it.
                let before = self.cpu_ticks.get(&member.proc).copied().unwrap_or(0);
                used_ticks += member.cpu_ticks.saturating_sub(before);
                self.next_ticks.insert(member.proc, member.cpu_ticks);
            }
            if let Some(elapsed) = elapsed_ms.filter(|e| *e > 0.0) {
                let used_ms = used_ticks as f64 * 1e3 / self.ticks_per_second;
                let of_core = used_ms / elapsed * 100.0;
                sandboxes.insert(
                    tree.id.clone(),
                    SandboxMetrics {
                        processes: tree.members.len(),
                        cpu_percent_of_core: of_core,
                        cpu_percent_of_host: of_core / self.cores as f64,
                        rss_bytes: rss_pages * self.page_bytes,
                    },
                );
            }
        }
        std::mem::swap(&mut self.cpu_ticks, &mut self.next_ticks);
        sandboxes
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

    /// A launcher (`sh`) that starts a child when told and reaps it when it is killed.
    struct Launcher {
        child: std::process::Child,
        lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    }

    impl Launcher {
        fn start() -> Launcher {
            use std::io::BufRead;
            use std::process::{Command, Stdio};
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    "read go; sleep 300 & echo $!; wait; echo reaped; read end",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
            Launcher { child, lines }
        }

        fn say(&mut self) -> String {
            use std::io::Write;
            writeln!(self.child.stdin.as_mut().unwrap(), "go").unwrap();
            self.lines.next().unwrap().unwrap()
        }
    }

    impl Drop for Launcher {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn a_process_started_after_the_walk_is_counted_and_one_killed_leaves_without_a_walk() {
        let dir = tempfile::tempdir().unwrap();
        let mut launcher = Launcher::start();
        let mut record = SandboxRecord::example("trees", dir.path());
        record.launcher = ProcRef::of(launcher.child.id());
        let records = [record.clone()];
        let mut sampler = MetricsSampler::new(dir.path().to_owned());
        assert!(sampler.sample_sandboxes(&records).is_none());
        assert_eq!(sampler.full_walks(), 1);
        let processes =
            |s: &mut MetricsSampler| s.sample_sandboxes(&records).unwrap()[&record.id].processes;
        assert_eq!(processes(&mut sampler), 1, "only the launcher");
        // A child started after the walk: found among the pids handed out since.
        let sleeper: u32 = launcher.say().parse().unwrap();
        assert_eq!(processes(&mut sampler), 2, "the sleeper is in the tree");
        let metrics = sampler.sample_sandboxes(&records).unwrap()[&record.id].clone();
        assert!(metrics.rss_bytes > 0, "{metrics:?}");
        // Killed (and reaped): gone from the tree.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sleeper as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert_eq!(launcher.lines.next().unwrap().unwrap(), "reaped");
        assert_eq!(processes(&mut sampler), 1, "the killed sleeper left");
        assert_eq!(
            sampler.full_walks(),
            1,
            "all of it without walking /proc again"
        );
        // A launcher that ended: its sandbox has no figures (a walk, as the set changed).
        drop(launcher);
        assert!(sampler.sample_sandboxes(&records).unwrap().is_empty());
    }

    /// Set in the child that the fd-limit test below starts with a soft limit of 256.
    const LOW_LIMIT_CHILD: &str = "SANDBOX_DECK_TEST_LOW_FD_LIMIT";

    #[test]
    fn the_soft_fd_limit_is_raised_and_every_stat_file_of_300_processes_kept() {
        use std::os::unix::process::CommandExt as _;
        if std::env::var_os(LOW_LIMIT_CHILD).is_some() {
            return kept_with_a_low_limit();
        }
        let limit = crate::host::process::open_files_limit().unwrap();
        if limit.rlim_max < 2048 {
            eprintln!(
                "skipped: the hard limit on open files is {}",
                limit.rlim_max
            );
            return;
        }
        // This very test, alone in a child whose soft limit is 256 (a quarter: 64 files).
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "metrics::tests::the_soft_fd_limit_is_raised_and_every_stat_file_of_300_processes_kept",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(LOW_LIMIT_CHILD, "1");
        // SAFETY: setrlimit is async-signal-safe; it reads a struct on the child's stack.
        unsafe {
            child.pre_exec(move || {
                let low = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &low) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = child.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "the child ran the test: {text}");
    }

    /// The child's part: a launcher with 300 sleeping children, sampled by the engine's
    /// sampler ([`crate::engine::Deck::metrics_sampler`] raises the limit first).
    fn kept_with_a_low_limit() {
        let soft = || crate::host::process::open_files_limit().map_or(0, |l| l.rlim_cur);
        assert_eq!(soft(), 256, "started low");
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::paths::Paths {
            state_dir: dir.path().join("state"),
            config_dir: dir.path().join("config"),
            runtime_dir: dir.path().join("run"),
        };
        let deck = crate::engine::Deck::with(paths, crate::config::Config::defaults()).unwrap();
        let launcher = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 300 ]; do sleep 300 & i=$((i+1)); done; echo ready; read end",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        /// Ends the launcher and its sleeps however the test ends (they hold our stdout).
        struct Tree(std::process::Child);
        impl Drop for Tree {
            fn drop(&mut self) {
                if let Some(me) = ProcRef::of(self.0.id()) {
                    for child in me.descendants() {
                        child.signal(nix::sys::signal::Signal::SIGKILL);
                    }
                }
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut launcher = Tree(launcher);
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(launcher.0.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        let mut record = SandboxRecord::example("many", dir.path());
        record.launcher = ProcRef::of(launcher.0.id());
        let records = [record.clone()];
        // Negative control: a sampler under the low limit keeps a quarter of it (the rest
        // of the tree read by opening each file every sample).
        let mut low = MetricsSampler::new(dir.path().to_owned());
        low.sample_sandboxes(&records);
        let low_processes = low.sample_sandboxes(&records).unwrap()[&record.id].processes;
        assert_eq!((low_processes, low.kept_files()), (301, 64));
        drop(low);
        let mut sampler = deck.metrics_sampler();
        assert!(soft() > 256, "raised: {}", soft());
        assert!(sampler.sample_sandboxes(&records).is_none());
        let processes = sampler.sample_sandboxes(&records).unwrap()[&record.id].processes;
        let kept = sampler.kept_files();
        drop(launcher);
        assert_eq!(processes, 301, "the launcher and its 300 sleeps");
        assert_eq!(kept, 301, "every one's stat file kept open");
    }

    #[test]
    fn a_process_new_in_a_tree_costs_one_open_and_a_quiet_tree_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut launcher = Launcher::start();
        let mut record = SandboxRecord::example("opens", dir.path());
        record.launcher = ProcRef::of(launcher.child.id());
        let records = [record.clone()];
        let mut trees = Trees::default();
        let now = Instant::now();
        trees.refresh(&records, now);
        assert_eq!(trees.walks(), 1);
        // Quiet: the kept files read in place, no path opened (but the pids other processes
        // of the host took meanwhile, each probed once).
        let (before, from) = (trees.opened(), trees.last_pid().unwrap());
        trees.refresh(&records, now);
        let handed_out = u64::from(trees.last_pid().unwrap() - from);
        assert_eq!(trees.opened() - before, handed_out, "only new pids opened");
        // A child: its pid probed once, and the file of that probe kept (no status file
        // read, no second open); every other pid handed out meanwhile probed once.
        let sleeper: u32 = launcher.say().parse().unwrap();
        let (before, from) = (trees.opened(), trees.last_pid().unwrap());
        trees.refresh(&records, now);
        let handed_out = u64::from(trees.last_pid().unwrap() - from);
        let members: Vec<u32> = trees.trees()[0]
            .members
            .iter()
            .map(|m| m.proc.pid)
            .collect();
        assert!(members.contains(&sleeper), "{members:?}");
        assert_eq!(trees.kept_files(), 2, "the launcher's and the sleeper's");
        assert_eq!(
            trees.opened() - before,
            handed_out,
            "one open per pid handed out, the sleeper's included"
        );
        assert_eq!(trees.walks(), 1, "no walk");
    }

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
