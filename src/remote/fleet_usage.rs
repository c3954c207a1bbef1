//! A fleet's Usage tab: every host's summary in one. Projects keep their host in front of
//! their dir (`host:/src/api`), today's totals add up. The 5-hour block and the limit are
//! per Claude account, not per host: the busiest host's block stands for it (hosts that
//! share an account each saw part of it).

use std::path::{Path, PathBuf};

use crate::engine::usage::UsageSummary;
use crate::sandbox::SandboxRecord;

/// A project dir as a fleet's usage names it, `host:/dir` (one engine's: the dir itself):
/// what the table's COST and the Usage tab look a sandbox's usage up by.
pub fn project_key(host: Option<&str>, dir: &Path) -> PathBuf {
    match host {
        Some(host) => format!("{host}:{}", dir.display()).into(),
        None => dir.to_owned(),
    }
}

/// [`project_key`] of a record, its host read from its name (`name@host`).
pub fn record_project_key(record: &SandboxRecord) -> PathBuf {
    project_key(record.name.split_host().1, record.project_dir.as_path())
}

pub fn merged_usage(summaries: Vec<(String, UsageSummary)>) -> UsageSummary {
    let mut merged = UsageSummary::default();
    for (host, summary) in summaries {
        merged.today += &summary.today;
        merged.skipped_files += summary.skipped_files;
        merged
            .projects
            .extend(summary.projects.into_iter().map(|mut p| {
                let key = project_key(Some(&host), Path::new(&p.cwd));
                p.cwd = key.display().to_string();
                p
            }));
        let busier = match (&merged.block, &summary.block) {
            (None, Some(_)) => true,
            (Some(ours), Some(theirs)) => theirs.totals.total_tokens > ours.totals.total_tokens,
            _ => false,
        };
        if busier {
            merged.block = summary.block;
        }
        merged.limit_resets_at = match (merged.limit_resets_at, summary.limit_resets_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::usage::ProjectUsage;

    #[test]
    fn projects_keep_their_host_and_today_adds_up() {
        let summary = |cwd: &str, tokens| {
            let mut s = UsageSummary::default();
            s.today.total_tokens = tokens;
            let mut project = ProjectUsage {
                cwd: cwd.into(),
                ..Default::default()
            };
            project.totals.total_tokens = tokens;
            s.projects.push(project);
            s
        };
        let merged = merged_usage(vec![
            ("a".into(), summary("/src/x", 10)),
            ("b".into(), summary("/src/x", 5)),
        ]);
        assert_eq!(merged.today.total_tokens, 15);
        let cwds: Vec<&str> = merged.projects.iter().map(|p| p.cwd.as_str()).collect();
        assert_eq!(cwds, ["a:/src/x", "b:/src/x"]);
        let b_x = merged.for_project(&project_key(Some("b"), Path::new("/src/x")));
        assert_eq!(
            b_x.totals.total_tokens, 5,
            "b's project found by its key alone"
        );
        let bare = merged.for_project(Path::new("/src/x"));
        assert_eq!(
            bare.totals.total_tokens, 0,
            "no host's project by the bare dir"
        );
    }
}
