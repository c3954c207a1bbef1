//! The engine's one control connection to each tmux server it watches (issue 15).
//!
//! tmux sends a control client `%output` only for the panes of the session it is attached
//! to, and a hundred clients (one a session) cost the server more than everything else the
//! engine does at idle. So the engine keeps one client a server, attached to the watch
//! session ([`crate::host::tmux::WATCH_SESSION`]), into which every sandbox session's
//! windows are linked; the client's output is routed by pane id to the sandbox whose session
//! has that pane (its pane log, its output subscribers, its preview's change count).
//!
//! The same client answers the monitor's survey (no `tmux list-panes` process every couple
//! of seconds) and the preview's captures. It is made on first use by a long-lived front
//! end (the watched panes, or the survey once [`TmuxLinks::keep`] was called), remade (and
//! the watch session with it) when it or its session ends, and tended whenever tmux says a
//! session or window came or went: new windows linked, those whose session is gone ended,
//! and the watch session killed when no other session is left.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::status_gate::{Grams, OutputGate};
use super::wake::{Topic, Wakeups};
use crate::host::tmux::{Pane, Survey, Tmux};
use crate::host::tmux_control::{Control, Event, OutputSink, Sent};

/// A server whose connection could not be made is tried again after this long.
const RETRY: Duration = Duration::from_secs(1);

/// The slow safety net under a survey kept from one reconcile to the next (see
/// [`TmuxLinks::survey_settled`]): what tmux says and the panes' processes say the rest.
pub const SURVEY_SAFETY: Duration = Duration::from_secs(30);

/// Where one watched session's output goes, and how much of it came.
pub struct Target {
    changes: AtomicU64,
    sink: Mutex<OutputSink>,
    /// What of its output could change what the status patterns read (see
    /// [`super::status_gate`]); None: not read for that.
    gate: Option<(Arc<Grams>, Mutex<OutputGate>)>,
}

impl Target {
    pub fn new(sink: OutputSink) -> Arc<Target> {
        Arc::new(Target {
            changes: AtomicU64::new(0),
            sink: Mutex::new(sink),
            gate: None,
        })
    }

    /// A target whose output is also read by the status gate.
    pub fn gated(sink: OutputSink, grams: Arc<Grams>) -> Arc<Target> {
        Arc::new(Target {
            changes: AtomicU64::new(0),
            sink: Mutex::new(sink),
            gate: Some((grams, Mutex::new(OutputGate::default()))),
        })
    }

    /// How many chunks of output came for it so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// How many times its output could have changed what the status patterns read, taken
    /// before a capture ([`OutputGate::mark`]); None when it is not gated.
    pub fn status_mark(&self) -> Option<u64> {
        self.gate.as_ref().map(|(_, gate)| lock(gate).mark())
    }

    /// A pane now routed here: what it printed before went to no one, so it counts as output
    /// the status gate could not read (the next look captures it).
    fn routed(&self) {
        if let Some((_, gate)) = &self.gate {
            lock(gate).unread();
        }
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    fn output(&self, pane: u32, data: &[u8]) {
        // Counted before the change: a reader that sees the change sees its mark.
        if let Some((grams, gate)) = &self.gate {
            lock(gate).feed(grams, data);
        }
        self.changes.fetch_add(1, Ordering::SeqCst);
        (lock(&self.sink))(pane, data);
    }
}

/// What the reader thread routes by, shared with the engine.
#[derive(Default)]
struct Routes {
    /// The watched sessions, as the engine last said.
    sessions: HashMap<String, Arc<Target>>,
    /// Every pane of the server's sessions (but the watch session's), as last tended.
    panes: HashMap<u32, String>,
    /// The two above joined: what a pane's output goes to.
    targets: HashMap<u32, Arc<Target>>,
}

impl Routes {
    fn join(&mut self) {
        let targets: HashMap<u32, Arc<Target>> = self
            .panes
            .iter()
            .filter_map(|(pane, session)| Some((*pane, Arc::clone(self.sessions.get(session)?))))
            .collect();
        for (pane, target) in &targets {
            if !self
                .targets
                .get(pane)
                .is_some_and(|t| Arc::ptr_eq(t, target))
            {
                target.routed();
            }
        }
        self.targets = targets;
    }
}

#[derive(Default)]
struct LinkShared {
    routes: Mutex<Routes>,
    /// tmux said something came or went since the last tending.
    dirty: AtomicBool,
    /// Bumped on every notification but output (a layout changed, a window came or went):
    /// every capture taken before is stale.
    epoch: AtomicU64,
}

/// Numbers the connections, so a capture taken over one is never taken for one over the next.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// One server's connection.
pub struct Link {
    /// Unique among this process's connections.
    serial: u64,
    control: Control,
    shared: Arc<LinkShared>,
    /// One tending at a time (two would link a window twice).
    tending: Mutex<()>,
    /// The last survey over this connection.
    surveyed: Mutex<Option<Surveyed>>,
}

impl Link {
    fn alive(&self) -> bool {
        self.control.alive()
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Whether `session`'s output goes to `target`.
    pub fn routes(&self, session: &str, target: &Arc<Target>) -> bool {
        lock(&self.shared.routes)
            .sessions
            .get(session)
            .is_some_and(|t| Arc::ptr_eq(t, target))
    }

    /// Bumped on every layout, window or session change.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::SeqCst)
    }

