//! Usage through the Deck: the index over this user's Claude logs, with its cache in the
//! state dir, reports that name sandboxes, and the live summary a dashboard shows (kept
//! current by [`UsageTracker`], which reads only what the logs grew by).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::Deck;
use super::transcript_watch::{Changes, TranscriptWatch};
use crate::error::{DeckError, Result};
use crate::usage::store::RefreshStats;
use crate::usage::{
    Block, CostMode, GroupBy, Pricing, Query, Report, Totals, UsageIndex, cwd_in_project,
    roots_from_env,
};

/// Figures that move with the clock alone (the block's projection, today) are recomputed
/// this often even when no log grew.
const USAGE_RECOMPUTE: Duration = Duration::from_secs(60);
/// With inotify saying which transcripts grew, the roots are still walked this often: the
/// safety net for anything it did not say.
const WALK_EVERY: Duration = Duration::from_secs(300);

/// Usage from the local Claude logs: all time per working directory, today, the block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// The usage index a long-lived front end keeps open, and the summary it last computed.
/// Between two walks of the roots it reads only the transcripts inotify said were written
/// ([`TranscriptWatch`]).
pub struct UsageTracker {
    index: Option<UsageIndex>,
    pricing: Pricing,
    cost_mode: CostMode,
    computed_at: Option<Instant>,
    last: UsageSummary,
    watch: Option<TranscriptWatch>,
    walked_at: Option<Instant>,
    last_refresh: RefreshStats,
}

impl UsageTracker {
    pub fn new(deck: &Deck) -> UsageTracker {
        UsageTracker {
            // Opened on the first refresh: loading the cache is not the caller's work.
            index: None,
            // The config was checked when it loaded; a bad override leaves the shipped prices.
            pricing: deck.pricing().unwrap_or_else(|_| Pricing::builtin()),
            cost_mode: deck.config.usage.cost_mode,
            computed_at: None,
            last: UsageSummary::default(),
            watch: None,
            walked_at: None,
            last_refresh: RefreshStats::default(),
        }
    }

    /// What the last refresh read (for tests and benchmarks).
    pub fn last_refresh(&self) -> &RefreshStats {
        &self.last_refresh
    }

    /// Reads what the logs grew by: the files the watch names, or a walk of the roots when
    /// there is no watch to trust or the safety net is due (the watch is made again first,
    /// so nothing written during the walk is missed).
    fn read_new(&mut self, deck: &Deck) -> RefreshStats {
        let index = self.index.get_or_insert_with(|| deck.usage_index());
        let due = self.walked_at.is_none_or(|t| t.elapsed() >= WALK_EVERY);
        let changes = match (&self.watch, due) {
            (Some(watch), false) => watch.take(),
            _ => Changes::Walk,
        };
        match changes {
            Changes::Paths(paths) if paths.is_empty() => RefreshStats::default(),
            Changes::Paths(paths) => index.refresh_paths(&paths),
            Changes::Walk => {
                self.watch = None;
                self.watch = TranscriptWatch::new(index.roots(), deck.wakeups());
                self.walked_at = Some(Instant::now());
                index.refresh()
            }
        }
    }

    /// Reads what the logs grew by and returns the summary, recomputed when they grew or
    /// the last one is old.
    pub fn refresh(&mut self, deck: &Deck) -> &UsageSummary {
        let stats = self.read_new(deck);
        let index = self.index.get_or_insert_with(|| deck.usage_index());
        // The cache only saves the next start some time (and is written only when it changed).
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
        if grew || stale {
            self.computed_at = Some(Instant::now());
            self.last = summarize(index, &self.pricing, self.cost_mode);
        }
        self.last_refresh = stats;
        &self.last
    }

