//! Reconciles the registry with what really runs (D3): runs on every command that reads
//! state, and on a timer in long-running modes. A sandbox whose backend ended reads
//! `exited` (with tmux's exit status); one whose session or display vanished reads `dead`
//! (with a reason), and whatever is left of it is ended.
//!
//! Only positive evidence changes a state: a process gone (pid *and* start time), or a
//! session missing on a tmux server that answered. A server we cannot reach (another
//! session's runtime dir, a socket we may not open) proves nothing: the sandbox keeps its
//! state and is reported `unreachable`, with the reason, and nothing of it is touched.

use std::time::Duration;

use chrono::Utc;

use std::collections::HashMap;
use std::path::PathBuf;

use super::Deck;
use crate::error::Result;
use crate::host::process::ProcRef;
use crate::host::tmux::Survey;
use crate::sandbox::{SandboxId, SandboxRecord, SandboxState};

/// How often, and how long apart, tmux is asked again for the status of a pane it has marked
/// dead before the status is recorded as unknown.
const UNKNOWN_STATUS_RECHECKS: usize = 10;
const UNKNOWN_STATUS_RECHECK: Duration = Duration::from_millis(100);

/// A sandbox still `starting` after this long was abandoned by whoever started it.
const START_DEADLINE: Duration = Duration::from_secs(120);

/// What the monitor concluded about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Exited {
        status: Option<i32>,
    },
    Dead {
        reason: String,
    },
    /// A hand-started sandbox whose launcher is gone: it unregisters.
    Gone,
    /// Its tmux server did not answer and nothing else shows it ended: left as it is.
    Unreachable {
        reason: String,
    },
}

/// Compares one record with what its tmux server said. Pure apart from the pid checks.
pub fn observe(
    record: &SandboxRecord,
    server: &Survey,
    now: chrono::DateTime<Utc>,
) -> Option<Finding> {
    observe_with(record, server, now, &mut |p| p.is_alive())
}

/// [`observe`] with the pid checks made by `alive` (the engine's kept `stat` files).
fn observe_with(
    record: &SandboxRecord,
    server: &Survey,
    now: chrono::DateTime<Utc>,
    alive: &mut dyn FnMut(&ProcRef) -> bool,
) -> Option<Finding> {
    if !record.managed {
        let alive = record.launcher.is_some_and(|l| alive(&l));
        return (!alive).then_some(Finding::Gone);
    }
    match record.state {
        SandboxState::Running => {
            let panes = match server {
                Survey::Answered(panes) => panes,
                Survey::Unreachable(reason) => {
                    return observe_unreachable(record, reason, alive);
                }
            };
            let pane = panes
                .iter()
                .find(|p| Some(p.session.as_str()) == record.tmux_session.as_deref());
            match pane {
                None => Some(Finding::Dead {
                    reason: "its tmux session vanished".into(),
                }),
                Some(pane) if pane.exit_status.is_some() => Some(Finding::Exited {
                    status: pane.exit_status,
                }),
                // tmux has not reaped it (yet, or ever: seen with tmux 3.3), but the process
                // is gone: it has ended, with a status nobody can tell us.
                Some(pane) if pane.closed && !record.launcher.is_some_and(|l| alive(&l)) => {
                    Some(Finding::Exited { status: None })
                }
                Some(_) if !record.xvfb.is_some_and(|x| alive(&x)) => Some(Finding::Dead {
                    reason: "Xvfb died".into(),
                }),
                Some(_) => None,
            }
        }
        SandboxState::Starting => {
            let since = record.started_at.unwrap_or(record.created_at);
            let overdue = (now - since).to_std().is_ok_and(|age| age > START_DEADLINE);
            overdue.then(|| Finding::Dead {
                reason: "it never finished starting".into(),
            })
        }
        SandboxState::Stopped | SandboxState::Exited | SandboxState::Dead => None,
    }
}

/// A running sandbox whose server did not answer: only its processes can tell.
fn observe_unreachable(
    record: &SandboxRecord,
    reason: &str,
    alive: &mut dyn FnMut(&ProcRef) -> bool,
) -> Option<Finding> {
    if record.launcher.is_some_and(|l| !alive(&l)) {
        return Some(Finding::Exited { status: None });
    }
    if record.xvfb.is_some_and(|x| !alive(&x)) {
        return Some(Finding::Dead {
            reason: "Xvfb died".into(),
        });
    }
    Some(Finding::Unreachable {
        reason: reason.to_owned(),
    })
}

