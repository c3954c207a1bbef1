//! Sorting the sandbox table by a column.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::sandbox::{SandboxRecord, SandboxState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    #[default]
    Name,
    Backend,
    State,
    Project,
    Uptime,
}

impl SortColumn {
    pub const ALL: [SortColumn; 5] = [
        SortColumn::Name,
        SortColumn::Backend,
        SortColumn::State,
        SortColumn::Project,
        SortColumn::Uptime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::Backend => "backend",
            SortColumn::State => "state",
            SortColumn::Project => "project",
            SortColumn::Uptime => "uptime",
        }
    }

    /// Orders two records by this column, then by name so the order is stable.
    pub fn compare(self, a: &SandboxRecord, b: &SandboxRecord) -> Ordering {
        let primary = match self {
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
        };
        primary.then_with(|| a.name.cmp(&b.name))
    }
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