    /// Reads what the logs grew by, as [`UsageTracker::refresh`] does, and answers `query`
    /// from the kept index: what `usage` asks the engine, without loading the cache or
    /// walking the roots again.
    pub fn report(&mut self, deck: &Deck, query: &Query) -> Result<Report> {
        let stats = self.read_new(deck);
        let index = self.index.get_or_insert_with(|| deck.usage_index());
        if let Err(e) = index.save() {
            tracing::debug!(
                "saving the usage cache failed: {}",
                crate::error::report(&e)
            );
        }
        if stats.new_entries > 0 || stats.files_reread > 0 || stats.files_removed > 0 {
            // What grew is not in the summary yet: the next refresh recomputes it.
            self.computed_at = None;
        }
        deck.named_report(index, query)
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
    today.since_ms = parse_since(&Local::now().format("%Y-%m-%d").to_string()).ok();
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

impl Deck {
    /// The usage index over every Claude root, loaded from the cache in the state dir.
    pub fn usage_index(&self) -> UsageIndex {
        UsageIndex::open(roots_from_env(), Some(self.paths.usage_cache()))
    }

    /// The shipped prices with the user's `[usage.prices]` over them.
    pub fn pricing(&self) -> Result<Pricing> {
        Pricing::with_overrides(&self.config.usage.prices)
    }

    /// A query for one sandbox's project (or every log when `name` is None).
    pub fn usage_query(
        &self,
        name: Option<&str>,
        since: Option<&str>,
        by: GroupBy,
    ) -> Result<Query> {
        let mut query = Query::new(by);
        query.cost_mode = self.config.usage.cost_mode;
        if let Some(name) = name {
            query.project = Some(self.show(name)?.project_dir.as_path().to_owned());
        }
        query.since_ms = since.map(parse_since).transpose()?;
        Ok(query)
    }

    /// Refreshes the index (reading only new bytes), saves its cache, and reports. When
    /// nothing changed since the cache was written and the same query was answered from it
    /// before, that answer is printed again (the cache keeps the last few).
    pub fn usage_report(&self, index: &mut UsageIndex, query: &Query) -> Result<Report> {
        index.refresh_deferred();
        // The cache only saves time: a state dir that cannot be written costs a full read
        // next time, not this report.
        if let Err(e) = index.save() {
            tracing::debug!(
                "saving the usage cache failed: {}",
                crate::error::report(&e)
            );
        }
        self.named_report(index, query)
    }

    /// The report on `index` as it is (its cache saved), its project rows naming their
    /// sandboxes: the one kept for this query when nothing changed since it was made, else
    /// made now (and kept, see [`UsageIndex::remember`]).
    pub fn named_report(&self, index: &mut UsageIndex, query: &Query) -> Result<Report> {
        let pricing = self.pricing()?;
        let key = memo_key(query, &pricing);
        let started = Instant::now();
        let report = match index.remembered(&key, query.now_ms) {
            Some(report) => report,
            None => {
                index.ensure_entries();
                let report = index.report(&pricing, query);
                if let Err(e) = index.remember(key, &report, query.now_ms) {
                    tracing::debug!(
                        "keeping the usage report failed: {}",
                        crate::error::report(&e)
                    );
                }
                report
            }
        };
        tracing::debug!("usage report {:?}", started.elapsed());
        self.name_rows(report, query)
    }

    /// Project rows name the sandboxes registered for their directory.
    fn name_rows(&self, mut report: Report, query: &Query) -> Result<Report> {
        if query.by == GroupBy::Project {
            let records = self.registry.load()?;
            for row in &mut report.rows {
                let names: Vec<&str> = records
                    .iter()
                    .filter(|r| r.project_dir.as_path().to_str() == Some(row.key.as_str()))
                    .map(|r| r.name.as_str())
                    .collect();
                if !names.is_empty() {
                    row.sandbox = Some(names.join(","));
                }
            }
        }
        Ok(report)
    }
}

/// What a report depends on besides the logs: the query, the time zone days are cut in,
/// and the prices. Two runs with the same key over the same logs make the same report.
fn memo_key(query: &Query, pricing: &Pricing) -> String {
    use std::hash::{Hash, Hasher};
    let mut prices = std::collections::hash_map::DefaultHasher::new();
    format!("{pricing:?}").hash(&mut prices);
    format!(
        "{:?}|{:?}|{:?}|{:?}|local={}|TZ={:?}|offset={}|prices={:x}",
        query.project,
        query.since_ms,
        query.by,
        query.cost_mode,
        query.local_days,
        std::env::var_os("TZ"),
        Local::now().offset().local_minus_utc(),
        prices.finish()
    )
}

/// `YYYY-MM-DD` or `YYYYMMDD`, as local midnight in unix milliseconds.
pub fn parse_since(text: &str) -> Result<i64> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y%m%d"))
        .map_err(|_| DeckError::InvalidArgument {
            what: "--since".into(),
            why: format!("{text:?} is not a date: use YYYY-MM-DD"),
        })?;
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    Local
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| DeckError::InvalidArgument {
            what: "--since".into(),
            why: format!("{text} has no local midnight"),
        })
}

