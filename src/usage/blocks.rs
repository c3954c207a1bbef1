//! 5-hour blocks: Claude's usage windows, reconstructed from local logs.
//!
//! A block starts at its first entry floored to the hour (UTC) and lasts 5 hours; an entry
//! more than 5 hours after the block's start, or after the previous entry, starts a new one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Tokens;
use super::Totals;

pub const BLOCK_MS: i64 = 5 * 3_600_000;
const HOUR_MS: i64 = 3_600_000;

/// The label every projection carries: it is computed from this machine's logs only.
pub const ESTIMATE_NOTE: &str = "estimate from local logs";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub first_entry: DateTime<Utc>,
    pub last_entry: DateTime<Utc>,
    /// Now is inside the block and less than 5 hours after its last entry.
    pub active: bool,
    #[serde(flatten)]
    pub totals: Totals,
    /// Active blocks only: tokens and cost per minute between the first and last entry.
    pub burn_rate: Option<BurnRate>,
    /// Active blocks only: totals at the block's end if the burn rate holds.
    pub projection: Option<Projection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnRate {
    pub tokens_per_minute: f64,
    pub cost_usd_per_minute: f64,
    /// Always [`ESTIMATE_NOTE`]: written out for readers of `--json`, not read back.
    #[serde(skip_deserializing, default = "estimate_note")]
    pub note: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub total_tokens: u64,
    pub cost_usd: f64,
    pub minutes_left: f64,
    /// Always [`ESTIMATE_NOTE`], as in [`BurnRate`].
    #[serde(skip_deserializing, default = "estimate_note")]
    pub note: &'static str,
}

fn estimate_note() -> &'static str {
    ESTIMATE_NOTE
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Groups entries `(time ms, tokens, cost)` into blocks, oldest first.
pub fn build(items: &mut [(i64, Tokens, f64)], now_ms: i64) -> Vec<Block> {
    items.sort_by_key(|(t, _, _)| *t);
    let mut blocks: Vec<Block> = Vec::new();
    let mut start_ms = 0;
    let mut last_ms = i64::MIN;
    for (t, tokens, cost) in items.iter() {
        let new_block = blocks.is_empty() || *t - start_ms > BLOCK_MS || *t - last_ms > BLOCK_MS;
        if new_block {
            start_ms = t.div_euclid(HOUR_MS) * HOUR_MS;
            blocks.push(Block {
                start: time(start_ms),
                end: time(start_ms + BLOCK_MS),
                first_entry: time(*t),
                last_entry: time(*t),
                active: false,
                totals: Totals::default(),
                burn_rate: None,
                projection: None,
            });
        }
        let block = blocks.last_mut().expect("a block was pushed");
        block.totals.add(tokens, *cost);
        block.last_entry = time(*t);
        last_ms = *t;
    }
    if let Some(block) = blocks.last_mut() {
        let end_ms = block.end.timestamp_millis();
        let last = block.last_entry.timestamp_millis();
        block.active = now_ms - last < BLOCK_MS && now_ms < end_ms;
        if block.active {
            let minutes = (last - block.first_entry.timestamp_millis()) as f64 / 60_000.0;
            if minutes > 0.0 {
                let tokens_per_minute = block.totals.total_tokens as f64 / minutes;
                let cost_per_minute = block.totals.cost_usd / minutes;
                let minutes_left = (end_ms - now_ms) as f64 / 60_000.0;
                block.burn_rate = Some(BurnRate {
                    tokens_per_minute,
                    cost_usd_per_minute: cost_per_minute,
                    note: ESTIMATE_NOTE,
                });
                block.projection = Some(Projection {
                    total_tokens: block.totals.total_tokens
                        + (tokens_per_minute * minutes_left).round() as u64,
                    cost_usd: block.totals.cost_usd + cost_per_minute * minutes_left,
                    minutes_left,
                    note: ESTIMATE_NOTE,
                });
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_735_700_000_000; // 2025-01-01T02:53:20Z

    fn tokens(n: u64) -> Tokens {
        Tokens {
            output: n,
            ..Tokens::default()
        }
    }

    #[test]
    fn blocks_start_on_the_hour_and_split_after_five_hours_or_a_gap() {
        let min = 60_000;
        let mut items = vec![
            (T0, tokens(10), 1.0),
            (T0 + 60 * min, tokens(20), 2.0),
            // 5 h after the block start (02:00) is 07:00: 07:10 opens a new block.
            (T0 + 257 * min, tokens(30), 3.0),
            // 5 h 1 min after the previous entry: a gap opens another.
            (T0 + 257 * min + 301 * min, tokens(40), 4.0),
        ];
        let blocks = build(&mut items, T0 + 10_000 * min);
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0].start.to_rfc3339(), "2025-01-01T02:00:00+00:00");
        assert_eq!(blocks[0].totals.output_tokens, 30);
        assert_eq!(blocks[0].totals.entries, 2);
        assert_eq!(blocks[1].start.to_rfc3339(), "2025-01-01T07:00:00+00:00");
        assert_eq!(blocks[1].totals.output_tokens, 30);
        assert_eq!(blocks[2].totals.output_tokens, 40);
        assert!(blocks.iter().all(|b| !b.active && b.projection.is_none()));
    }

    #[test]
    fn the_active_block_has_a_burn_rate_and_a_labelled_projection() {
        let min = 60_000;
        // Block 02:00-07:00; entries at 02:53:20 and 03:03:20, now 03:13:20.
        let mut items = vec![(T0, tokens(1000), 1.0), (T0 + 10 * min, tokens(1000), 1.0)];
        let blocks = build(&mut items, T0 + 20 * min);
        let b = &blocks[0];
        assert!(b.active);
        let rate = b.burn_rate.as_ref().unwrap();
        assert!((rate.tokens_per_minute - 200.0).abs() < 1e-9);
        let p = b.projection.as_ref().unwrap();
        // 226.666… minutes left at 200 tokens/min on top of 2000.
        let left = (7 * 60) as f64 - (3 * 60 + 13) as f64 - 20.0 / 60.0;
        assert!((p.minutes_left - left).abs() < 1e-9);
        assert_eq!(p.total_tokens, 2000 + (200.0 * left).round() as u64);
        assert!((p.cost_usd - (2.0 + 0.2 * left)).abs() < 1e-9);
        assert_eq!(p.note, ESTIMATE_NOTE);
    }
}
