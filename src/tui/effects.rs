//! Effects turned into work: engine calls on the blocking pool, each reporting back as an
//! action. Only the terminal-bound effects (attach, clipboard, bell, quit) stay in `app`.
//! Everything goes through the engine handle; the records the workers read travel on a
//! `watch` channel fed by the one refresh task.

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::action::{Action, Effect, Op};
use super::feed::Feeds;
use super::graphics::Graphics;
use crate::config::NotifyConfig;
use crate::engine::dir_completion::expand_home;
use crate::engine::status::notify;
use crate::engine::{Action as DeckAction, CreateRequest, EngineHandle};
use crate::sandbox::{SandboxName, SandboxRecord};

pub struct Runner {
    engine: Arc<dyn EngineHandle>,
    tx: UnboundedSender<Action>,
    /// Wakes the refresh task. It holds one request: asking while one waits changes nothing,
    /// so a slow registry never piles up reconciles.
    refresh: mpsc::Sender<()>,
    notify: Arc<NotifyConfig>,
    feeds: Feeds,
}

impl Runner {
    /// Starts the refresh task, which ends with `cancel`; the records it loads go to the
    /// reducer and then to `records`, for the workers.
    pub fn start(
        engine: Arc<dyn EngineHandle>,
        graphics: Graphics,
        notify: NotifyConfig,
        tx: UnboundedSender<Action>,
        records: watch::Sender<Vec<SandboxRecord>>,
        cancel: CancellationToken,
    ) -> Runner {
        let (refresh, requests) = mpsc::channel(1);
        tokio::spawn(refresh_task(
            Arc::clone(&engine),
            requests,
            tx.clone(),
            records,
            cancel,
        ));
        Runner {
            feeds: Feeds::new(Arc::clone(&engine), graphics, tx.clone()),
            engine,
            tx,
            refresh,
            notify: Arc::new(notify),
        }
    }

    pub fn run(&mut self, effect: Effect) {
        let engine = Arc::clone(&self.engine);
        let tx = self.tx.clone();
        match effect {
            // Full means a refresh is asked for already; closed means the TUI is ending.
            Effect::Refresh => drop(self.refresh.try_send(())),
            Effect::Capture(target) => blocking(tx, move || Action::Captured {
                result: engine.preview(&target.name).map_err(|e| e.to_string()),
                target,
            }),
            Effect::Run(op, name) => blocking(tx, move || Action::Done {
                op,
                result: run_op(engine.as_ref(), op, &name)
                    .map_err(|e| logged(&format!("{op:?} {name}"), e)),
                name,
            }),
            Effect::Create(request) => {
                blocking(tx, move || create(engine.as_ref(), *request, false));
            }
            Effect::CreateWithDir(request) => {
                blocking(tx, move || create(engine.as_ref(), *request, true));
            }
            Effect::CompletePath(input) => blocking(tx, move || Action::Completed {
                candidates: engine.complete_dir(&input),
                input,
            }),
            Effect::Notify(change) => {
                let config = Arc::clone(&self.notify);
                tokio::task::spawn_blocking(move || {
                    let (record, assessment) = *change;
                    match notify(&config, &record, &assessment) {
                        // Reaped on a thread of its own: a slow command must not hold up
                        // the blocking pool (or quitting, which waits for it).
                        Ok(Some(mut child)) => {
                            let _ = std::thread::spawn(move || child.wait());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("the notify command failed: {e}");
                            // The receiver is gone only when the TUI is quitting.
                            let _ = tx.send(Action::NotifyFailed(e.to_string()));
                        }
                    }
                });
            }
            Effect::AnswerHeld {
                name,
                target,
                reply,
            } => blocking(tx, move || Action::Answered {
                result: engine
                    .egress_answer(&name, &target, reply)
                    .map(|_| ())
                    .map_err(|e| logged(&format!("answering {target} for {name}"), e)),
                name,
                target,
                reply,
            }),
            Effect::WatchScreen(watch) => self.feeds.watch(watch),
            Effect::StopScreen(id) => self.feeds.stop(&id),
            // The app handles these: they need the terminal.
            Effect::Attach(_) | Effect::CopyToClipboard(_) | Effect::Bell | Effect::Quit => {}
        }
    }
}

