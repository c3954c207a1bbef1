//! What the dashboard header says about the host: its name, CPU and memory. The figures come
//! from [`HostSampler`], the same source as `status --metrics`, so both say the same.

use serde::{Deserialize, Serialize};

use super::Deck;
use crate::metrics::{HostSample, HostSampler, MetricsSampler};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    pub hostname: String,
    /// CPU use since this deck's previous sample, in percent of all CPUs; None on the first.
    pub cpu_percent: Option<f64>,
    pub mem_total_kib: u64,
    pub mem_available_kib: u64,
}

impl HostStats {
    fn of(hostname: String, sample: &HostSample) -> HostStats {
        HostStats {
            hostname,
            cpu_percent: sample.cpu_percent,
            mem_total_kib: sample.memory_total_bytes / 1024,
            mem_available_kib: sample.memory_available_bytes / 1024,
        }
    }
}

impl Deck {
    /// A sampler for this deck's sandboxes; call [`MetricsSampler::sample`] every
    /// `metrics.interval_ms`.
    /// The process's soft limit on open files is raised first (issue 15): the sampler keeps
    /// a `stat` file open per process of the trees, and at 100 sandboxes a soft limit of
    /// 1,024 leaves room for only half of them.
    pub fn metrics_sampler(&self) -> MetricsSampler {
        crate::host::process::raise_open_files_limit();
        MetricsSampler::new(self.paths.state_dir.clone())
    }

    /// A fresh sample; CPU use is measured since the previous call on this deck, so the
    /// first call has none. Fields the host does not expose stay zero.
    pub fn host_stats(&self) -> HostStats {
        // A poisoned lock only means a sample panicked midway: the sampler is still usable.
        let mut sampler = self
            .host_sampler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sample = sampler.get_or_insert_with(HostSampler::new).sample();
        HostStats::of(HostSampler::hostname(), &sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_figures_are_the_samplers_in_kib() {
        let sample = HostSample {
            cpu_percent: Some(25.0),
            memory_total_bytes: 16 << 30,
            memory_used_bytes: 4 << 30,
            memory_available_bytes: 12 << 30,
        };
        let stats = HostStats::of("devbox".into(), &sample);
        assert_eq!(stats.cpu_percent, Some(25.0));
        assert_eq!(stats.mem_total_kib, 16 << 20);
        assert_eq!(stats.mem_available_kib, 12 << 20);
    }

    #[test]
    fn cpu_use_needs_two_samples_and_memory_is_seen_at_once() {
        let mut sampler = HostSampler::new();
        let first = sampler.sample();
        assert_eq!(first.cpu_percent, None);
        assert!(first.memory_total_bytes >= first.memory_available_bytes);
        assert!(first.memory_total_bytes > 0);
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let cpu = sampler.sample().cpu_percent.unwrap();
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    }
}
