//! The tasks that feed the action channel: terminal input and the timers. They stop while
//! a child owns the terminal (attach) and start again after. The clock has no timer here:
//! the main loop sleeps until the next time a figure on screen changes (`tui::clock`).

use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::action::Action;

#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// The records' timer: a poll, or only a safety net when the engine pushes them.
    pub monitor: Duration,
    /// The preview's poll; none when the engine pushes each new preview text (issue 15).
    pub preview: Option<Duration>,
    /// The records' poll while the Info tab is on screen, when `monitor` is only a safety
    /// net: what `start` would run there changes with files nothing pushes.
    pub info: Option<Duration>,
    /// Read keys, mouse and resizes from the terminal (not when a test drives the loop).
    pub read_terminal: bool,
}

pub struct Inputs {
    tasks: Vec<JoinHandle<()>>,
}

impl Inputs {
    pub fn start(tx: &UnboundedSender<Action>, intervals: Intervals) -> Inputs {
        let mut tasks = vec![tokio::spawn(every(intervals.monitor, tx.clone(), || {
            Action::MonitorTick
        }))];
        if let Some(preview) = intervals.preview {
            tasks.push(tokio::spawn(every(preview, tx.clone(), || {
                Action::PreviewTick
            })));
        }
        if intervals.read_terminal {
            tasks.push(tokio::spawn(read_terminal(tx.clone())));
        }
        Inputs { tasks }
    }

    /// No tasks (while a child owns the terminal).
    pub fn none() -> Inputs {
        Inputs { tasks: Vec::new() }
    }

    /// Ends the tasks and waits until they are gone, so the terminal reader has let go of
    /// stdin before anyone else reads it.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            // An aborted task ends with a "cancelled" error: that is what was asked.
            let _ = task.await;
        }
    }
}

async fn read_terminal(tx: UnboundedSender<Action>) {
    let mut events = EventStream::new();
    while let Some(Ok(event)) = events.next().await {
        let action = match event {
            Event::Key(key) => Action::Key(key),
            Event::Mouse(mouse) => Action::Mouse(mouse),
            Event::Paste(text) => Action::Paste(text),
            Event::Resize(width, height) => Action::Resize(width, height),
            Event::FocusGained | Event::FocusLost => continue,
        };
        if tx.send(action).is_err() {
            break;
        }
    }
}

async fn every(period: Duration, tx: UnboundedSender<Action>, make: impl Fn() -> Action) {
    let mut interval = tokio::time::interval(period);
    // After a pause (attach, a slow draw) one tick is enough, not a burst.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if tx.send(make()).is_err() {
            break;
        }
    }
}

/// SIGTERM and SIGHUP end the TUI through the normal quit path, which restores the terminal.
/// These run for the whole session, attach included: once tokio handles a signal, a signal
/// with no listener would be lost.
pub fn watch_signals(tx: &UnboundedSender<Action>) {
    tokio::spawn(on_signal(SignalKind::terminate(), tx.clone()));
    tokio::spawn(on_signal(SignalKind::hangup(), tx.clone()));
}

async fn on_signal(kind: SignalKind, tx: UnboundedSender<Action>) {
    let Ok(mut signals) = signal(kind) else {
        return;
    };
    if signals.recv().await.is_some() {
        // No receiver: the TUI is already on its way out.
        let _ = tx.send(Action::Terminate);
    }
}
