//! The engine's kept control connection to each tmux server it surveys (issue 15): a
//! long-running engine reconciles every couple of seconds and on every `list`/`show`, and a
//! `tmux list-panes` process each time cost more than the answer. The survey goes over a
//! control client instead; the spawned command remains for when no connection is up (no
//! session to attach to yet, the client's session just ended, a one-shot CLI engine).
//!
//! A control client must be attached to a session to stay (an unattached one exits after its
//! command), so the link attaches to any session of the server, without its output and
//! without sizing it, and reattaches to another when that one ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::host::tmux::{Survey, Tmux};
use crate::host::tmux_control::Control;

#[derive(Default)]
pub struct TmuxLinks {
    /// Off for a one-shot engine: attaching would cost it a second process, not save one.
    kept: AtomicBool,
    links: Mutex<HashMap<PathBuf, Arc<Control>>>,
}

impl TmuxLinks {
    /// From now on, connections are made and kept.
    pub fn keep(&self) {
        self.kept.store(true, Ordering::SeqCst);
    }

    /// Every pane on `tmux`'s server, or why it did not answer; over the kept connection
    /// when one is up.
    pub fn survey(&self, tmux: &Tmux) -> Survey {
        if let Some(link) = self.link(tmux) {
            match link.survey() {
                Ok(panes) => return Survey::Answered(panes),
                Err(e) => {
                    tracing::debug!("surveying tmux over its control client: {e}");
                    self.forget(tmux, &link);
                }
            }
        }
        let survey = tmux.survey();
        if let Survey::Answered(panes) = &survey {
            self.connect(tmux, panes.iter().map(|p| p.session.as_str()));
        }
        survey
    }

    fn link(&self, tmux: &Tmux) -> Option<Arc<Control>> {
        let mut links = lock(&self.links);
        let link = links.get(tmux.socket())?;
        if link.alive() {
            return Some(Arc::clone(link));
        }
        links.remove(tmux.socket());
        None
    }

    fn forget(&self, tmux: &Tmux, link: &Arc<Control>) {
        let mut links = lock(&self.links);
        if links
            .get(tmux.socket())
            .is_some_and(|l| Arc::ptr_eq(l, link))
        {
            links.remove(tmux.socket());
        }
    }

    /// Attaches to the first of `sessions` that takes a client, if links are kept.
    fn connect<'a>(&self, tmux: &Tmux, sessions: impl Iterator<Item = &'a str>) {
        if !self.kept.load(Ordering::SeqCst) {
            return;
        }
        // Two tries at most: a session that refuses is one ending; the next survey tries anew.
        for session in sessions.take(2) {
            match Control::attach_quiet(tmux, session) {
                Ok(control) => {
                    lock(&self.links).insert(tmux.socket().to_owned(), Arc::new(control));
                    return;
                }
                Err(e) => tracing::debug!("no survey connection through {session}: {e}"),
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
