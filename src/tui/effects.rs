//! Effects turned into work: blocking `Deck` calls on the blocking pool, each reporting back
//! as an action. Only the terminal-bound effects (attach, clipboard, quit) stay in `app`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::UnboundedSender;

use super::action::{Action, Effect, Op};
use super::feed::Feeds;
use super::graphics::Graphics;
use super::workers::SharedRecords;
use crate::engine::status::notify;
use crate::engine::{Action as DeckAction, CreateRequest, Deck};

/// Directory completions offered at most.
const MAX_COMPLETIONS: usize = 200;

pub struct Runner {
    deck: Arc<Deck>,
    tx: UnboundedSender<Action>,
    /// One refresh at a time: a slow registry must not pile up reconciles.
    refreshing: Arc<AtomicBool>,
    /// The latest records, for the workers.
    records: SharedRecords,
    feeds: Feeds,
}

impl Runner {
    pub fn new(deck: Arc<Deck>, graphics: Graphics, tx: UnboundedSender<Action>) -> Runner {
        Runner {
            feeds: Feeds::new(Arc::clone(&deck), graphics, tx.clone()),
            deck,
            tx,
            refreshing: Arc::new(AtomicBool::new(false)),
            records: SharedRecords::default(),
        }
    }

    pub fn records(&self) -> SharedRecords {
        Arc::clone(&self.records)
    }

    pub fn run(&mut self, effect: Effect) {
        let deck = Arc::clone(&self.deck);
        let tx = self.tx.clone();
        match effect {
            Effect::Refresh => {
                if self.refreshing.swap(true, Ordering::AcqRel) {
                    return;
                }
                let refreshing = Arc::clone(&self.refreshing);
                let shared = Arc::clone(&self.records);
                tokio::task::spawn_blocking(move || {
                    let result = deck.list().map_err(|e| {
                        tracing::warn!(
                            "loading the sandboxes failed: {}",
                            crate::error::report(&e)
                        );
                        e.to_string()
                    });
                    let records = result.as_ref().ok().cloned();
                    refreshing.store(false, Ordering::Release);
                    // Here and below: the receiver is gone only when the TUI is quitting.
                    let _ = tx.send(Action::Loaded(result));
                    if let Some(records) = &records {
                        let _ = tx.send(Action::StartCommands(start_commands(&deck, records)));
                    }
                    // Only now do the workers see them: what they report about a sandbox
                    // reaches the reducer after the sandbox itself.
                    if let (Some(records), Ok(mut shared)) = (records, shared.lock()) {
                        *shared = records;
                    }
                });
            }
            Effect::SampleHost => blocking(tx, move || Action::HostSampled(deck.host_stats())),
            Effect::Capture(name) => blocking(tx, move || Action::Captured {
                result: deck.capture_pane(&name).map_err(|e| e.to_string()),
                name,
            }),
            Effect::Run(op, name) => blocking(tx, move || Action::Done {
                op,
                result: run_op(&deck, op, &name).map_err(|e| logged(&format!("{op:?} {name}"), e)),
                name,
            }),
            Effect::Create(request) => blocking(tx, move || create(&deck, *request, false)),
            Effect::CreateWithDir(request) => blocking(tx, move || create(&deck, *request, true)),
            Effect::CompletePath(input) => blocking(tx, move || Action::Completed {
                candidates: complete_dir(&input),
                input,
            }),
            Effect::Notify(change) => {
                tokio::task::spawn_blocking(move || {
                    let (record, assessment) = *change;
                    match notify(&deck.config.notify, &record, &assessment) {
                        // Reaped on a thread of its own: a slow command must not hold up
                        // the blocking pool (or quitting, which waits for it).
                        Ok(Some(mut child)) => {
                            let _ = std::thread::spawn(move || child.wait());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("the notify command failed: {e}");
                            let _ = tx.send(Action::NotifyFailed(e.to_string()));
                        }
                    }
                });
            }
            Effect::WatchScreen(watch) => self.feeds.watch(watch),
            Effect::StopScreen(name) => self.feeds.stop(&name),
            // The app handles these: they need the terminal.
            Effect::Attach(_) | Effect::CopyToClipboard(_) | Effect::Bell | Effect::Quit => {}
        }
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
fn create(deck: &Deck, mut request: CreateRequest, make_dir: bool) -> Action {
    let typed = request.project_dir.display().to_string();
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
        deck.execute(DeckAction::Create(request))
            .map_err(|e| logged("creating a sandbox", e)),
    )
}

/// What `start` would run in each managed sandbox: resuming or not is decided now, from the
/// project's conversations, exactly as `start` decides it.
fn start_commands(
    deck: &Deck,
    records: &[crate::sandbox::SandboxRecord],
) -> std::collections::HashMap<String, String> {
    records
        .iter()
        .filter(|r| r.managed)
        .map(|r| {
            let command = deck
                .start_command(r, false)
                .unwrap_or_else(|e| format!("(cannot start: {e})"));
            (r.name.to_string(), command)
        })
        .collect()
}

fn run_op(deck: &Deck, op: Op, name: &str) -> crate::error::Result<crate::sandbox::SandboxRecord> {
    let name = name.to_owned();
    match op {
        Op::Start => deck.execute(DeckAction::Start { name, fresh: false }),
        Op::StartFresh => deck.execute(DeckAction::Start { name, fresh: true }),
        Op::Stop => deck.execute(DeckAction::Stop { name }),
        Op::Restart => deck.restart(&name, false),
        Op::Remove { force } => deck.execute(DeckAction::Remove { name, force }),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `~/x` → `$HOME/x`; anything else unchanged.
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), home()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

/// The directories that complete `input`, written the way the user wrote the parent
/// (so `~/sr` completes to `~/src`). Hidden ones only when asked for with a dot.
pub fn complete_dir(input: &str) -> Vec<String> {
    let (parent, prefix) = match input.rfind('/') {
        Some(i) => (&input[..=i], &input[i + 1..]),
        None => ("./", input),
    };
    let Ok(entries) = std::fs::read_dir(expand_home(Path::new(parent))) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && (prefix.starts_with('.') || !n.starts_with('.')))
        .map(|n| {
            if input.contains('/') {
                format!("{parent}{n}")
            } else {
                n
            }
        })
        .take(MAX_COMPLETIONS)
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_complete_and_files_do_not() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["alpha", "alps", ".hidden"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("alfile"), "").unwrap();
        let base = format!("{}/", root.path().display());
        assert_eq!(
            complete_dir(&format!("{base}al")),
            [format!("{base}alpha"), format!("{base}alps")]
        );
        assert_eq!(
            complete_dir(&format!("{base}.h")),
            [format!("{base}.hidden")]
        );
        assert_eq!(complete_dir(&base).len(), 2);
        assert!(complete_dir(&format!("{base}missing/x")).is_empty());
    }
}
