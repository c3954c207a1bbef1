//! The engine handle of `mirror a b c`: several hosts behind the one door the TUI knows.
//! Each host is a [`Member`] whose connection a task of its own keeps up; this handle
//! reads what they have and sends each call to the host of the sandbox it names.
//!
//! A sandbox is known here as `name@host` ([`SandboxName::on_host`]): the records, agent
//! readings and the names the TUI passes back all carry their host, so two hosts may have
//! a sandbox of the same name. A bare name (typed in the palette) goes to the one host
//! that has it. A new sandbox's project dir names its host the way scp does,
//! `host:/path`, and its completion lists the hosts, then that host's dirs.

use std::collections::HashMap;
use std::sync::Arc;

use super::connection::ConnectOptions;
use super::fleet_member::Member;
use super::fleet_usage::merged_usage;
use super::mirror::MirrorEngine;
use super::target::Target;
use crate::egress::held::{Held, Reply};
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::wake::Wakeups;
use crate::engine::{
    Action, AgentReading, AttachCommand, EngineHandle, EngineInfo, HostLink, ScreenSource,
};
use crate::error::{DeckError, Result};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};

pub struct FleetEngine {
    members: Vec<Arc<Member>>,
    wakeups: Wakeups,
    /// The front end's own: the hosts answer later, each its own way.
    info: EngineInfo,
}

impl FleetEngine {
    /// Starts connecting to every target, each in a task on `runtime`; returns at once.
    pub fn start(
        targets: Vec<Target>,
        options: &ConnectOptions,
        screen_fps: f64,
        info: EngineInfo,
        runtime: &tokio::runtime::Handle,
    ) -> FleetEngine {
        let wakeups = Wakeups::default();
        let members = targets
            .into_iter()
            .map(|t| Member::start(t, options.clone(), screen_fps, &wakeups, runtime))
            .collect();
        FleetEngine {
            members,
            wakeups,
            info,
        }
    }

    fn member(&self, host: &str) -> Option<&Arc<Member>> {
        self.members.iter().find(|m| m.host == host)
    }

    /// The member whose `host:` starts `text`, and the rest (a host may hold a `:` itself,
    /// as a ws:// one does).
    fn split_dir<'a>(&self, text: &'a str) -> Option<(&Arc<Member>, &'a str)> {
        self.members
            .iter()
            .find_map(|m| Some((m, text.strip_prefix(&m.host)?.strip_prefix(':')?)))
    }

    fn hosts(&self) -> String {
        let hosts: Vec<&str> = self.members.iter().map(|m| m.host.as_str()).collect();
        hosts.join(", ")
    }

    /// The host of `name` and the name its engine knows.
    fn route(&self, name: &SandboxName) -> Result<(&Arc<Member>, SandboxName)> {
        let (bare, host) = name.split_host();
        if let Some(host) = host {
            let member = self
                .member(host)
                .ok_or_else(|| DeckError::InvalidArgument {
                    what: name.to_string(),
                    why: format!(
                        "{host} is not one of this mirror's hosts ({})",
                        self.hosts()
                    ),
                })?;
            return Ok((member, bare));
        }
        let having: Vec<&Arc<Member>> = self.members.iter().filter(|m| m.has(&bare)).collect();
        match having.as_slice() {
            [member] => Ok((member, bare)),
            [] => Err(DeckError::NotFound {
                name: bare.to_string(),
            }),
            _ => Err(DeckError::InvalidArgument {
                what: bare.to_string(),
                why: format!("several hosts have it: say which, as {bare}@HOST"),
            }),
        }
    }

    /// The engine of `name`'s host and the name it knows.
    fn engine_of(
        &self,
        name: &SandboxName,
    ) -> Result<(&Arc<Member>, Arc<MirrorEngine>, SandboxName)> {
        let (member, bare) = self.route(name)?;
        Ok((member, member.engine()?, bare))
    }

    /// A new sandbox's host, from its project dir `host:/path`, and the path there.
    fn host_of_dir(&self, dir: &std::path::Path) -> Result<(&Arc<Member>, std::path::PathBuf)> {
        let text = dir.to_string_lossy();
        let Some((member, path)) = self.split_dir(&text) else {
            return Err(DeckError::InvalidArgument {
                what: text.into_owned(),
                why: format!(
                    "say on which host, as HOST:/path (this mirror's hosts: {})",
                    self.hosts()
                ),
            });
        };
        Ok((member, path.into()))
    }

    fn up(&self) -> impl Iterator<Item = (&Arc<Member>, Arc<MirrorEngine>)> {
        self.members
            .iter()
            .filter_map(|m| Some((m, m.engine_if_up()?)))
    }
}

