//! The engine handle of a front end that is a client of the engine (`serve`): the same
//! [`EngineHandle`] the TUI held on the local `Deck`, answered over the API.
//!
//! What the engine pushes is read from the client's model, with no round trip: the records,
//! agent states, metrics, usage and host stats. Actions are commands; a command that changed
//! a sandbox returns once the model shows the change too, so the list the front end loads
//! next agrees with the reply. Previews and screens are subscriptions the engine feeds when
//! they change; a preview nobody asked for in a while is let go. Attaching runs the command
//! the engine names, on this host.
//!
//! When the connection ends (the engine was killed or restarted) the next call reconnects
//! through the `reconnect` the front end gave, at most once a second; until then calls fail
//! with `engine_unavailable`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::client::{Client, ClientError, PreviewText, ScreenFrames, decode};
use super::protocol::{Command, Snapshot};
use crate::capture::Frame;
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::wake::Topic;
use crate::engine::{Action, AgentReading, AttachCommand, EngineHandle, EngineInfo, ScreenSource};
use crate::error::{DeckError, Result};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{Payload, SandboxId, SandboxName, SandboxRecord, SandboxState};

/// How long a command that changed a sandbox waits for the model to show it.
const SETTLE: Duration = Duration::from_secs(3);
/// How long the first text of a new preview watch is waited for.
const FIRST_PREVIEW: Duration = Duration::from_secs(2);
/// A preview not asked for in this long is let go once another is asked for (the front end
/// moved on).
const PREVIEW_IDLE: Duration = Duration::from_secs(10);
/// What `start` would run is asked again after this long even if no sandbox changed.
const START_COMMANDS_FOR: Duration = Duration::from_secs(5);
/// Reconnecting is tried at most this often.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How many times a lifecycle action tries to reach an engine (see `client_for_action`).
const ACTION_TRIES: u32 = 4;

/// Makes a new connection to the engine (starting it if need be); blocking.
pub type Reconnect = Box<dyn Fn() -> Result<Client> + Send + Sync>;

pub struct RemoteEngine {
    connection: Mutex<Connection>,
    reconnect: Option<Reconnect>,
    info: EngineInfo,
    /// The rate screens are asked for at (the front end's fastest).
    screen_fps: f64,
    previews: Mutex<HashMap<SandboxName, Watched>>,
    /// What `start` would run, with the managed sandboxes and states it was asked for.
    start_commands: Mutex<Option<StartCommands>>,
    /// Woken by what the engine pushes, on every connection (issue 15).
    wakeups: crate::engine::wake::Wakeups,
    /// A wake-up to try reconnecting again is on its way.
    retrying: Arc<AtomicBool>,
}

/// What `start` would run in each managed sandbox, with the sandboxes and states it was
/// asked for and when: it changes with them, and (resuming or not) with the conversations
/// the agent wrote, which nothing pushes.
struct StartCommands {
    asked_for: Vec<(SandboxId, SandboxState)>,
    at: Instant,
    commands: HashMap<SandboxId, String>,
}

struct Connection {
    client: Client,
    tried: Option<Instant>,
}

struct Watched {
    text: PreviewText,
    asked: Instant,
}

impl RemoteEngine {
    /// A handle on the engine `client` is connected to, once it said what it is.
    pub async fn new(
        client: Client,
        reconnect: Option<Reconnect>,
        screen_fps: f64,
    ) -> Result<Self> {
        let info = client.send(Command::Info {}).await.and_then(decode);
        let info: EngineInfo = info.map_err(|e| older_engine(&client, e))?;
        let wakeups = crate::engine::wake::Wakeups::default();
        client.wake_on_events(wakeups.clone());
        Ok(RemoteEngine {
            connection: Mutex::new(Connection {
                client,
                tried: None,
            }),
            reconnect,
            info,
            screen_fps,
            previews: Mutex::new(HashMap::new()),
            start_commands: Mutex::new(None),
            wakeups,
            retrying: Arc::default(),
        })
    }

