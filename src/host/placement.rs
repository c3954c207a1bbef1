//! Where the long-lived host processes we start (the private tmux server, the Xvfbs, the
//! engine) are placed, so that logging out of SSH does not end them.
//!
//! On a host with a systemd user manager, logind puts everything a login starts into that
//! login's session scope and, with `KillUserProcesses=yes`, kills the scope at logout: our
//! own session (setsid) does not help, since it is the cgroup that is killed. So there we
//! start them inside a transient scope of the user manager (`systemd-run --user --scope`),
//! which lives as long as the user manager does: until the last logout, or for good with
//! lingering (`loginctl enable-linger`, which `doctor` checks). A scope, not a service: the
//! command still runs as our child with our environment and stdio, and keeps its pid
//! (`systemd-run --scope` registers itself and then execs the command), so callers that
//! wait for a pid (Xvfb's lock file) work unchanged.
//!
//! Without a user manager, the argv is left as it is.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// What `systemctl --user is-system-running` prints when a user manager answers, whatever
/// its health: anything else (`offline`, `unknown`, nothing) means there is none to talk to.
const ANSWERING_STATES: &[&str] = &[
    "initializing",
    "starting",
    "running",
    "degraded",
    "maintenance",
];

/// What the environment must keep for `systemd-run --user` to find the user manager (its
/// private socket is under `$XDG_RUNTIME_DIR/systemd/`; the bus is the fallback).
pub const SCOPE_ENV: &[&str] = &["XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"];

/// Where a host process we start runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// As our own child, as it is (no user manager here).
    Direct,
    /// In a transient scope of the user's systemd manager, through this `systemd-run`.
    UserScope { systemd_run: PathBuf },
}

/// What was observed on this host, for [`decide`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `$XDG_RUNTIME_DIR/systemd/private` exists: the user manager's own socket.
    pub private_socket: bool,
    /// The first line `systemctl --user is-system-running` printed, when it ran.
    pub system_state: Option<String>,
    /// `systemd-run` on PATH.
    pub systemd_run: Option<PathBuf>,
}

/// A user manager exists when its private socket is there or `systemctl --user` reaches it;
/// `doctor` asks this to know whether lingering matters.
pub fn has_user_manager(facts: &Facts) -> bool {
    facts.private_socket
        || facts
            .system_state
            .as_deref()
            .is_some_and(|s| ANSWERING_STATES.contains(&s.trim()))
}

/// Into a user scope when there is a user manager and `systemd-run` to reach it.
pub fn decide(facts: &Facts) -> Placement {
    match &facts.systemd_run {
        Some(systemd_run) if has_user_manager(facts) => Placement::UserScope {
            systemd_run: systemd_run.clone(),
        },
        _ => Placement::Direct,
    }
}

impl Facts {
    /// Looks at this host: a stat, and `systemctl` only when the socket is not there.
    pub fn observe() -> Facts {
        let private_socket = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|dir| !dir.is_empty())
            .is_some_and(|dir| Path::new(&dir).join("systemd/private").exists());
        let system_state = if private_socket {
            None
        } else {
            super::which("systemctl").and_then(|systemctl| system_state(&systemctl))
        };
        Facts {
            private_socket,
            system_state,
            systemd_run: super::which("systemd-run"),
        }
    }
}

fn system_state(systemctl: &Path) -> Option<String> {
    let mut command = Command::new(systemctl);
    command.args(["--user", "is-system-running"]);
    super::allowlisted_env(&mut command, SCOPE_ENV);
    // It exits non-zero for every state but `running`: the printed state is the answer.
    let out = command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

impl Placement {
    /// This host's placement, observed once per process (when the first process is started).
    pub fn current() -> &'static Placement {
        static CURRENT: OnceLock<Placement> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let placement = decide(&Facts::observe());
            tracing::debug!(?placement, "placement of host processes");
            placement
        })
    }

    /// The argv that runs `argv` placed: unchanged when [`Placement::Direct`], else inside
    /// the scope `sandbox-deck-<what>-<id>.scope`. `what` and `id` are ours (letters,
    /// digits, `-`), never user data; anything else in them is replaced by `_`.
    pub fn wrap(&self, what: &str, id: &str, argv: &[&OsStr]) -> Vec<OsString> {
        match self {
            Placement::Direct => argv.iter().map(|a| a.to_os_string()).collect(),
            Placement::UserScope { systemd_run } => {
                let unit = format!("--unit=sandbox-deck-{}-{}", unit_part(what), unit_part(id));
                let mut wrapped: Vec<OsString> = vec![
                    systemd_run.into(),
                    "--user".into(),
                    "--scope".into(),
                    "--quiet".into(),
                    unit.into(),
                    "--collect".into(),
                    "--".into(),
                ];
                wrapped.extend(argv.iter().map(|a| a.to_os_string()));
                wrapped
            }
        }
    }

    /// A `Command` for `program args…` placed (see [`Placement::wrap`]), with the
    /// environment cleared and rebuilt from [`super::HOST_ENV`] plus `extra` (plus what
    /// `systemd-run` needs when it is used).
    pub fn command(&self, what: &str, id: &str, program: &Path, args: &[&OsStr]) -> Command {
        self.command_with_env(what, id, program, args, &[])
    }

    /// [`Placement::command`] with `extra` variables kept besides [`super::HOST_ENV`].
    pub fn command_with_env(
        &self,
        what: &str,
        id: &str,
        program: &Path,
        args: &[&OsStr],
        extra: &[&str],
    ) -> Command {
        let mut argv: Vec<&OsStr> = vec![program.as_os_str()];
        argv.extend_from_slice(args);
        let argv = self.wrap(what, id, &argv);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        let mut keep: Vec<&str> = extra.to_vec();
        if matches!(self, Placement::UserScope { .. }) {
            keep.extend(SCOPE_ENV.iter().filter(|k| !extra.contains(k)));
        }
        super::allowlisted_env(&mut command, &keep);
        command
    }
}