fn needs_watch(record: &SandboxRecord) -> bool {
    !record.managed || matches!(record.state, SandboxState::Running | SandboxState::Starting)
}

/// What a reconciliation does once the registry is written back.
#[derive(Default)]
struct Outcome {
    /// Dead sandboxes: whatever is left of them is ended.
    to_end: Vec<SandboxRecord>,
    /// Displays of sandboxes that exited: nothing draws on them any more.
    displays_to_end: Vec<ProcRef>,
    unreachable: HashMap<SandboxId, String>,
    /// Hand-started sandboxes whose launcher ended: they unregister.
    gone: Vec<SandboxId>,
}

impl Deck {
    /// Brings the registry in line with reality and returns the up-to-date records.
    pub fn reconcile(&self) -> Result<Vec<SandboxRecord>> {
        // Parsed again only when the file changed; read again under the lock below.
        if let Some(snapshot) = self
            .registry
            .read_cached(|records| (!records.iter().any(needs_watch)).then(|| records.to_vec()))?
        {
            return Ok(snapshot);
        }
        let mut outcome = Outcome::default();
        // The displays' and launchers' `stat` files, kept open from one reconcile to the next.
        let mut processes = self.trackers.processes();
        let mut records = self.registry.update(|records| {
            // Read tmux under the lock: a sandbox marked running after this point had its
            // session before it was marked, so it cannot be mistaken for a vanished one.
            // Each sandbox is looked for on the server it was made on, each server asked once.
            // A server's last survey stands when tmux told of no change since and every
            // running pane's process is still there (see `TmuxLinks::survey_settled`).
            let mut running: HashMap<PathBuf, (crate::host::tmux::Tmux, Vec<&str>, bool)> =
                HashMap::new();
            for record in records
                .iter()
                .filter(|r| r.managed && r.state == SandboxState::Running)
            {
                let tmux = self.tmux_of(record);
                let alive = record.launcher.is_some_and(|l| processes.is_alive(&l));
                let server = running
                    .entry(tmux.socket().to_owned())
                    .or_insert_with(|| (tmux, Vec::new(), true));
                server.1.extend(record.tmux_session.as_deref());
                server.2 &= alive && record.tmux_session.is_some();
            }
            let servers: HashMap<PathBuf, Survey> = running
                .into_iter()
                .map(|(socket, (tmux, sessions, settled))| {
                    let survey = self.tmux_links.survey_settled(&tmux, &sessions, settled);
                    (socket, survey)
                })
                .collect();
            let nothing = Survey::Answered(Vec::new());
            let now = Utc::now();
            for record in records.iter_mut() {
                let server = servers
                    .get(self.tmux_of(record).socket())
                    .unwrap_or(&nothing);
                let mut alive = |p: &ProcRef| processes.is_alive(p);
                let mut finding = observe_with(record, server, now, &mut alive);
                if matches!(finding, Some(Finding::Exited { status: None }))
                    && matches!(server, Survey::Answered(_))
                {
                    // tmux marks a pane dead when its pty closes and learns the status when it
                    // reaps the process, a moment later on a busy machine: ask again, for up
                    // to a second, before recording the status as unknown.
                    for _ in 0..UNKNOWN_STATUS_RECHECKS {
                        std::thread::sleep(UNKNOWN_STATUS_RECHECK);
                        let again = self.survey(&self.tmux_of(record));
                        finding = observe_with(record, &again, now, &mut alive).or(finding);
                        if !matches!(finding, Some(Finding::Exited { status: None })) {
                            break;
                        }
                    }
                }
                if let Some(finding) = finding {
                    apply(record, finding, &mut outcome);
                }
            }
            records.retain(|r| !outcome.gone.contains(&r.id));
            Ok(records.clone())
        })?;
        processes.close_unread();
        drop(processes);
        for record in &outcome.to_end {
            self.teardown(record, false);
        }
        for xvfb in outcome.displays_to_end {
            xvfb.terminate(Duration::from_secs(2));
        }
        for record in &mut records {
            record.unreachable = outcome.unreachable.remove(&record.id);
        }
        Ok(records)
    }
}