    /// The client of a live connection, reconnecting first when the last one ended.
    fn client(&self) -> Result<Client> {
        let mut connection = lock(&self.connection);
        let Some(why) = connection.client.closed() else {
            return Ok(connection.client.clone());
        };
        let Some(reconnect) = &self.reconnect else {
            return Err(deck_error(why));
        };
        if connection
            .tried
            .is_some_and(|t| t.elapsed() < RECONNECT_EVERY)
        {
            self.retry_soon();
            return Err(deck_error(why));
        }
        connection.tried = Some(Instant::now());
        tracing::info!("the connection to the engine ended ({why}): connecting again");
        let client = reconnect().inspect_err(|_| self.retry_soon())?;
        client.wake_on_events(self.wakeups.clone());
        connection.client = client.clone();
        connection.tried = None;
        // Watches belonged to the old connection.
        lock(&self.previews).clear();
        // The new connection's snapshot came with no event: the workers read it now.
        for topic in [Topic::Records, Topic::Agents, Topic::Usage] {
            self.wakeups.wake(topic);
        }
        Ok(client)
    }

    /// The client for a lifecycle action the user asked for. Right after an engine is killed
    /// every front end tries to start the next one, and a try that lost that race blocks the
    /// next for [`RECONNECT_EVERY`]: the action waits that out (a few times) instead of
    /// failing. Nothing was sent when `client` fails, so nothing runs twice.
    fn client_for_action(&self) -> Result<Client> {
        let mut tries = ACTION_TRIES;
        loop {
            match self.client() {
                Err(_) if self.reconnect.is_some() && tries > 1 => {
                    tries -= 1;
                    std::thread::sleep(RECONNECT_EVERY);
                }
                got => return got,
            }
        }
    }

    /// Wakes the front end's records refresh in [`RECONNECT_EVERY`], whose call tries
    /// again: with no connection nothing is pushed, and its workers only wait for pushes.
    fn retry_soon(&self) {
        if self.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        let (retrying, wakeups) = (Arc::clone(&self.retrying), self.wakeups.clone());
        let spawned = std::thread::Builder::new()
            .name("deck-reconnect".into())
            .spawn(move || {
                std::thread::sleep(RECONNECT_EVERY);
                retrying.store(false, Ordering::SeqCst);
                wakeups.wake(Topic::Records);
            });
        if spawned.is_err() {
            self.retrying.store(false, Ordering::SeqCst);
        }
    }

    /// Why the connection ended, once it did (a handle that reconnects makes a new one on
    /// its next call).
    pub fn closed(&self) -> Option<String> {
        lock(&self.connection)
            .client
            .closed()
            .map(|why| why.to_string())
    }

    /// `read` of the model as it is: only what it takes is copied (a worker asking for the
    /// agent states every round does not copy every record).
    fn read_model<T>(&self, read: impl FnOnce(&Snapshot) -> T) -> Result<T> {
        Ok(read(&self.client()?.model().borrow()))
    }

    /// `read` of the model, or of an empty one while the engine cannot be reached (a
    /// reading is not worth an error in the front end: `list` reports it).
    fn read_model_or_empty<T>(&self, read: impl Fn(&Snapshot) -> T) -> T {
        self.read_model(&read)
            .unwrap_or_else(|_| read(&Snapshot::default()))
    }

    /// Sends `command` and waits for its result as `T`.
    pub fn call<T: DeserializeOwned>(&self, command: Command) -> Result<T> {
        self.client()?
            .send(command)
            .wait()
            .and_then(decode)
            .map_err(deck_error)
    }

    /// A command that changes one sandbox: its record, once the model shows it as well.
    fn change(&self, command: Command) -> Result<SandboxRecord> {
        let removes = matches!(command, Command::Rm { .. });
        let client = self.client_for_action()?;
        let record: SandboxRecord = client
            .send(command)
            .wait()
            .and_then(decode)
            .map_err(deck_error)?;
        let model = client.model();
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            let shown = model
                .borrow()
                .sandboxes
                .iter()
                .find(|r| r.id == record.id)
                .map(|r| r.state);
            let settled = if removes {
                shown.is_none()
            } else {
                shown == Some(record.state)
            };
            if settled || client.closed().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(record)
    }

