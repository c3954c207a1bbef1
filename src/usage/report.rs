//! Views over the deduplicated entries: totals per project, session, model, day or block.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Local, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::blocks::{self, Block};
use super::jsonl::{LimitNotice, RawEntry};
use super::pricing::{ModelPrice, Pricing};
use super::store::UsageIndex;
use super::{Tokens, Totals, cwd_in_project, encode_project_dir};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Per project directory (the `cwd` of the log lines): per sandbox.
    #[default]
    Project,
    Session,
    Day,
    Model,
    Block,
}

/// Where a cost comes from: `calculate` from tokens and prices (the default), `display`
/// from the `costUSD` the log line carries (0 without one), `auto` the line's when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostMode {
    Auto,
    #[default]
    Calculate,
    Display,
}

#[derive(Debug, Clone)]
pub struct Query {
    /// Only lines whose `cwd` is this directory or below it.
    pub project: Option<PathBuf>,
    /// Only entries at or after this time.
    pub since_ms: Option<i64>,
    pub by: GroupBy,
    pub cost_mode: CostMode,
    pub now_ms: i64,
    /// Days in the local time zone (as people read them) rather than UTC.
    pub local_days: bool,
}

impl Query {
    pub fn new(by: GroupBy) -> Query {
        Query {
            project: None,
            since_ms: None,
            by,
            cost_mode: CostMode::Calculate,
            now_ms: Utc::now().timestamp_millis(),
            local_days: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The project dir, session id, model, date (YYYY-MM-DD) or block start.
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Project rows: the sandboxes registered for this project dir.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Session rows: the project the session ran in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Block rows: the block itself (active flag, burn rate, projection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<Block>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownModel {
    pub model: String,
    pub entries: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub by: GroupBy,
    pub cost_mode: CostMode,
    pub totals: Totals,
    pub rows: Vec<Row>,
    /// Models without a price: their cost counts as $0.
    pub unknown_models: Vec<UnknownModel>,
    pub malformed_lines: u64,
    /// Log files read, and the `projects/` directories searched for them.
    pub files: usize,
    pub roots: Vec<PathBuf>,
    /// The current 5-hour block, when one is active.
    pub active_block: Option<Block>,
    /// When Claude said the usage limit resets (the latest notice in the logs).
    pub limit_resets_at: Option<DateTime<Utc>>,
    /// Files under the roots that were not read (symlinks, FIFOs, devices, files too large,
    /// the time budget), with why: never fatal, always said.
    pub skipped_files: Vec<crate::untrusted::SkippedFile>,
}

/// A row's key. Model, session and cwd strings are interned by the index, so a text key is
/// the string's address: hashing a pointer instead of a path is most of a report's speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Text(usize),
    Day(NaiveDate),
}

fn text_key(s: &Arc<str>) -> Key {
    Key::Text(Arc::as_ptr(s) as *const u8 as usize)
}

/// A multiplicative hasher for small keys (addresses, dates) that come from us, not from
/// anyone who could choose them to collide.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

struct Acc {
    name: Option<Arc<str>>,
    totals: Totals,
    first: i64,
    last: i64,
    project: Option<Arc<str>>,
}

impl Acc {
    fn new(name: Option<Arc<str>>) -> Acc {
        Acc {
            name,
            totals: Totals::default(),
            first: i64::MAX,
            last: i64::MIN,
            project: None,
        }
    }
}

/// What the entries in scope add up to, before rows are made of it.
#[derive(Default)]
struct Tally {
    totals: Totals,
    groups: FastMap<Key, Acc>,
    unknown: BTreeMap<Arc<str>, UnknownModel>,
    /// (time, tokens, cost) of every entry, for the 5-hour blocks.
    timeline: Vec<(i64, Tokens, f64)>,
}

/// What the files in scope say besides their entries.
struct FileTally {
    malformed: u64,
    files: usize,
    limit: Option<LimitNotice>,
}

impl UsageIndex {
    /// Answers `query` from the deduplicated entries.
    pub fn report(&self, pricing: &Pricing, query: &Query) -> Report {
        let mut tally = self.tally(pricing, query);
        let files = self.tally_files(query, &mut tally);
        let all_blocks = blocks::build(&mut tally.timeline, query.now_ms);
        let active_block = all_blocks.last().filter(|b| b.active).cloned();
        let mut rows: Vec<Row> = if query.by == GroupBy::Block {
            all_blocks.into_iter().map(block_row).collect()
        } else {
            tally.groups.into_iter().map(group_row).collect()
        };
        sort_rows(query.by, &mut rows);
        Report {
            by: query.by,
            cost_mode: query.cost_mode,
            totals: tally.totals,
            rows,
            unknown_models: tally.unknown.into_values().collect(),
            malformed_lines: files.malformed,
            files: files.files,
            skipped_files: self.skipped_files().to_vec(),
            roots: self.roots().to_vec(),
            active_block,
            limit_resets_at: files
                .limit
                .and_then(|l| DateTime::from_timestamp(l.resets_at, 0)),
        }
    }

    /// The report made earlier for `key` (see `Deck::usage_report`) from exactly what this
    /// index holds (nothing found changed since the cache was written), when one was kept.
    /// What the last refresh skipped is this refresh's, not the kept one's.
    pub fn remembered(&self, key: &str, now_ms: i64) -> Option<Report> {
        let mut report: Report = serde_json::from_str(self.kept_report(key, now_ms)?).ok()?;
        report.skipped_files = self.skipped_files().to_vec();
        Some(report)
    }

    /// Keeps `report`, made for `key` at `now_ms` from what this index holds, in the cache's
    /// head, so that the next run finding nothing changed prints it again. Not kept: a report
    /// with an active block (time alone changes it), one made from an index the cache is
    /// behind, one too big.
    pub fn remember(
        &mut self,
        key: String,
        report: &Report,
        now_ms: i64,
    ) -> crate::error::Result<()> {
        if report.active_block.is_some() {
            return Ok(());
        }
        let text = serde_json::to_string(report).map_err(std::io::Error::other);
        let text =
            crate::error::IoContext::context_io(text, || "encoding a usage report".to_owned())?;
        self.keep_report(key, text, now_ms)
    }

    /// Prices and sums every deduplicated entry in scope, into the totals and its row.
    fn tally(&self, pricing: &Pricing, query: &Query) -> Tally {
        let in_scope = |e: &RawEntry| {
            query.since_ms.is_none_or(|s| e.timestamp_ms >= s)
                && query
                    .project
                    .as_deref()
                    .is_none_or(|p| cwd_in_project(&e.cwd, p))
        };
        let mut prices: FastMap<Key, Option<&ModelPrice>> = FastMap::default();
        let mut days = DayCache::new(query.local_days);
        let mut tally = Tally::default();
        for e in self.winners().filter(|e| in_scope(e)) {
            let price = *prices
                .entry(text_key(&e.model))
                .or_insert_with(|| pricing.lookup(&e.model));
            let calculated = price.map(|p| p.cost(&e.tokens));
            if calculated.is_none() {
                let u = tally
                    .unknown
                    .entry(e.model.clone())
                    .or_insert(UnknownModel {
                        model: e.model.to_string(),
                        entries: 0,
                        total_tokens: 0,
                    });
                u.entries += 1;
                u.total_tokens += e.tokens.total();
            }
            let cost = match query.cost_mode {
                CostMode::Calculate => calculated.unwrap_or(0.0),
                CostMode::Display => e.cost_usd.unwrap_or(0.0),
                CostMode::Auto => e.cost_usd.or(calculated).unwrap_or(0.0),
            };
            tally.totals.add(&e.tokens, cost);
            tally.timeline.push((e.timestamp_ms, e.tokens, cost));
            let name = match query.by {
                GroupBy::Project => Some(&e.cwd),
                GroupBy::Session => Some(&e.session),
                GroupBy::Model => Some(&e.model),
                GroupBy::Day => None,
                GroupBy::Block => continue,
            };
            let key = match name {
                Some(name) => text_key(name),
                None => Key::Day(days.day_of(e.timestamp_ms)),
            };
            let acc = tally
                .groups
                .entry(key)
                .or_insert_with(|| Acc::new(name.cloned()));
            acc.totals.add(&e.tokens, cost);
            acc.first = acc.first.min(e.timestamp_ms);
            acc.last = acc.last.max(e.timestamp_ms);
            if query.by == GroupBy::Session && acc.project.is_none() {
                acc.project = Some(e.cwd.clone());
            }
        }
        tally
    }

    /// Counts the files in scope and their skipped lines. Skipped lines belong to files, so
    /// they are attributed to files in scope, and to rows only where a file maps to one (its
    /// session, its project).
    fn tally_files(&self, query: &Query, tally: &mut Tally) -> FileTally {
        let encoded = query.project.as_deref().map(encode_project_dir);
        let mut out = FileTally {
            malformed: 0,
            files: 0,
            limit: None,
        };
        for f in self.live_files() {
            let file_cwd = f.entries.last().map(|e| e.cwd.clone());
            let file_in_scope = match (&query.project, &encoded) {
                (Some(p), Some(enc)) => {
                    f.place.project_dir_name == *enc
                        || f.entries.iter().any(|e| cwd_in_project(&e.cwd, p))
                }
                _ => true,
            };
            if !file_in_scope {
                continue;
            }
            out.files += 1;
            out.malformed += f.counts.malformed;
            let skipped = f.counts.malformed + f.counts.skipped;
            tally.totals.skipped_lines += skipped;
            if let Some(l) = f.counts.limit
                && out.limit.is_none_or(|x| x.seen_ms <= l.seen_ms)
            {
                out.limit = Some(l);
            }
            if skipped == 0 {
                continue;
            }
            let row_name = match query.by {
                GroupBy::Session => Some(
                    self.interned(&f.place.session_hint)
                        .unwrap_or_else(|| Arc::from(f.place.session_hint.as_str())),
                ),
                GroupBy::Project => file_cwd,
                _ => None,
            };
            if let Some(name) = row_name {
                tally
                    .groups
                    .entry(text_key(&name))
                    .or_insert_with(|| Acc::new(Some(name)))
                    .totals
                    .skipped_lines += skipped;
            }
        }
        out
    }
}

fn block_row(b: Block) -> Row {
    Row {
        key: b.start.to_rfc3339(),
        totals: b.totals.clone(),
        first_seen: Some(b.first_entry),
        last_seen: Some(b.last_entry),
        project: None,
        sandbox: None,
        block: Some(b),
    }
}

fn group_row((key, acc): (Key, Acc)) -> Row {
    Row {
        key: match (key, &acc.name) {
            (Key::Day(d), _) => d.format("%Y-%m-%d").to_string(),
            (Key::Text(_), name) => name.as_deref().unwrap_or_default().to_owned(),
        },
        first_seen: (acc.first != i64::MAX)
            .then(|| DateTime::from_timestamp_millis(acc.first))
            .flatten(),
        last_seen: (acc.last != i64::MIN)
            .then(|| DateTime::from_timestamp_millis(acc.last))
            .flatten(),
        project: acc.project.map(|p| p.to_string()),
        sandbox: None,
        totals: acc.totals,
        block: None,
    }
}

/// Days and blocks in time order, sessions by their last entry, the rest by cost.
fn sort_rows(by: GroupBy, rows: &mut [Row]) {
    match by {
        GroupBy::Day | GroupBy::Block => rows.sort_by(|a, b| a.key.cmp(&b.key)),
        GroupBy::Session => rows.sort_by_key(|r| r.last_seen),
        GroupBy::Project | GroupBy::Model => rows.sort_by(|a, b| {
            b.totals
                .cost_usd
                .total_cmp(&a.totals.cost_usd)
                .then_with(|| a.key.cmp(&b.key))
        }),
    }
}

/// The day of a time, in UTC or the local zone, looked up once per quarter hour (every zone offset is a multiple of one).
struct DayCache {
    local: bool,
    hours: FastMap<i64, NaiveDate>,
}

impl DayCache {
    fn new(local: bool) -> DayCache {
        DayCache {
            local,
            hours: FastMap::default(),
        }
    }

    fn day_of(&mut self, ms: i64) -> NaiveDate {
        let local = self.local;
        *self.hours.entry(ms.div_euclid(900_000)).or_insert_with(|| {
            let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
            if local {
                t.with_timezone(&Local).date_naive()
            } else {
                t.date_naive()
            }
        })
    }
}
