//! Sorting the sandbox table by a column.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::live::Live;
use crate::sandbox::{SandboxRecord, SandboxState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    /// Agents waiting for their user first, then by name.
    #[default]
    Agent,
    Name,
    Backend,
    State,
    Project,
    Uptime,
    /// Busiest first; sandboxes without a sample (not running) last.
    Cpu,
    /// Largest first; the same.
    Mem,
}

impl SortColumn {
    pub const ALL: [SortColumn; 8] = [
        SortColumn::Agent,
        SortColumn::Name,
        SortColumn::Backend,
        SortColumn::State,
        SortColumn::Project,
        SortColumn::Uptime,
        SortColumn::Cpu,
        SortColumn::Mem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortColumn::Agent => "agent",
            SortColumn::Name => "name",
            SortColumn::Backend => "backend",
            SortColumn::State => "state",
            SortColumn::Project => "project",
            SortColumn::Uptime => "uptime",
            SortColumn::Cpu => "cpu",
            SortColumn::Mem => "mem",
        }
    }

    /// Orders two records by this column, then by name (in natural order) so the order is
    /// stable. `live` has the agent states and metrics the workers last reported.
    pub fn compare(self, a: &SandboxRecord, b: &SandboxRecord, live: &Live) -> Ordering {
        let primary = match self {
            SortColumn::Agent => live.is_waiting(b).cmp(&live.is_waiting(a)),
            SortColumn::Name => Ordering::Equal,
            SortColumn::Backend => a.backend.as_str().cmp(b.backend.as_str()),
            SortColumn::State => state_rank(a.state).cmp(&state_rank(b.state)),
            SortColumn::Project => a.project_dir.as_path().cmp(b.project_dir.as_path()),
            // Longest running first; not running sorts last.
            SortColumn::Uptime => match (running_since(a), running_since(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            SortColumn::Cpu => largest_first(live, a, b, |m| m.cpu_percent_of_core),
            SortColumn::Mem => largest_first(live, a, b, |m| m.rss_bytes as f64),
        };
        primary.then_with(|| natural_cmp(a.name.as_str(), b.name.as_str()))
    }
}

/// The larger figure first; a sandbox with no figure (not running, no sample yet) last.
fn largest_first(
    live: &Live,
    a: &SandboxRecord,
    b: &SandboxRecord,
    figure: impl Fn(&crate::metrics::SandboxMetrics) -> f64,
) -> Ordering {
    match (
        live.metrics_of(a).map(&figure),
        live.metrics_of(b).map(&figure),
    ) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Names as people count: runs of digits compare by value, so `s2` comes before `s10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (x_digits, x_rest) = split_digits(a);
                let (y_digits, y_rest) = split_digits(b);
                // Leading zeros do not change the value; more digits left is a larger number.
                let (x_value, y_value) = (
                    x_digits.trim_start_matches('0'),
                    y_digits.trim_start_matches('0'),
                );
                let order = x_value
                    .len()
                    .cmp(&y_value.len())
                    .then_with(|| x_value.cmp(y_value))
                    .then_with(|| x_digits.len().cmp(&y_digits.len()));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (x_rest, y_rest);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

fn running_since(r: &SandboxRecord) -> Option<chrono::DateTime<chrono::Utc>> {
    r.started_at.filter(|_| r.state == SandboxState::Running)
}

/// What needs attention first: problems, then live sandboxes, then idle ones.
fn state_rank(state: SandboxState) -> u8 {
    match state {
        SandboxState::Dead => 0,
        SandboxState::Exited => 1,
        SandboxState::Starting => 2,
        SandboxState::Running => 3,
        SandboxState::Stopped => 4,
    }
}

impl FromStr for SortColumn {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortColumn::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for SortColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_names_sort_by_value() {
        let mut names = vec!["s10", "s2", "s1", "web", "s02", "api9", "api10", "s"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["api9", "api10", "s", "s1", "s2", "s02", "s10", "web"]
        );
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
    }
}
