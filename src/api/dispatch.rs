//! Commands from clients, run through the engine handle: names checked before anything
//! happens, commands on one sandbox one at a time (a second stop waits for the first and
//! then finds the sandbox stopped), every mutating one written to the audit log.

use std::collections::HashMap;
use std::path::Component;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::audit::AuditLog;
use super::hub::Hub;
use super::outputs::Outputs;
use super::previews::Previews;
use super::protocol::{Command, ServerMessage};
use super::screens::Screens;
use crate::engine::{Action, CreateRequest, Deck, EngineHandle};
use crate::error::DeckError;
use crate::sandbox::{Payload, ProjectDir, SandboxName};

/// Who sent a command.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub connection: u64,
    /// A read-only connection: every mutating command is answered `forbidden`. No
    /// connection is read-only in protocol version 1; the check is here so the capability
    /// (`docs/protocol.md`) means what it says the day one is.
    pub read_only: bool,
}

pub struct Dispatcher {
    deck: Arc<Deck>,
    hub: Arc<Hub>,
    audit: AuditLog,
    /// One lock per sandbox name.
    sandboxes: Mutex<HashMap<SandboxName, Arc<tokio::sync::Mutex<()>>>>,
    /// Wakes the publisher after a change, so clients see it at once.
    changed: Arc<Notify>,
    pub screens: Screens,
    pub previews: Previews,
    pub outputs: Outputs,
}

/// A command's failure: the `--json` error kind and its message.
struct Failure {
    kind: &'static str,
    message: String,
}

impl From<DeckError> for Failure {
    fn from(e: DeckError) -> Failure {
        Failure {
            kind: e.kind(),
            message: crate::error::report(&e),
        }
    }
}

impl Dispatcher {
    pub fn new(deck: Arc<Deck>, hub: Arc<Hub>, changed: Arc<Notify>) -> Dispatcher {
        let audit = AuditLog::new(deck.paths.api_audit_log());
        Dispatcher {
            screens: Screens::new(Arc::clone(&deck), Arc::clone(&hub)),
            previews: Previews::new(Arc::clone(&deck), Arc::clone(&hub)),
            outputs: Outputs::new(Arc::clone(&deck), Arc::clone(&hub)),
            deck,
            hub,
            audit,
            sandboxes: Mutex::new(HashMap::new()),
            changed,
        }
    }

    /// Runs one command and returns its reply.
    pub async fn run(&self, peer: Peer, id: u64, command: Command) -> ServerMessage {
        let mut started = chrono::Utc::now();
        let result = if peer.read_only && command.mutates() {
            Err(Failure {
                kind: "forbidden",
                message: format!(
                    "this connection is read-only: {} is refused",
                    command.name()
                ),
            })
        } else {
            match self.run_subscription(peer, &command).await {
                Some(result) => result,
                None => self.run_locked(&command, &mut started).await,
            }
        };
        self.leave_if_gone(peer);
        if command.mutates() {
            let outcome = result.as_ref().map_or_else(|f| f.kind, |_| "ok");
            let who = (peer.uid, peer.connection);
            self.audit.record(who, &command, started, outcome);
            self.changed.notify_one();
        }
        match result {
            Ok(result) => ServerMessage::Ok { id, result },
            Err(f) => ServerMessage::error(Some(id), f.kind, f.message),
        }
    }

    /// A subscription that outlived its connection (the connection ended while it was being
    /// made) is ended here.
    fn leave_if_gone(&self, peer: Peer) {
        if !self.hub.is_member(peer.connection) {
            self.screens.leave(peer.connection);
            self.previews.leave(peer.connection);
            self.outputs.leave(peer.connection);
        }
    }