    /// `session`'s active pane as text, over the connection.
    pub fn capture(&self, session: &str, colours: bool) -> crate::error::Result<String> {
        self.control.capture(session, 0, colours)
    }

    /// Tends the watch session if tmux said anything came or went since the last time.
    fn tend_if_dirty(&self) {
        if self.shared.dirty.load(Ordering::SeqCst) {
            self.tend();
        }
    }

    fn tend(&self) {
        let _one = lock(&self.tending);
        // Cleared first: whatever tmux says during the tending is looked at next time.
        self.shared.dirty.store(false, Ordering::SeqCst);
        match self.control.tend() {
            Ok(plan) => {
                let mut routes = lock(&self.shared.routes);
                routes.panes = plan.panes;
                routes.join();
            }
            Err(e) => tracing::debug!("tending the watch session: {e}"),
        }
    }
}

/// The connections, by server socket.
pub struct TmuxLinks {
    /// Whether the survey makes a connection (a long-running engine); the watched panes
    /// make one anyway.
    kept: AtomicBool,
    links: Mutex<HashMap<PathBuf, Arc<Link>>>,
    /// When a connection to a server was last tried and failed.
    tried: Mutex<HashMap<PathBuf, Instant>>,
    wakeups: Wakeups,
    /// Every command sent over any of the connections, by kind.
    sent: Arc<Sent>,
}

impl TmuxLinks {
    pub fn new(wakeups: Wakeups) -> TmuxLinks {
        TmuxLinks {
            kept: AtomicBool::new(false),
            links: Mutex::default(),
            tried: Mutex::default(),
            wakeups,
            sent: Arc::default(),
        }
    }

    /// Every command sent over the connections so far, by kind (tests, benches).
    pub fn sent(&self) -> std::collections::BTreeMap<String, u64> {
        self.sent.counts()
    }

    /// From now on, the survey makes and keeps a connection.
    pub fn keep(&self) {
        self.kept.store(true, Ordering::SeqCst);
    }

    /// Every pane on `tmux`'s server as [`TmuxLinks::survey`] says, or the last survey over
    /// the kept connection when nothing can have changed since: tmux told of no session,
    /// window or layout change, `sessions` (the running sandboxes' there) were all in it,
    /// the caller saw every one of their panes' processes alive (`settled`: a pane whose
    /// process ended is the one change tmux does not tell), and it is younger than
    /// [`SURVEY_SAFETY`]. An idle engine's reconcile then asks the server nothing.
    pub fn survey_settled(&self, tmux: &Tmux, sessions: &[&str], settled: bool) -> Survey {
        if settled && let Some(link) = self.link(tmux) {
            let surveyed = lock(&link.surveyed);
            if let Some(last) = surveyed.as_ref()
                && last.stands(link.epoch(), sessions)
            {
                return Survey::Answered(last.panes.clone());
            }
        }
        self.survey(tmux)
    }