    /// The latest text of `name`'s pane, watching it first if nobody did.
    fn preview_text(&self, name: &SandboxName) -> Result<String> {
        let client = self.client()?;
        let mut previews = lock(&self.previews);
        // The pane asked for now is kept however long ago it was last asked for: a front end
        // that reads it when the engine pushes a new text asks nothing while it is silent.
        previews.retain(|n, w| n == name || w.asked.elapsed() < PREVIEW_IDLE);
        if let Some(watched) = previews.get_mut(name) {
            watched.asked = Instant::now();
            if let Some(update) = watched.text.latest() {
                return update.map_err(deck_error);
            }
        }
        let (text, reply) = client.subscribe_preview(name);
        // Not under the lock: the reply takes a round trip.
        drop(previews);
        reply.wait().map_err(deck_error)?;
        let deadline = Instant::now() + FIRST_PREVIEW;
        let first = loop {
            if let Some(update) = text.latest() {
                break update;
            }
            if Instant::now() >= deadline {
                break Ok(String::new());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let watched = Watched {
            text,
            asked: Instant::now(),
        };
        lock(&self.previews).insert(name.clone(), watched);
        first.map_err(deck_error)
    }
}

impl EngineHandle for RemoteEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    fn list(&self) -> Result<Vec<SandboxRecord>> {
        self.read_model(|m| m.sandboxes.clone())
    }

    fn execute(&self, action: Action) -> Result<SandboxRecord> {
        self.change(command_of(action)?)
    }

    fn restart(&self, name: &SandboxName, fresh: bool) -> Result<SandboxRecord> {
        self.change(Command::Restart {
            name: name.to_string(),
            fresh,
        })
    }

    fn start_commands(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, String> {
        let key: Vec<(SandboxId, SandboxState)> = records
            .iter()
            .filter(|r| r.managed)
            .map(|r| (r.id.clone(), r.state))
            .collect();
        let mut cached = lock(&self.start_commands);
        if let Some(known) = cached.as_ref()
            && known.asked_for == key
            && known.at.elapsed() < START_COMMANDS_FOR
        {
            return known.commands.clone();
        }
        match self.call::<HashMap<SandboxId, String>>(Command::StartCommands {}) {
            Ok(commands) => {
                *cached = Some(StartCommands {
                    asked_for: key,
                    at: Instant::now(),
                    commands: commands.clone(),
                });
                commands
            }
            Err(e) => {
                tracing::debug!("asking the engine what start would run: {e}");
                HashMap::new()
            }
        }
    }

    fn host_stats(&self) -> HostStats {
        self.read_model_or_empty(|m| m.host.clone().unwrap_or_default())
    }

    fn preview(&self, name: &SandboxName) -> Result<String> {
        self.preview_text(name)
    }

    fn agent_states(&self, records: &[SandboxRecord]) -> Vec<AgentReading> {
        self.read_model_or_empty(|m| {
            m.agents
                .iter()
                .filter(|a| records.iter().any(|r| r.id == a.id))
                .cloned()
                .collect()
        })
    }

    fn metrics(&self, records: &[SandboxRecord]) -> Option<HashMap<SandboxId, SandboxMetrics>> {
        self.read_model_or_empty(|m| {
            if m.metrics.is_empty() {
                return None;
            }
            let wanted = |id: &SandboxId| records.iter().any(|r| &r.id == id);
            Some(
                m.metrics
                    .iter()
                    .filter(|(id, _)| wanted(id))
                    .map(|(id, metrics)| (id.clone(), metrics.clone()))
                    .collect(),
            )
        })
    }

    fn usage_summary(&self) -> UsageSummary {
        self.read_model_or_empty(|m| m.usage.clone().unwrap_or_default())
    }

    fn egress_held(
        &self,
        records: &[SandboxRecord],
    ) -> HashMap<SandboxId, Vec<crate::egress::held::Held>> {
        self.read_model_or_empty(|m| {
            m.held
                .iter()
                .filter(|(id, _)| records.iter().any(|r| &r.id == *id))
                .map(|(id, held)| (id.clone(), held.clone()))
                .collect()
        })
    }

    fn egress_answer(
        &self,
        name: &SandboxName,
        rule: &str,
        reply: crate::egress::held::Reply,
    ) -> Result<SandboxRecord> {
        self.call(Command::EgressAnswer {
            name: name.to_string(),
            rule: rule.to_string(),
            answer: reply,
        })
    }

    fn attach_command(&self, name: &SandboxName) -> Result<AttachCommand> {
        self.call(Command::AttachCommand {
            name: name.to_string(),
        })
    }

    fn subscribe_screen(&self, name: &SandboxName) -> Result<Box<dyn ScreenSource>> {
        let (frames, reply) = self.client()?.subscribe_screen(name, self.screen_fps);
        reply.wait().map_err(deck_error)?;
        Ok(Box::new(RemoteScreen(frames)))
    }

    fn wakeups(&self) -> Option<crate::engine::wake::Wakeups> {
        Some(self.wakeups.clone())
    }

    fn pushes_readings(&self) -> bool {
        true
    }
}

/// A screen the engine sends: the latest frame, if a new one came.
struct RemoteScreen(ScreenFrames);

impl ScreenSource for RemoteScreen {
    fn next_if_changed(&mut self) -> std::result::Result<Option<Frame>, String> {
        self.0.latest_if_changed().map_err(|e| e.to_string())
    }
}

/// An action as the API command that does it.
fn command_of(action: Action) -> Result<Command> {
    Ok(match action {
        Action::Create(request) => {
            if request.profile.is_some() {
                return Err(DeckError::InvalidArgument {
                    what: "a profile".into(),
                    why: "is not passed to the engine over the API; create it with the CLI".into(),
                });
            }
            let shell = matches!(request.payload, Payload::Shell { .. });
            Command::Create {
                project_dir: absolute(request.project_dir)?,
                name: request.name,
                shell,
                args: request.payload.arguments().to_vec(),
                network: request.network,
                allow: request.allow,
                gh_token: request.gh_token,
                options: request.options,
            }
        }
        Action::Start { name, fresh } => Command::Start {
            name: name.to_string(),
            fresh,
        },
        Action::Stop { name } => Command::Stop {
            name: name.to_string(),
        },
        Action::Remove { name, force } => Command::Rm {
            name: name.to_string(),
            force,
        },
    })
}

/// A project dir as the engine needs it: absolute, a relative one taken from this process's
/// working dir (the engine's is another).
fn absolute(dir: std::path::PathBuf) -> Result<std::path::PathBuf> {
    if dir.is_absolute() {
        return Ok(dir);
    }
    let here =
        std::env::current_dir().map_err(|e| DeckError::io("finding the working directory", e))?;
    Ok(here.join(dir))
}

/// An engine of this protocol version that lacks a command this client needs is an older
/// build: say so, with both versions, rather than "unknown command".
fn older_engine(client: &Client, error: ClientError) -> DeckError {
    if error.kind() != "unknown_command" {
        return deck_error(error);
    }
    DeckError::api(
        "protocol_version",
        format!(
            "the engine (sandbox-deck {}) is older than this client (sandbox-deck {}) and lacks what it needs ({error}): stop that engine (its pid is in the runtime dir's sandbox-deck/{}) and open this one again",
            client.hello().engine,
            env!("CARGO_PKG_VERSION"),
            crate::engine::service::PID_FILE_NAME,
        ),
    )
}

/// A client error as the engine's own error kinds: the engine's kind kept, a lost
/// connection `engine_unavailable`.
pub fn deck_error(error: ClientError) -> DeckError {
    DeckError::api(error.kind(), error.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engine::CreateRequest;

    #[test]
    fn actions_become_the_commands_that_do_them() {
        let name = SandboxName::parse("api").unwrap();
        let create = Action::Create(CreateRequest {
            project_dir: PathBuf::from("/src/api"),
            name: Some("api".into()),
            payload: Payload::new(true, vec!["sleep".into(), "9".into()]),
            network: Some(crate::sandbox::Network::None),
            allow: Vec::new(),
            gh_token: true,
            profile: None,
            options: Default::default(),
        });
        let Command::Create {
            shell,
            args,
            gh_token,
            ..
        } = command_of(create).unwrap()
        else {
            panic!("not a create");
        };
        assert!(shell && gh_token);
        assert_eq!(args, ["sleep", "9"]);
        let rm = command_of(Action::Remove {
            name: name.clone(),
            force: true,
        })
        .unwrap();
        assert_eq!(
            rm,
            Command::Rm {
                name: "api".into(),
                force: true
            }
        );
    }

    #[test]
    fn the_engines_error_kinds_survive_and_a_lost_connection_is_unavailable() {
        let refused = ClientError::Engine {
            kind: "wrong_state".into(),
            message: "sandbox \"api\" is stopped".into(),
        };
        let error = deck_error(refused);
        assert_eq!(error.kind(), "wrong_state");
        assert_eq!(error.to_string(), "sandbox \"api\" is stopped");
        let lost = deck_error(ClientError::Closed {
            reason: "the stream ended".into(),
        });
        assert_eq!(lost.kind(), "engine_unavailable");
        let newer = deck_error(ClientError::Engine {
            kind: "quota".into(),
            message: "later".into(),
        });
        assert_eq!(newer.kind(), "internal");
    }
}