impl EngineHandle for FleetEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    /// Every host's sandboxes; a host that is down shows the ones it had (the TUI greys
    /// them), so this never fails.
    fn list(&self) -> Result<Vec<SandboxRecord>> {
        Ok(self.members.iter().flat_map(|m| m.records()).collect())
    }

    fn execute(&self, action: Action) -> Result<SandboxRecord> {
        let (member, action) = match action {
            Action::Create(mut request) => {
                let (member, path) = self.host_of_dir(&request.project_dir)?;
                request.project_dir = path;
                (member, Action::Create(request))
            }
            Action::Start { name, fresh } => {
                let (member, name) = self.route(&name)?;
                (member, Action::Start { name, fresh })
            }
            Action::Stop { name } => {
                let (member, name) = self.route(&name)?;
                (member, Action::Stop { name })
            }
            Action::Remove { name, force } => {
                let (member, name) = self.route(&name)?;
                (member, Action::Remove { name, force })
            }
        };
        let record = member.engine()?.execute(action)?;
        Ok(member.qualified(record))
    }

    fn restart(&self, name: &SandboxName, fresh: bool) -> Result<SandboxRecord> {
        let (member, engine, bare) = self.engine_of(name)?;
        Ok(member.qualified(engine.restart(&bare, fresh)?))
    }

    fn start_commands(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, String> {
        self.up()
            .flat_map(|(_, engine)| engine.start_commands(records))
            .collect()
    }

    /// No one host's: the header shows each host's link instead.
    fn host_stats(&self) -> HostStats {
        HostStats::default()
    }

    fn preview(&self, name: &SandboxName) -> Result<String> {
        let (_, engine, bare) = self.engine_of(name)?;
        engine.preview(&bare)
    }

    fn agent_states(&self, records: &[SandboxRecord]) -> Vec<AgentReading> {
        self.up()
            .flat_map(|(member, engine)| {
                let mut readings = engine.agent_states(records);
                for reading in &mut readings {
                    reading.name = SandboxName::on_host(&reading.name, &member.host);
                }
                readings
            })
            .collect()
    }

    fn metrics(&self, records: &[SandboxRecord]) -> Option<HashMap<SandboxId, SandboxMetrics>> {
        let mut all: Option<HashMap<SandboxId, SandboxMetrics>> = None;
        for (_, engine) in self.up() {
            if let Some(metrics) = engine.metrics(records) {
                all.get_or_insert_with(HashMap::new).extend(metrics);
            }
        }
        all
    }

    fn usage_summary(&self) -> UsageSummary {
        let summaries: Vec<(String, UsageSummary)> = self
            .up()
            .map(|(member, engine)| (member.host.clone(), engine.usage_summary()))
            .collect();
        merged_usage(summaries)
    }

    fn egress_held(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, Vec<Held>> {
        self.up()
            .flat_map(|(_, engine)| engine.egress_held(records))
            .collect()
    }

    fn egress_answer(&self, name: &SandboxName, rule: &str, reply: Reply) -> Result<SandboxRecord> {
        let (member, engine, bare) = self.engine_of(name)?;
        Ok(member.qualified(engine.egress_answer(&bare, rule, reply)?))
    }

    fn attach_command(&self, name: &SandboxName) -> Result<AttachCommand> {
        let (_, engine, bare) = self.engine_of(name)?;
        engine.attach_command(&bare)
    }

    fn subscribe_screen(&self, name: &SandboxName) -> Result<Box<dyn ScreenSource>> {
        let (_, engine, bare) = self.engine_of(name)?;
        engine.subscribe_screen(&bare)
    }

    /// `host:/pa` completes through that host's engine; anything else completes the hosts.
    fn complete_dir(&self, input: &str) -> Vec<String> {
        if let Some((member, path)) = self.split_dir(input) {
            let Some(engine) = member.engine_if_up() else {
                return Vec::new();
            };
            return engine
                .complete_dir(path)
                .into_iter()
                .map(|dir| format!("{}:{dir}", member.host))
                .collect();
        }
        // The form completes one candidate with a `/`: `b:` becomes `b:/`.
        let typed = input.trim_start_matches('/');
        self.members
            .iter()
            .filter(|m| m.host.starts_with(typed))
            .map(|m| format!("{}:", m.host))
            .collect()
    }

    fn files_are_here(&self) -> bool {
        false
    }

    fn links(&self) -> Vec<HostLink> {
        self.members.iter().map(|m| m.link()).collect()
    }

    /// Every host's wake-ups, relayed into one (and a host that comes or goes wakes the
    /// records): the workers wait on the fleet as on one engine.
    fn wakeups(&self) -> Option<Wakeups> {
        Some(self.wakeups.clone())
    }
}