#[cfg(test)]
mod tests {
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
        let block = summary.block.clone().expect("a block active now");
        assert_eq!(block.totals.total_tokens, 1100);
        assert!(summary.today.cost_usd > 0.0 && api.totals.cost_usd > summary.today.cost_usd);
        // What a remote engine would send reads back as the same figures.
        let wire = serde_json::to_string(&summary).unwrap();
        let back: UsageSummary = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.projects.len(), summary.projects.len());
        assert_eq!(back.today.input_tokens, 1000);
        let block = back.block.expect("the block");
        assert_eq!(block.totals.total_tokens, 1100);
    }

    /// When the messages of [`write_old_transcripts`] were sent.
    const OLD: &str = "2025-01-01T10:00:00Z";

    /// `n` transcripts of one old message each, `-p{i}/s{i}.jsonl` under `root`.
    fn write_old_transcripts(root: &Path, n: usize) {
        for i in 0..n {
            let path = root.join(format!("-p{i}/s{i}.jsonl"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = line(
                &format!("s{i}"),
                "/p",
                &format!("m{i}"),
                "2025-01-01T10:00:00Z",
                1,
                1,
            );
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn the_watch_names_the_grown_transcript_and_only_it_is_read() {
        use crate::engine::transcript_watch::{Changes, TranscriptWatch};
        use crate::engine::wake::{Topic, Wakeups};
        let root = tempfile::tempdir().unwrap();
        write_old_transcripts(root.path(), 50);
        let mut index = UsageIndex::open(vec![root.path().to_owned()], None);
        let wakeups = Wakeups::default();
        let watch = TranscriptWatch::new(&[root.path().to_owned()], &wakeups).unwrap();
        assert_eq!(index.refresh().files, 50);
        let _ = watch.take();
        let before = wakeups.count(Topic::Usage);
        let grown = root.path().join("-p7/s7.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&grown)
            .unwrap();
        use std::io::Write;
        file.write_all(line("s7", "/p", "new", OLD, 5, 5).as_bytes())
            .unwrap();
        drop(file);
        // A new project directory made after the watch began, with its first transcript.
        let fresh = root.path().join("-new/s.jsonl");
        std::fs::create_dir_all(fresh.parent().unwrap()).unwrap();
        std::fs::write(&fresh, line("s", "/new", "n1", OLD, 2, 2)).unwrap();
        let mut paths = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match watch.take() {
                Changes::Paths(p) => paths.extend(p),
                Changes::Walk => panic!("the watch asked for a walk"),
            }
            if paths.contains(&grown)
                && paths.iter().any(|p| p.starts_with(fresh.parent().unwrap()))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            wakeups.count(Topic::Usage) > before,
            "the usage worker was woken"
        );
        assert!(paths.contains(&grown), "{paths:?}");
        let stats = index.refresh_paths(&paths);
        assert_eq!(stats.new_entries, 2, "{stats:?}");
        assert!(
            stats.files <= 3,
            "only what was named is looked at: {stats:?}"
        );
        let summary = summarize(&index, &Pricing::builtin(), CostMode::Calculate);
        assert_eq!(
            summary.for_project(Path::new("/new")).totals.input_tokens,
            2
        );
        assert_eq!(summary.for_project(Path::new("/p")).totals.input_tokens, 55);
        // Reading our own files is no change: no wake-up, nothing pending. (What the writes
        // above still have on their way is let in first.)
        std::thread::sleep(Duration::from_millis(300));
        let _ = watch.take();
        let quiet = wakeups.count(Topic::Usage);
        let _ = std::fs::read(&grown).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(watch.take(), Changes::Paths(Default::default()));
        assert_eq!(wakeups.count(Topic::Usage), quiet);
    }

    #[test]
    fn a_named_path_that_is_gone_or_below_a_symlink_reads_nothing() {
        let root = tempfile::tempdir().unwrap();
        write_old_transcripts(root.path(), 5);
        let mut index = UsageIndex::open(vec![root.path().to_owned()], None);
        index.refresh();
        // A removed transcript named by the watch leaves the index; a path below a symlink
        // to a directory outside the root is passed over.
        std::fs::remove_file(root.path().join("-p3/s3.jsonl")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(
            outside.path().join("x.jsonl"),
            line("x", "/x", "x1", OLD, 9, 9),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("-link")).unwrap();
        let named = [
            root.path().join("-p3/s3.jsonl"),
            root.path().join("-link/x.jsonl"),
        ];
        let stats = index.refresh_paths(&named.into_iter().collect());
        assert_eq!(
            (stats.files_removed, stats.new_entries),
            (1, 0),
            "{stats:?}"
        );
        let summary = summarize(&index, &Pricing::builtin(), CostMode::Calculate);
        assert_eq!(summary.for_project(Path::new("/x")).totals.entries, 0);
        assert_eq!(summary.for_project(Path::new("/p")).totals.input_tokens, 4);
    }

    #[test]
    fn since_takes_both_date_forms_and_refuses_anything_else() {
        let a = parse_since("2025-06-01").unwrap();
        assert_eq!(parse_since("20250601").unwrap(), a);
        let next = parse_since("2025-06-02").unwrap();
        assert!(
            (next - a - 86_400_000).abs() <= 3_600_000,
            "one day apart (DST aside)"
        );
        for bad in ["2025-13-01", "yesterday", "", "2025/06/01"] {
            assert_eq!(
                parse_since(bad).unwrap_err().kind(),
                "invalid_argument",
                "{bad}"
            );
        }
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