    /// Subscriptions, which belong to the connection; None for other commands.
    async fn run_subscription(
        &self,
        peer: Peer,
        command: &Command,
    ) -> Option<Result<Value, Failure>> {
        let connection = peer.connection;
        let result = match command {
            Command::SubscribePreview { name } => match SandboxName::parse(name) {
                Ok(name) => self
                    .previews
                    .subscribe(connection, name)
                    .await
                    .map(|()| Value::Null)
                    .map_err(Failure::from),
                Err(e) => Err(e.into()),
            },
            Command::UnsubscribePreview { name } => SandboxName::parse(name)
                .map(|name| {
                    self.previews.unsubscribe(connection, &name);
                    Value::Null
                })
                .map_err(Failure::from),
            Command::SubscribeOutput { name } => match SandboxName::parse(name) {
                Ok(name) => self
                    .outputs
                    .subscribe(connection, name)
                    .await
                    .map(|()| Value::Null)
                    .map_err(Failure::from),
                Err(e) => Err(e.into()),
            },
            Command::UnsubscribeOutput { name } => SandboxName::parse(name)
                .map(|name| {
                    self.outputs.unsubscribe(connection, &name);
                    Value::Null
                })
                .map_err(Failure::from),
            Command::SubscribeScreen { name, fps } => match SandboxName::parse(name) {
                Ok(name) => self
                    .screens
                    .subscribe(peer.connection, name.clone(), fps.unwrap_or(1.0))
                    .await
                    .map_err(Failure::from)
                    .and_then(|fps| json(&serde_json::json!({"name": name, "fps": fps}))),
                Err(e) => Err(e.into()),
            },
            Command::UnsubscribeScreen { name } => match SandboxName::parse(name) {
                Ok(name) => {
                    self.screens.unsubscribe(peer.connection, &name);
                    Ok(Value::Null)
                }
                Err(e) => Err(e.into()),
            },
            Command::ScreenStats {} => json(&self.screens.stats()),
            _ => return None,
        };
        Some(result)
    }

    /// `started` is set to when the command got its sandbox's turn.
    async fn run_locked(
        &self,
        command: &Command,
        started: &mut chrono::DateTime<chrono::Utc>,
    ) -> Result<Value, Failure> {
        let Some(name) = sandbox_of(command)? else {
            return self.run_free(command).await;
        };
        let lock = {
            let mut locks = self.sandboxes.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(name).or_default())
        };
        let _turn = lock.lock().await;
        *started = chrono::Utc::now();
        let deck = Arc::clone(&self.deck);
        let command = command.clone();
        tokio::task::spawn_blocking(move || execute(&deck, command))
            .await
            .map_err(|e| Failure {
                kind: "internal",
                message: format!("the command's task failed: {e}"),
            })?
    }

    /// Commands that read the engine's truth and touch no sandbox.
    async fn run_free(&self, command: &Command) -> Result<Value, Failure> {
        let snapshot = self.hub.snapshot();
        match command {
            Command::Status { name: None } => json(&snapshot.agents),
            Command::Usage {} => json(&snapshot.usage),
            Command::HostStats {} => json(&snapshot.host),
            Command::Snapshot {} => json(&snapshot),
            Command::Info {} => json(&self.deck.info()),
            Command::StartCommands {} => {
                let deck = Arc::clone(&self.deck);
                blocking(move || json(&deck.start_commands(&deck.list()?))).await
            }
            Command::AttachCommand { name } => {
                let name = SandboxName::parse(name)?;
                let deck = Arc::clone(&self.deck);
                blocking(move || json(&EngineHandle::attach_command(deck.as_ref(), &name)?)).await
            }
            _ => {
                let deck = Arc::clone(&self.deck);
                let command = command.clone();
                tokio::task::spawn_blocking(move || report(&deck, command))
                    .await
                    .map_err(|e| Failure {
                        kind: "internal",
                        message: format!("the command's task failed: {e}"),
                    })?
            }
        }
    }
}

