//! What of the host a sandbox may see besides the project: resolved here from the options,
//! the config and the caller's environment, so the backends only turn a list into mounts.
//! Everything is off unless asked for, except read-only config that tools need (git, ssh's
//! known_hosts). `~/.claude` is not here: each sandbox gets its own view of it
//! (see `claude_home`).

use std::path::{Path, PathBuf};

use crate::sandbox::Options;

/// Host config that tools inside need to read but must never change.
const READ_ONLY_HOME_FILES: &[&str] = &[
    ".gitconfig",
    ".config/git",
    // gh's settings, not hosts.yml: that file holds the OAuth token (use --gh-token).
    ".config/gh/config.yml",
    ".ssh/known_hosts",
    ".ssh/config",
];

const NIX_DAEMON_SOCKET: &str = "/nix/var/nix/daemon-socket/socket";

/// The resolved exposure: host paths that exist, and the environment that goes with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Host files bound read-only at the same path.
    pub read_only: Vec<PathBuf>,
    /// Project files bound read-only over themselves (the host executes them later).
    pub protected: Vec<PathBuf>,
    /// Project directories between the project and a protected path (`.claude` for
    /// `.claude/settings.json`), bound read-write over themselves: a mount point cannot be
    /// renamed, so the agent cannot move `.claude` aside and put a writable one in its place.
    pub pinned: Vec<PathBuf>,
    /// The project's git dir by allowlist (see `git_view`), mounted after the project.
    pub git: Vec<crate::backend::git_view::GitMount>,
    /// Sockets bound read-write: (host path, path inside).
    pub sockets: Vec<(PathBuf, PathBuf)>,
    /// Devices (`--dev-bind`).
    pub devices: Vec<PathBuf>,
    /// Variables that come with the above.
    pub env: Vec<(String, String)>,
    /// Things asked for that the host does not have.
    pub warnings: Vec<String>,
}

pub struct ExposureInput<'a> {
    pub options: &'a Options,
    pub home: &'a Path,
    pub project: &'a Path,
    pub uid: u32,
    /// Project-relative paths to protect (config `bubblewrap.protect`).
    pub protect: &'a [String],
    pub caller_env: &'a [(String, String)],
}

impl ExposureInput<'_> {
    fn var(&self, key: &str) -> Option<&str> {
        self.caller_env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn runtime_inside(&self) -> PathBuf {
        PathBuf::from(format!("/run/user/{}", self.uid))
    }
}

/// Looks at the host and decides what crosses. Writes nothing.
pub fn resolve(input: &ExposureInput<'_>) -> Exposure {
    let mut exposure = Exposure::default();
    for rel in READ_ONLY_HOME_FILES {
        let path = input.home.join(rel);
        if path.exists() {
            exposure.read_only.push(path);
        }
    }
    // `.git` is the git view's (an allowlist), not a list of paths to protect.
    let outside_git = |rel: &&String| !Path::new(rel.as_str()).starts_with(".git");
    for rel in input
        .protect
        .iter()
        .filter(|rel| is_inside_relative(rel))
        .filter(outside_git)
    {
        let path = input.project.join(rel);
        let is_plain = std::fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_symlink());
        if is_plain {
            exposure.protected.push(path);
        }
    }
    exposure.pinned = pinned_parents(input.project, &exposure.protected);
    if Path::new(NIX_DAEMON_SOCKET).exists() {
        exposure
            .sockets
            .push((NIX_DAEMON_SOCKET.into(), NIX_DAEMON_SOCKET.into()));
        exposure.env.push(("NIX_REMOTE".into(), "daemon".into()));
    }
    let options = input.options;
    if options.host_display {
        host_display(input, &mut exposure);
    }
    if options.dbus {
        dbus(input, &mut exposure);
    }
    if options.ssh_agent {
        match input
            .var("SSH_AUTH_SOCK")
            .map(PathBuf::from)
            .filter(|p| p.exists())
        {
            Some(sock) => {
                exposure.sockets.push((sock.clone(), sock.clone()));
                exposure
                    .env
                    .push(("SSH_AUTH_SOCK".into(), sock.display().to_string()));
            }
            None => exposure
                .warnings
                .push("--ssh-agent: no SSH agent socket (SSH_AUTH_SOCK) found".into()),
        }
    }
    if options.audio {
        audio(input, &mut exposure);
    }
    if options.gpu {
        if Path::new("/dev/dri").exists() {
            exposure.devices.push("/dev/dri".into());
        } else {
            exposure
                .warnings
                .push("--gpu: this host has no /dev/dri".into());
        }
    }
    exposure
}