    /// Every pane on `tmux`'s server, or why it did not answer; over the kept connection
    /// when one is up.
    pub fn survey(&self, tmux: &Tmux) -> Survey {
        if let Some(link) = self.link(tmux) {
            link.tend_if_dirty();
            // Before asking: a change told during the survey makes it stale.
            let epoch = link.epoch();
            match link.control.survey() {
                Ok(panes) => {
                    *lock(&link.surveyed) = Some(Surveyed {
                        epoch,
                        at: Instant::now(),
                        panes: panes.clone(),
                    });
                    return Survey::Answered(panes);
                }
                Err(e) => {
                    tracing::debug!("surveying tmux over its control client: {e}");
                    self.forget(tmux, &link);
                }
            }
        }
        let survey = tmux.survey();
        if let Survey::Answered(panes) = &survey
            && self.kept.load(Ordering::SeqCst)
        {
            let sessions: Vec<&str> = panes.iter().map(|p| p.session.as_str()).collect();
            self.connect(tmux, &sessions);
        }
        survey
    }

    /// Watches `sessions` on `tmux`'s server (each with where its output goes) instead of
    /// whatever was watched there before; the connection, made if need be (at most once a
    /// [`RETRY`]), or None.
    pub fn watch(&self, tmux: &Tmux, sessions: &[(&str, &Arc<Target>)]) -> Option<Arc<Link>> {
        let link = match self.link(tmux) {
            Some(link) => link,
            None => {
                let via: Vec<&str> = sessions.iter().map(|(s, _)| *s).collect();
                self.connect(tmux, &via)?
            }
        };
        let changed = {
            let mut routes = lock(&link.shared.routes);
            let same = routes.sessions.len() == sessions.len()
                && sessions.iter().all(|(session, target)| {
                    routes
                        .sessions
                        .get(*session)
                        .is_some_and(|t| Arc::ptr_eq(t, target))
                });
            if !same {
                routes.sessions = sessions
                    .iter()
                    .map(|(s, t)| ((*s).to_owned(), Arc::clone(t)))
                    .collect();
                routes.join();
            }
            // A newly watched session tmux did not list when last tended: new since.
            !same && {
                let seen: std::collections::HashSet<&str> =
                    routes.panes.values().map(String::as_str).collect();
                sessions.iter().any(|(s, _)| !seen.contains(s))
            }
        };
        if changed {
            link.tend();
        } else {
            link.tend_if_dirty();
        }
        link.alive().then_some(link)
    }

    /// The connection to `tmux`'s server if one is up (tended if tmux told of a change),
    /// without changing what is watched there.
    pub fn current(&self, tmux: &Tmux) -> Option<Arc<Link>> {
        let link = self.link(tmux)?;
        link.tend_if_dirty();
        link.alive().then_some(link)
    }

    /// Whether the last tending of `tmux`'s server saw `session` (a connection is up).
    pub fn saw(&self, tmux: &Tmux, session: &str) -> bool {
        self.link(tmux).is_some_and(|link| {
            lock(&link.shared.routes)
                .panes
                .values()
                .any(|s| s == session)
        })
    }

    /// Tends every connection tmux told of a change since (a stopped sandbox's window, the
    /// watch session once the last sandbox is gone).
    pub fn tend(&self) {
        let links: Vec<Arc<Link>> = {
            let mut links = lock(&self.links);
            // An ended client is reaped (dropped) here, not left a zombie till next use.
            links.retain(|_, link| link.alive());
            links.values().cloned().collect()
        };
        for link in &links {
            link.tend_if_dirty();
        }
    }

    fn link(&self, tmux: &Tmux) -> Option<Arc<Link>> {
        let mut links = lock(&self.links);
        let link = links.get(tmux.socket())?;
        if link.alive() {
            return Some(Arc::clone(link));
        }
        links.remove(tmux.socket());
        None
    }

    fn forget(&self, tmux: &Tmux, link: &Arc<Link>) {
        let mut links = lock(&self.links);
        if links
            .get(tmux.socket())
            .is_some_and(|l| Arc::ptr_eq(l, link))
        {
            links.remove(tmux.socket());
        }
    }