/// The list and the CLI's reports, blocking (on a blocking thread).
fn report(deck: &Deck, command: Command) -> Result<Value, Failure> {
    match command {
        Command::StatusReport { name, metrics } => {
            let records = match name {
                Some(name) => vec![deck.show(&name)?],
                None => deck.list()?,
            };
            json(&deck.status_report(&records, metrics))
        }
        Command::UsageReport { name, since, by } => {
            let query =
                deck.usage_query(name.as_deref(), since.as_deref(), by.unwrap_or_default())?;
            json(&deck.usage_report_kept(&query)?)
        }
        Command::CompleteDir { input } => {
            json(&crate::engine::dir_completion::complete_dir(&input))
        }
        Command::PurgeProject { project_dir } => {
            json(&deck.purge_project_state(&removed_project(&project_dir)?)?)
        }
        _ => json(&deck.list()?),
    }
}

/// A project dir to purge the state of: it may be gone by now (its state is what is left),
/// so an absolute, normalised path that no longer exists is taken as it is.
fn removed_project(path: &std::path::Path) -> Result<ProjectDir, Failure> {
    match ProjectDir::parse(path) {
        Ok(project) => Ok(project),
        Err(e) if path.exists() => Err(e.into()),
        Err(e) => {
            let normal = path.is_absolute()
                && path
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            if !normal || path == std::path::Path::new("/") {
                return Err(e.into());
            }
            serde_json::from_value(serde_json::json!(path)).map_err(|e| Failure {
                kind: "invalid_project_dir",
                message: e.to_string(),
            })
        }
    }
}

/// The sandbox a command is about, its name checked before anything else happens.
fn sandbox_of(command: &Command) -> Result<Option<SandboxName>, Failure> {
    let name = match command {
        Command::Show { name }
        | Command::Start { name, .. }
        | Command::Stop { name }
        | Command::Restart { name, .. }
        | Command::Rm { name, .. }
        | Command::Preview { name }
        | Command::Status { name: Some(name) }
        | Command::EgressAnswer { name, .. } => name,
        Command::Create {
            name: Some(name), ..
        } => name,
        Command::Create {
            name: None,
            project_dir,
            ..
        } => return Ok(Some(SandboxName::from_dir(project_dir))),
        _ => return Ok(None),
    };
    Ok(Some(SandboxName::parse(name)?))
}

/// A command on one sandbox, blocking (on a blocking thread).
fn execute(deck: &Deck, command: Command) -> Result<Value, Failure> {
    let name = |n: &str| SandboxName::parse(n);
    match command {
        Command::Show { name } => json(&deck.show(&name)?),
        Command::Create {
            project_dir,
            name,
            shell,
            args,
            network,
            allow,
            gh_token,
            options,
        } => json(&deck.execute(Action::Create(CreateRequest {
            project_dir,
            name,
            payload: Payload::new(shell, args),
            network,
            allow,
            gh_token,
            profile: None,
            options,
        }))?),
        Command::Start { name: n, fresh } => json(&deck.execute(Action::Start {
            name: name(&n)?,
            fresh,
        })?),
        Command::Stop { name: n } => json(&deck.execute(Action::Stop { name: name(&n)? })?),
        Command::Restart { name: n, fresh } => {
            json(&EngineHandle::restart(deck, &name(&n)?, fresh)?)
        }
        Command::Rm { name: n, force } => json(&deck.execute(Action::Remove {
            name: name(&n)?,
            force,
        })?),
        Command::Preview { name: n } => json(&EngineHandle::preview(deck, &name(&n)?)?),
        Command::EgressAnswer {
            name: n,
            rule,
            answer,
        } => json(
            &deck
                .egress_answer(name(&n)?.as_str(), &rule, answer.scope())?
                .record,
        ),
        Command::Status { name: Some(n) } => {
            let record = deck.show(&n)?;
            let readings = deck.agent_states(std::slice::from_ref(&record));
            json(&readings)
        }
        other => Err(Failure {
            kind: "internal",
            message: format!("{} is not a sandbox command", other.name()),
        }),
    }
}

/// `work` on the blocking pool.
async fn blocking(
    work: impl FnOnce() -> Result<Value, Failure> + Send + 'static,
) -> Result<Value, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure {
            kind: "internal",
            message: format!("the command's task failed: {e}"),
        })?
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure {
        kind: "internal",
        message: format!("encoding the result: {e}"),
    })
}
