//! The workers (D10): agent status, metrics and usage, each on a thread of its own, never on
//! the UI task. Each owns what it keeps between rounds (the debounce tracker, the metrics
//! sampler, the usage index) and reports back as an action, only when it has news.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Local, Utc};
use tokio::sync::mpsc::UnboundedSender;

use super::action::{Action, AgentReading};
use super::live::{ProjectUsage, UsageSummary};
use crate::engine::Deck;
use crate::engine::status::StatusTracker;
use crate::sandbox::SandboxRecord;
use crate::usage::{CostMode, GroupBy, Pricing, Query, UsageIndex};

/// The records the table shows, kept current by the refresh effect for the workers to read.
pub type SharedRecords = Arc<Mutex<Vec<SandboxRecord>>>;

/// How often the usage index reads what was appended to the logs.
const USAGE_REFRESH: Duration = Duration::from_secs(5);
/// Figures that move with the clock alone (the block's projection, today) are recomputed
/// this often even when no log grew.
const USAGE_RECOMPUTE: Duration = Duration::from_secs(60);
/// How finely a sleeping worker checks whether it should end.
const STOP_POLL: Duration = Duration::from_millis(100);

pub struct Workers {
    stop: Arc<AtomicBool>,
}

impl Workers {
    pub fn start(deck: Arc<Deck>, records: SharedRecords, tx: UnboundedSender<Action>) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        // Two readings at least `idle_debounce_ms` apart make working → idle, so sample at
        // that pace (or the monitor's, if faster).
        let status_every = Duration::from_millis(
            deck.config
                .monitor
                .interval_ms
                .min(deck.config.status.idle_debounce_ms)
                .max(250),
        );
        let metrics_every = Duration::from_millis(deck.config.metrics.interval_ms.max(250));
        spawn("status", &stop, status_every, {
            let (deck, records, tx) = (Arc::clone(&deck), Arc::clone(&records), tx.clone());
            let mut tracker = StatusTracker::new();
            let mut last = None;
            move || {
                let records = snapshot(&records);
                let readings: Vec<_> = records
                    .iter()
                    .filter(|r| r.runs_agent())
                    .map(|r| AgentReading {
                        name: r.name.to_string(),
                        sandbox: r.state,
                        assessment: tracker.sample(&deck, r).1,
                    })
                    .collect();
                if last.as_ref() == Some(&readings) {
                    return true;
                }
                last = Some(readings.clone());
                tx.send(Action::AgentsSampled(readings)).is_ok()
            }
        });
        spawn("metrics", &stop, metrics_every, {
            let (records, tx) = (Arc::clone(&records), tx.clone());
            let mut sampler = deck.metrics_sampler();
            move || match sampler.sample(&snapshot(&records)) {
                Some(sample) => tx.send(Action::MetricsSampled(sample.sandboxes)).is_ok(),
                None => !tx.is_closed(),
            }
        });
        spawn("usage", &stop, USAGE_REFRESH, {
            let mut usage = UsageWorker::new(&deck);
            move || match usage.step() {
                Some(summary) => tx.send(Action::UsageUpdated(Box::new(summary))).is_ok(),
                None => !tx.is_closed(),
            }
        });
        Workers { stop }
    }

    /// Asks every worker to end. They are not waited for: one may be in the middle of a
    /// refresh, and nothing they hold needs finishing.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn snapshot(records: &SharedRecords) -> Vec<SandboxRecord> {
    records.lock().map(|r| r.clone()).unwrap_or_default()
}

/// Runs `step` now and then every `period` until it returns false or `stop` is set.
fn spawn(
    name: &str,
    stop: &Arc<AtomicBool>,
    period: Duration,
    mut step: impl FnMut() -> bool + Send + 'static,
) {
    let stop = Arc::clone(stop);
    let run = move || {
        while !stop.load(Ordering::Acquire) {
            let started = Instant::now();
            if !step() {
                break;
            }
            while started.elapsed() < period && !stop.load(Ordering::Acquire) {
                std::thread::sleep(STOP_POLL.min(period.saturating_sub(started.elapsed())));
            }
        }
    };
    // Without a thread there are no live figures, but the deck still works.
    if let Err(e) = std::thread::Builder::new()
        .name(format!("deck-{name}"))
        .spawn(run)
    {
        tracing::warn!("starting the {name} worker failed: {e}");
    }
}

/// The usage index and what it last reported.
struct UsageWorker {
    index: Option<UsageIndex>,
    roots: Vec<PathBuf>,
    cache: PathBuf,
    pricing: Pricing,
    cost_mode: CostMode,
    computed_at: Option<Instant>,
    last: Option<UsageSummary>,
}

impl UsageWorker {
    fn new(deck: &Deck) -> UsageWorker {
        UsageWorker {
            // Opened on the worker's first round: loading the cache is not the UI's work.
            index: None,
            roots: crate::usage::roots_from_env(),
            cache: deck.paths.usage_cache(),
            // The config was checked when it loaded; a bad override leaves the shipped prices.
            pricing: deck.pricing().unwrap_or_else(|_| Pricing::builtin()),
            cost_mode: deck.config.usage.cost_mode,
            computed_at: None,
            last: None,
        }
    }