/// One refresh per request, never two at once: the records, then what `start` would run in
/// each (slower: it reads the projects' conversations), then the records for the workers.
async fn refresh_task(
    engine: Arc<dyn EngineHandle>,
    mut requests: mpsc::Receiver<()>,
    tx: UnboundedSender<Action>,
    records: watch::Sender<Vec<SandboxRecord>>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            request = requests.recv() => if request.is_none() { return },
        }
        let list = Arc::clone(&engine);
        let Ok(result) = tokio::task::spawn_blocking(move || list.list()).await else {
            tracing::warn!("the refresh task ended: a records load panicked");
            return;
        };
        let result = result.map_err(|e| logged("loading the sandboxes", e));
        let loaded = result.as_ref().ok().cloned();
        if tx.send(Action::Loaded(result)).is_err() {
            return;
        }
        let Some(loaded) = loaded else {
            continue;
        };
        let commands = Arc::clone(&engine);
        let Ok((loaded, commands)) = tokio::task::spawn_blocking(move || {
            let found = commands.start_commands(&loaded);
            (loaded, found)
        })
        .await
        else {
            tracing::warn!("the refresh task ended: computing the start commands panicked");
            return;
        };
        // Here and below: the receiver is gone only when the TUI is quitting.
        let _ = tx.send(Action::StartCommands(commands));
        // Only now do the workers see them: what they report about a sandbox reaches the
        // reducer after the sandbox itself.
        records.send_replace(loaded);
    }
}

fn blocking(tx: UnboundedSender<Action>, work: impl FnOnce() -> Action + Send + 'static) {
    tokio::task::spawn_blocking(move || {
        // The receiver is gone only when the TUI is quitting.
        let _ = tx.send(work());
    });
}

/// The message the reducer shows, after a line in the log (the flash is gone in seconds).
fn logged(what: &str, e: crate::error::DeckError) -> String {
    tracing::warn!("{what} failed: {}", crate::error::report(&e));
    e.to_string()
}

/// Creates the sandbox; a missing project directory is made only when `make_dir` (the user
/// said yes to it), else reported so the form can ask.
fn create(engine: &dyn EngineHandle, mut request: CreateRequest, make_dir: bool) -> Action {
    let typed = request.project_dir.display().to_string();
    // Another host's engine judges its own paths (it refuses a missing dir).
    if !engine.files_are_here() {
        return Action::Created(
            engine
                .execute(DeckAction::Create(request))
                .map_err(|e| logged("creating a sandbox", e)),
        );
    }
    request.project_dir = expand_home(&request.project_dir);
    if !request.project_dir.exists() {
        if !make_dir {
            return Action::ProjectDirMissing(typed);
        }
        if let Err(e) = std::fs::create_dir_all(&request.project_dir) {
            return Action::Created(Err(format!(
                "cannot create the project directory {typed}: {e}"
            )));
        }
    }
    Action::Created(
        engine
            .execute(DeckAction::Create(request))
            .map_err(|e| logged("creating a sandbox", e)),
    )
}

fn run_op(
    engine: &dyn EngineHandle,
    op: Op,
    name: &SandboxName,
) -> crate::error::Result<SandboxRecord> {
    let name = name.clone();
    match op {
        Op::Start => engine.execute(DeckAction::Start { name, fresh: false }),
        Op::StartFresh => engine.execute(DeckAction::Start { name, fresh: true }),
        Op::Stop => engine.execute(DeckAction::Stop { name }),
        Op::Restart => engine.restart(&name, false),
        Op::Remove { force } => engine.execute(DeckAction::Remove { name, force }),
    }
}