/// A unit-name-safe part: letters, digits and `-`; anything else becomes `_`.
fn unit_part(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An id no other scope of this user has: this process's pid and a counter (a scope that
/// ended is collected, but a new one must never collide with one still being torn down).
pub fn unique_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(private_socket: bool, state: Option<&str>, systemd_run: bool) -> Facts {
        Facts {
            private_socket,
            system_state: state.map(str::to_owned),
            systemd_run: systemd_run.then(|| PathBuf::from("/usr/bin/systemd-run")),
        }
    }

    fn scope() -> Placement {
        Placement::UserScope {
            systemd_run: "/usr/bin/systemd-run".into(),
        }
    }

    #[test]
    fn a_user_manager_is_found_by_its_socket_or_by_systemctl() {
        assert_eq!(decide(&facts(true, None, true)), scope());
        for state in [
            "running",
            "degraded",
            "starting",
            "initializing",
            "maintenance",
        ] {
            assert_eq!(decide(&facts(false, Some(state), true)), scope(), "{state}");
        }
    }

    #[test]
    fn without_a_user_manager_or_systemd_run_processes_run_directly() {
        assert_eq!(decide(&facts(false, None, true)), Placement::Direct);
        for state in ["offline", "unknown", "", "stopping"] {
            assert_eq!(
                decide(&facts(false, Some(state), true)),
                Placement::Direct,
                "{state:?}"
            );
        }
        assert_eq!(
            decide(&facts(true, Some("running"), false)),
            Placement::Direct
        );
        assert!(has_user_manager(&facts(true, None, false)));
        assert!(!has_user_manager(&facts(false, Some("offline"), true)));
    }

    #[test]
    fn the_scope_argv_names_the_unit_and_keeps_the_command_as_argv() {
        let argv: Vec<&OsStr> = vec!["tmux".as_ref(), "new-session".as_ref(), "a b;".as_ref()];
        assert_eq!(
            scope().wrap("tmux", "123-0", &argv),
            [
                "/usr/bin/systemd-run",
                "--user",
                "--scope",
                "--quiet",
                "--unit=sandbox-deck-tmux-123-0",
                "--collect",
                "--",
                "tmux",
                "new-session",
                "a b;",
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn without_a_user_manager_the_argv_is_unchanged() {
        let argv: Vec<&OsStr> = vec!["Xvfb".as_ref(), ":10".as_ref()];
        assert_eq!(
            Placement::Direct.wrap("xvfb", "x", &argv),
            ["Xvfb", ":10"].map(OsString::from)
        );
        let command = Placement::Direct.command("xvfb", "x", Path::new("Xvfb"), &[":10".as_ref()]);
        assert_eq!(command.get_program(), "Xvfb");
        assert_eq!(command.get_args().collect::<Vec<_>>(), [":10"]);
    }

    #[test]
    fn a_unit_name_cannot_be_bent_by_its_parts() {
        let wrapped = scope().wrap("x/y", "../a b\n", &["true".as_ref()]);
        assert_eq!(wrapped[4], "--unit=sandbox-deck-x_y-___a_b_");
    }

    #[test]
    fn the_scope_command_keeps_what_systemd_run_needs_and_nothing_else() {
        let command = scope().command("serve", "1", Path::new("/bin/sd"), &["serve".as_ref()]);
        assert_eq!(command.get_program(), "/usr/bin/systemd-run");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(&args[args.len() - 3..], ["--", "/bin/sd", "serve"]);
        // The environment is rebuilt: only allowlisted keys can appear.
        for (key, _) in command.get_envs() {
            let key = key.to_string_lossy();
            assert!(
                super::super::HOST_ENV.contains(&key.as_ref()) || SCOPE_ENV.contains(&key.as_ref()),
                "{key}"
            );
        }
    }

    #[test]
    fn ids_are_unique_within_a_process() {
        assert_ne!(unique_id(), unique_id());
    }
}