    /// Attaches to the watch session through the first of `via` that takes a client (the
    /// watch session itself if it exists), and tends it once.
    fn connect(&self, tmux: &Tmux, via: &[&str]) -> Option<Arc<Link>> {
        if via.is_empty() {
            return None;
        }
        let socket = tmux.socket().to_owned();
        if lock(&self.tried)
            .get(&socket)
            .is_some_and(|t| t.elapsed() < RETRY)
        {
            return None;
        }
        let shared = Arc::new(LinkShared::default());
        // Two tries at most: a session that refuses is one ending; the next use tries anew.
        for session in via.iter().take(2) {
            let made = Control::watch(
                tmux,
                session,
                output_sink(&shared),
                change_sink(&shared, &self.wakeups),
                Arc::clone(&self.sent),
            );
            match made {
                Ok(control) => {
                    let link = Arc::new(Link {
                        serial: SERIAL.fetch_add(1, Ordering::SeqCst),
                        control,
                        shared,
                        tending: Mutex::new(()),
                        surveyed: Mutex::new(None),
                    });
                    link.tend();
                    lock(&self.tried).remove(&socket);
                    lock(&self.links).insert(socket, Arc::clone(&link));
                    return Some(link);
                }
                Err(e) => tracing::debug!("no watch connection through {session}: {e}"),
            }
        }
        lock(&self.tried).insert(socket, Instant::now());
        None
    }
}

/// Routes a pane's output to its session's target; a pane not known yet makes the link
/// tend itself at its next use.
fn output_sink(shared: &Arc<LinkShared>) -> OutputSink {
    let shared = Arc::clone(shared);
    Box::new(move |pane, data| {
        let target = lock(&shared.routes).targets.get(&pane).cloned();
        match target {
            Some(target) => target.output(pane, data),
            None => shared.dirty.store(true, Ordering::SeqCst),
        }
    })
}

/// A session or window that came or went marks the link for tending and wakes the monitor
/// at once; any notification but a few (see [`says_nothing_of_screens`]) makes the captures
/// stale.
fn change_sink(
    shared: &Arc<LinkShared>,
    wakeups: &Wakeups,
) -> crate::host::tmux_control::ChangeSink {
    let shared = Arc::clone(shared);
    let wakeups = wakeups.clone();
    Box::new(move |event| {
        if let Event::Other(line) = event
            && says_nothing_of_screens(line)
        {
            return;
        }
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        shared.dirty.store(true, Ordering::SeqCst);
        if matches!(
            event,
            Event::Exit { .. }
                | Event::SessionsChanged
                | Event::WindowClose { .. }
                | Event::UnlinkedWindowClose { .. }
        ) {
            wakeups.wake(Topic::Records);
        }
    })
}

/// Notifications that change no pane's screen nor which pane a session shows: a window's
/// name following its pane's command (`automatic-rename`) must not make a hundred panes be
/// captured again.
fn says_nothing_of_screens(line: &str) -> bool {
    let word = line.split(' ').next().unwrap_or("");
    matches!(
        word,
        "%window-renamed"
            | "%unlinked-window-renamed"
            | "%pane-mode-changed"
            | "%paste-buffer-changed"
            | "%paste-buffer-deleted"
            | "%client-session-changed"
            | "%client-detached"
            | "%message"
            | "%config-error"
            | "%continue"
            | "%pause"
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The last survey over a kept connection: the link's change epoch before it was asked,
/// when, and what it said.
struct Surveyed {
    epoch: u64,
    at: Instant,
    panes: Vec<Pane>,
}

impl Surveyed {
    /// Whether it still says what the server would: tmux told of no change since
    /// (`epoch`), every one of `sessions` is in it, and it is younger than
    /// [`SURVEY_SAFETY`].
    fn stands(&self, epoch: u64, sessions: &[&str]) -> bool {
        self.epoch == epoch
            && self.at.elapsed() < SURVEY_SAFETY
            && sessions
                .iter()
                .all(|s| self.panes.iter().any(|p| p.session == *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The survey net: a settled survey stands until [`SURVEY_SAFETY`], then is asked again;
    /// a change tmux told of, or a running session missing from it, ends it sooner.
    #[test]
    fn a_survey_stands_until_a_change_a_missing_session_or_the_safety_net() {
        let pane = |session: &str| Pane {
            session: session.into(),
            pid: 10,
            closed: false,
            exit_status: None,
        };
        let surveyed = |age: Duration| Surveyed {
            epoch: 3,
            at: Instant::now()
                .checked_sub(age)
                .expect("the clock is past the net"),
            panes: vec![pane("a"), pane("b")],
        };
        let fresh = surveyed(Duration::ZERO);
        assert!(fresh.stands(3, &["a", "b"]));
        assert!(surveyed(SURVEY_SAFETY - Duration::from_secs(1)).stands(3, &["a"]));
        assert!(
            !surveyed(SURVEY_SAFETY + Duration::from_secs(1)).stands(3, &["a", "b"]),
            "past the net the server is asked again"
        );
        assert!(!fresh.stands(4, &["a", "b"]), "tmux told of a change");
        assert!(
            !fresh.stands(3, &["a", "c"]),
            "a running session it does not have"
        );
    }

    #[test]
    fn output_goes_to_the_session_that_has_the_pane_and_unknown_panes_mark_a_tending() {
        let shared = Arc::new(LinkShared::default());
        type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
        let got: Got = Arc::default();
        let target = |name: &'static str| {
            let got = Arc::clone(&got);
            Target::new(Box::new(move |_, data| {
                lock(&got).push((name.to_owned(), data.to_vec()));
            }))
        };
        let (api, web) = (target("api"), target("web"));
        {
            let mut routes = lock(&shared.routes);
            routes.sessions = [("api".into(), Arc::clone(&api)), ("web".into(), web)].into();
            routes.panes = [(0, "api".into()), (1, "web".into()), (2, "web".into())].into();
            routes.join();
        }
        let mut sink = output_sink(&shared);
        sink(2, b"w");
        sink(0, b"a");
        assert!(!shared.dirty.load(Ordering::SeqCst));
        sink(7, b"?");
        assert!(
            shared.dirty.load(Ordering::SeqCst),
            "a pane nobody knows yet"
        );
        assert_eq!(
            *lock(&got),
            [("web".into(), b"w".to_vec()), ("api".into(), b"a".to_vec())]
        );
        assert_eq!(api.changes(), 2, "routed, then one chunk");
    }

    #[test]
    fn a_pane_routed_late_counts_as_output_the_gate_could_not_read() {
        let grams = Arc::new(Grams::of(&crate::engine::status::Patterns::builtin()));
        let api = Target::gated(Box::new(|_, _| {}), grams);
        let mut routes = Routes {
            sessions: [("api".into(), Arc::clone(&api))].into(),
            ..Routes::default()
        };
        routes.join();
        let (mark, changes) = (api.status_mark(), api.changes());
        // Its pane printed before this tending: the printing went to no one.
        routes.panes = [(4, "api".into())].into();
        routes.join();
        assert!(
            api.status_mark() > mark,
            "the gate must let the next look capture"
        );
        assert!(api.changes() > changes);
        let (mark, changes) = (api.status_mark(), api.changes());
        routes.join();
        assert_eq!(
            (api.status_mark(), api.changes()),
            (mark, changes),
            "a tending that changes nothing costs no capture"
        );
    }

    #[test]
    fn a_renamed_window_leaves_the_captures_alone_and_a_layout_change_does_not() {
        let shared = Arc::new(LinkShared::default());
        let wakeups = Wakeups::default();
        let change = change_sink(&shared, &wakeups);
        change(&Event::Other("%window-renamed @3 sleep".into()));
        assert_eq!(shared.epoch.load(Ordering::SeqCst), 0);
        change(&Event::Other("%layout-change @3 b25d,80x24,0,0,3".into()));
        assert_eq!(shared.epoch.load(Ordering::SeqCst), 1);
        assert_eq!(wakeups.count(Topic::Records), 0, "nothing came or went");
        change(&Event::SessionsChanged);
        assert_eq!(wakeups.count(Topic::Records), 1);
    }
}