/// Writes what the monitor found into the record (and the log: the only trace of why a
/// sandbox changed state behind the user's back), and notes what is to be ended.
fn apply(record: &mut SandboxRecord, finding: Finding, outcome: &mut Outcome) {
    let (name, id) = (&record.name, &record.id);
    match finding {
        Finding::Unreachable { reason } => {
            tracing::debug!(sandbox = %name, %id, %reason, "tmux server unreachable: state kept");
            outcome.unreachable.insert(record.id.clone(), reason);
        }
        Finding::Gone => {
            tracing::info!(sandbox = %name, %id, "hand-started sandbox's launcher ended: unregistered");
            outcome.gone.push(record.id.clone());
        }
        Finding::Exited { status } => {
            tracing::info!(
                sandbox = %name,
                %id,
                ?status,
                "marked exited: {}",
                match status {
                    Some(_) => "its pane's process ended",
                    None => "its process is gone and tmux recorded no status",
                }
            );
            record.state = SandboxState::Exited;
            record.exit_status = status;
            // The pane (its last screen) stays for `attach`; the display goes.
            outcome.displays_to_end.extend(record.xvfb.take());
            record.display = None;
            record.reason = match status {
                Some(s) if s > 128 => Some(format!("killed by signal {}", s - 128)),
                Some(_) => None,
                None => Some("its exit status was not recorded".into()),
            };
        }
        Finding::Dead { reason } => {
            tracing::warn!(sandbox = %name, %id, %reason, "marked dead; ending what is left of it");
            outcome.to_end.push(record.clone());
            record.state = SandboxState::Dead;
            record.reason = Some(reason);
            record.display = None;
            record.xvfb = None;
            record.launcher = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::tmux::Pane;
    use crate::sandbox::Payload;

    fn running(launcher: ProcRef, xvfb: ProcRef) -> SandboxRecord {
        SandboxRecord {
            display: Some(10),
            started_at: Some(Utc::now()),
            xvfb: Some(xvfb),
            launcher: Some(launcher),
            payload: Payload::Shell { command: vec![] },
            ..SandboxRecord::example("api", &std::env::temp_dir())
        }
    }

    fn pane(closed: bool, exit_status: Option<i32>) -> Survey {
        Survey::Answered(vec![Pane {
            session: "api".into(),
            pid: 1,
            closed,
            exit_status,
        }])
    }

    #[test]
    fn what_the_monitor_concludes() {
        let alive = ProcRef::of(std::process::id()).unwrap();
        let gone = ProcRef {
            start_time: alive.start_time + 1,
            ..alive
        };
        let now = Utc::now();
        let r = running(alive, alive);
        assert_eq!(observe(&r, &pane(false, None), now), None);
        assert_eq!(
            observe(&r, &pane(true, Some(3)), now),
            Some(Finding::Exited { status: Some(3) })
        );
        assert_eq!(
            observe(&r, &pane(true, None), now),
            None,
            "closed, not yet reaped, still alive"
        );
        assert_eq!(
            observe(&running(gone, alive), &pane(true, None), now),
            Some(Finding::Exited { status: None }),
            "closed and gone, never reaped by tmux"
        );
        assert!(matches!(
            observe(&r, &Survey::Answered(vec![]), now),
            Some(Finding::Dead { .. })
        ));
        assert_eq!(
            observe(&running(alive, gone), &pane(false, None), now),
            Some(Finding::Dead {
                reason: "Xvfb died".into()
            })
        );
    }

    #[test]
    fn a_server_that_does_not_answer_proves_nothing() {
        let alive = ProcRef::of(std::process::id()).unwrap();
        let gone = ProcRef {
            start_time: alive.start_time + 1,
            ..alive
        };
        let now = Utc::now();
        let silent = Survey::Unreachable("no tmux server answers at /x/tmux.sock".into());
        assert_eq!(
            observe(&running(alive, alive), &silent, now),
            Some(Finding::Unreachable {
                reason: "no tmux server answers at /x/tmux.sock".into()
            }),
            "alive processes on an unreachable server stay as they are"
        );
        assert_eq!(
            observe(&running(gone, alive), &silent, now),
            Some(Finding::Exited { status: None }),
            "a launcher gone is evidence enough"
        );
        assert_eq!(
            observe(&running(alive, gone), &silent, now),
            Some(Finding::Dead {
                reason: "Xvfb died".into()
            })
        );
    }
}
