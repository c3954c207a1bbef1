//! Usage through the Deck: the index over this user's Claude logs, with its cache in the
//! state dir, and reports that name sandboxes.

use chrono::{Local, NaiveDate, TimeZone};

use super::Deck;
use crate::error::{DeckError, Result};
use crate::usage::{GroupBy, Pricing, Query, Report, UsageIndex, roots_from_env};

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

    /// Refreshes the index (reading only new bytes), saves its cache, and reports.
    pub fn usage_report(&self, index: &mut UsageIndex, query: &Query) -> Result<Report> {
        let pricing = self.pricing()?;
        index.refresh();
        // The cache only saves time: a state dir that cannot be written costs a full read
        // next time, not this report.
        if let Err(e) = index.save() {
            tracing::debug!(
                "saving the usage cache failed: {}",
                crate::error::report(&e)
            );
        }
        let mut report = index.report(&pricing, query);
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
}