/// The plain directories strictly between `project` and each protected path, parents first.
/// A symlinked one is skipped: binding it would expose where it points.
fn pinned_parents(project: &Path, protected: &[PathBuf]) -> Vec<PathBuf> {
    let mut pinned = std::collections::BTreeSet::new();
    for path in protected {
        for dir in path.ancestors().skip(1) {
            if dir == project || !dir.starts_with(project) {
                break;
            }
            let is_plain_dir = std::fs::symlink_metadata(dir)
                .is_ok_and(|m| m.is_dir() && !m.file_type().is_symlink());
            if is_plain_dir {
                pinned.insert(dir.to_owned());
            }
        }
    }
    // BTreeSet order puts a parent before its children: bind order matters.
    pinned.into_iter().collect()
}

/// A relative path that stays below where it is joined (no `..`, not absolute).
pub fn is_inside_relative(rel: &str) -> bool {
    let path = Path::new(rel);
    !rel.is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn host_display(input: &ExposureInput<'_>, exposure: &mut Exposure) {
    let runtime = input.var("XDG_RUNTIME_DIR").map(PathBuf::from);
    if let (Some(wayland), Some(runtime)) = (input.var("WAYLAND_DISPLAY"), &runtime) {
        let socket = runtime.join(wayland);
        if socket.exists() {
            let inside = input.runtime_inside().join(wayland);
            exposure.sockets.push((socket, inside));
            exposure
                .env
                .push(("WAYLAND_DISPLAY".into(), wayland.into()));
            exposure.env.push((
                "XDG_RUNTIME_DIR".into(),
                input.runtime_inside().display().to_string(),
            ));
        }
    }
    let x_number = input
        .var("DISPLAY")
        .and_then(|d| d.strip_prefix(':'))
        .and_then(|d| d.split('.').next())
        .and_then(|n| n.parse::<u32>().ok());
    if let Some(number) = x_number {
        let socket = crate::host::xvfb::socket_path(number);
        if socket.exists() {
            exposure.sockets.push((socket.clone(), socket));
            exposure.env.push(("DISPLAY".into(), format!(":{number}")));
            let cookie = input
                .var("XAUTHORITY")
                .map(PathBuf::from)
                .unwrap_or_else(|| input.home.join(super::XAUTHORITY_IN_HOME));
            if cookie.exists() {
                exposure.read_only.push(cookie.clone());
                exposure
                    .env
                    .push(("XAUTHORITY".into(), cookie.display().to_string()));
            }
        }
    }
    if !exposure
        .env
        .iter()
        .any(|(k, _)| k == "DISPLAY" || k == "WAYLAND_DISPLAY")
    {
        exposure.warnings.push(
            "--display host: no X11 or Wayland display found in DISPLAY/WAYLAND_DISPLAY".into(),
        );
    }
}

fn dbus(input: &ExposureInput<'_>, exposure: &mut Exposure) {
    let Some(address) = input.var("DBUS_SESSION_BUS_ADDRESS") else {
        exposure
            .warnings
            .push("--dbus: no session bus (DBUS_SESSION_BUS_ADDRESS) found".into());
        return;
    };
    let path = address
        .split(';')
        .next()
        .and_then(|a| a.strip_prefix("unix:"))
        .and_then(|a| a.split(',').find_map(|kv| kv.strip_prefix("path=")));
    match path.map(PathBuf::from).filter(|p| p.exists()) {
        Some(socket) => {
            exposure.sockets.push((socket.clone(), socket.clone()));
            exposure.env.push((
                "DBUS_SESSION_BUS_ADDRESS".into(),
                format!("unix:path={}", socket.display()),
            ));
        }
        None => exposure.warnings.push(format!(
            "--dbus: the bus address {address:?} is not a socket path"
        )),
    }
}

fn audio(input: &ExposureInput<'_>, exposure: &mut Exposure) {
    let Some(runtime) = input.var("XDG_RUNTIME_DIR").map(PathBuf::from) else {
        exposure.warnings.push("--audio: no XDG_RUNTIME_DIR".into());
        return;
    };
    let inside = input.runtime_inside();
    let mut found = false;
    for rel in ["pipewire-0", "pulse/native"] {
        let socket = runtime.join(rel);
        if socket.exists() {
            exposure.sockets.push((socket, inside.join(rel)));
            found = true;
        }
    }
    if found {
        exposure.env.push((
            "PULSE_SERVER".into(),
            format!("unix:{}", inside.join("pulse/native").display()),
        ));
        exposure
            .env
            .push(("XDG_RUNTIME_DIR".into(), inside.display().to_string()));
    } else {
        exposure
            .warnings
            .push("--audio: no PipeWire or PulseAudio socket found".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        options: &'a Options,
        home: &'a Path,
        project: &'a Path,
        env: &'a [(String, String)],
        protect: &'a [String],
    ) -> ExposureInput<'a> {
        ExposureInput {
            options,
            home,
            project,
            uid: 1000,
            protect,
            caller_env: env,
        }
    }

    #[test]
    fn nothing_is_opted_in_by_default_even_when_the_caller_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        std::fs::write(&sock, "").unwrap();
        let env = vec![
            ("SSH_AUTH_SOCK".to_string(), sock.display().to_string()),
            (
                "DBUS_SESSION_BUS_ADDRESS".to_string(),
                format!("unix:path={}", sock.display()),
            ),
            ("DISPLAY".to_string(), ":0".to_string()),
        ];
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let exposure = resolve(&input(&Options::default(), &home, dir.path(), &env, &[]));
        assert!(exposure.sockets.iter().all(|(s, _)| s != &sock));
        assert!(
            exposure
                .env
                .iter()
                .all(|(k, _)| k != "SSH_AUTH_SOCK" && k != "DISPLAY")
        );
        let opted = Options {
            ssh_agent: true,
            dbus: true,
            ..Options::default()
        };
        let exposure = resolve(&input(&opted, &home, dir.path(), &env, &[]));
        assert!(exposure.sockets.contains(&(sock.clone(), sock.clone())));
        assert!(exposure.env.iter().any(|(k, _)| k == "SSH_AUTH_SOCK"));
    }

    #[test]
    fn private_ssh_keys_and_the_gh_token_file_never_cross() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        for f in [
            ".ssh/id_ed25519",
            ".ssh/known_hosts",
            ".config/gh/hosts.yml",
            ".config/gh/config.yml",
        ] {
            let p = home.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let exposure = resolve(&input(&Options::default(), &home, dir.path(), &[], &[]));
        assert!(exposure.read_only.contains(&home.join(".ssh/known_hosts")));
        assert!(
            exposure
                .read_only
                .contains(&home.join(".config/gh/config.yml"))
        );
        let all: Vec<&PathBuf> = exposure
            .read_only
            .iter()
            .chain(exposure.sockets.iter().map(|(s, _)| s))
            .collect();
        assert!(
            !all.iter()
                .any(|p| p.ends_with("id_ed25519") || p.ends_with("hosts.yml"))
        );
    }

    #[test]
    fn only_existing_plain_project_files_outside_git_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir_all(project.join(".git/hooks")).unwrap();
        std::fs::create_dir_all(project.join(".vscode")).unwrap();
        std::fs::write(project.join(".git/config"), "").unwrap();
        std::fs::write(project.join(".vscode/tasks.json"), "").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", project.join(".envrc")).unwrap();
        let protect: Vec<String> = [
            ".git/hooks",
            ".git/config",
            ".vscode/tasks.json",
            ".envrc",
            ".mcp.json",
            "../outside",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let exposure = resolve(&input(
            &Options::default(),
            dir.path(),
            &project,
            &[],
            &protect,
        ));
        // `.git` entries are the git view's business (an allowlist), not protected one by one.
        assert_eq!(exposure.protected, vec![project.join(".vscode/tasks.json")]);
        assert_eq!(exposure.pinned, vec![project.join(".vscode")]);
    }
}