    /// One refresh (only new bytes are read); the figures when they changed.
    fn step(&mut self) -> Option<UsageSummary> {
        let (roots, cache) = (&self.roots, &self.cache);
        let index = self
            .index
            .get_or_insert_with(|| UsageIndex::open(roots.clone(), Some(cache.clone())));
        let stats = index.refresh();
        // The cache only saves the next start some time.
        if let Err(e) = index.save() {
            tracing::debug!(
                "saving the usage cache failed: {}",
                crate::error::report(&e)
            );
        }
        let grew = stats.new_entries > 0 || stats.files_reread > 0 || stats.files_removed > 0;
        let stale = self
            .computed_at
            .is_none_or(|t| t.elapsed() >= USAGE_RECOMPUTE);
        if !grew && !stale {
            return None;
        }
        self.computed_at = Some(Instant::now());
        let summary = summarize(index, &self.pricing, self.cost_mode);
        if self.last.as_ref() == Some(&summary) {
            return None;
        }
        self.last = Some(summary.clone());
        Some(summary)
    }
}

/// All-time totals per working directory (with their sessions), today's total and the
/// active block, from three passes over the deduplicated entries.
pub fn summarize(index: &UsageIndex, pricing: &Pricing, cost_mode: CostMode) -> UsageSummary {
    let query = |by| {
        let mut q = Query::new(by);
        q.cost_mode = cost_mode;
        q.now_ms = Utc::now().timestamp_millis();
        q
    };
    let by_project = index.report(pricing, &query(GroupBy::Project));
    let by_session = index.report(pricing, &query(GroupBy::Session));
    let mut today = query(GroupBy::Day);
    today.since_ms =
        crate::engine::usage::parse_since(&Local::now().format("%Y-%m-%d").to_string()).ok();
    let today = index.report(pricing, &today);
    let mut projects: Vec<ProjectUsage> = by_project
        .rows
        .into_iter()
        .map(|row| ProjectUsage {
            cwd: row.key,
            totals: row.totals,
            sessions: 0,
            last_seen: row.last_seen,
        })
        .collect();
    let mut sessions: HashMap<String, u64> = HashMap::new();
    for session in by_session.rows.into_iter().filter(|s| s.totals.entries > 0) {
        if let Some(cwd) = session.project {
            *sessions.entry(cwd).or_default() += 1;
        }
    }
    for p in &mut projects {
        p.sessions = sessions.remove(&p.cwd).unwrap_or(0);
    }
    // A session's first directory always has entries, so nothing should be left here.
    projects.extend(sessions.into_iter().map(|(cwd, n)| ProjectUsage {
        cwd,
        sessions: n,
        ..ProjectUsage::default()
    }));
    UsageSummary {
        projects,
        today: today.totals,
        block: by_project.active_block,
        limit_resets_at: by_project.limit_resets_at,
        skipped_files: by_project.skipped_files.len(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn line(session: &str, cwd: &str, id: &str, ts: &str, input: u64, output: u64) -> String {
        let v = serde_json::json!({
            "type": "assistant",
            "cwd": cwd,
            "sessionId": session,
            "timestamp": ts,
            "requestId": format!("req-{id}"),
            "message": {
                "id": id,
                "model": "claude-sonnet-4-5-20250929",
                "usage": {
                    "input_tokens": input,
                    "output_tokens": output,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0
                }
            }
        });
        serde_json::to_string(&v).unwrap() + "\n"
    }

    #[test]
    fn the_summary_has_each_directorys_totals_and_sessions_and_todays_total() {
        let root = tempfile::tempdir().unwrap();
        let now = Utc::now().to_rfc3339();
        let old = "2025-01-01T10:00:00Z";
        let files = [
            (
                "-src-api/s1.jsonl",
                line("s1", "/src/api", "m1", old, 100, 10)
                    + &line("s1", "/src/api/sub", "m2", old, 200, 20),
            ),
            (
                "-src-api/s2.jsonl",
                line("s2", "/src/api", "m3", &now, 1000, 100),
            ),
            ("-src-web/s3.jsonl", line("s3", "/src/web", "m4", old, 5, 5)),
        ];
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut index = UsageIndex::open(vec![root.path().to_owned()], None);
        index.refresh();
        let summary = summarize(&index, &Pricing::builtin(), CostMode::Calculate);
        let api = summary.for_project(Path::new("/src/api"));
        assert_eq!(api.totals.input_tokens, 1300);
        assert_eq!(api.totals.output_tokens, 130);
        assert_eq!(api.totals.entries, 3);
        // Both sessions started in /src/api itself; /src/api/sub started none.
        assert_eq!(api.sessions, 2);
        let web = summary.for_project(Path::new("/src/web"));
        assert_eq!((web.totals.total_tokens, web.sessions), (10, 1));
        // Today is the one line written now; so is the active block.
        assert_eq!(summary.today.input_tokens, 1000);
        assert_eq!(summary.today.output_tokens, 100);
        let block = summary.block.expect("a block active now");
        assert_eq!(block.totals.total_tokens, 1100);
        assert!(summary.today.cost_usd > 0.0 && api.totals.cost_usd > summary.today.cost_usd);
    }
}
