//! The bubblewrap backend: unprivileged user namespaces. bwrap is a toolkit, not a policy;
//! the argv built here *is* the policy, so it is built by a pure function and tested.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use command_fds::{CommandFdExt, FdMapping};

use crate::backend::{
    AGENT_SETTINGS, BROWSER_WRAPPER, BROWSER_WRAPPER_SCRIPT, ClaudeView, Launch, ProjectState,
    STATUS_DIR, landlock, seccomp,
};
use crate::egress::{self, BwrapFds};
use crate::error::{DeckError, Result};
use crate::host::xvfb;
use crate::sandbox::Network;
use crate::spec::Profile;

/// Where bwrap reads its inputs from inside the child (fixed numbers, mapped with
/// command-fds so nothing else leaks in).
/// One per seccomp program (see `seccomp::programs`).
const SECCOMP_FDS: [i32; 4] = [20, 23, 25, 26];
const SECRETS_FD: i32 = 21;
const POLICY_FD: i32 = 22;
const WRAPPER_FD: i32 = 24;
/// `--network proxy`: bwrap's info and block pipes (see `egress::plant`), and the CONNECT
/// helper for ssh.
const INFO_FD: i32 = 27;
const BLOCK_FD: i32 = 28;
const CONNECT_FD: i32 = 29;

/// The uid and gid a root caller's sandbox runs as when it has a browser: Chromium refuses
/// to run its sandbox as uid 0 ("Running as root without --no-sandbox is not supported").
/// Inside, it stands for the caller (files the sandbox creates are still root's on the host);
/// it holds no capability either way.
pub const ROOT_INSIDE_ID: u32 = 1000;

/// Where the secrets file appears inside, and the constant script that loads it. User data
/// is never part of this script: the payload's argv follows as "$@".
pub const SECRETS_PATH: &str = "/run/sandbox-deck/secrets";
const LOAD_SECRETS: &str =
    "while IFS= read -r kv; do export \"$kv\"; done < /run/sandbox-deck/secrets; exec \"$@\"";
/// Where Chromium on Linux reads mandatory policies (a path compiled into the browser).
const POLICY_PATH: &str = "/etc/chromium/policies/managed/sandbox-deck.json";

/// One step of the sandbox's filesystem, in the order bwrap applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    RoBind(PathBuf, PathBuf),
    Bind(PathBuf, PathBuf),
    DevBind(PathBuf, PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Tmpfs(PathBuf),
    Dir(PathBuf),
    /// A read-only file whose content bwrap reads from a file descriptor.
    RoData {
        fd: i32,
        path: PathBuf,
    },
    /// The same, executable (mode 0555).
    ExecData {
        fd: i32,
        path: PathBuf,
    },
    RemountRo(PathBuf),
}

/// The resolved plan: host facts (what exists, what is a symlink) already looked up.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hostname: String,
    pub network: Network,
    pub hardening: bool,
    /// Whether processes inside may create a user namespace (one that can hold only a pid
    /// namespace: see `seccomp::NAMESPACE_FLAGS`). Only a sandbox with a browser gets it.
    pub nested_userns: bool,
    /// The uid and gid inside, when not the caller's own (see [`ROOT_INSIDE_ID`]).
    pub id_inside: Option<u32>,
    pub mounts: Vec<Mount>,
    pub chdir: PathBuf,
    pub command: Vec<OsString>,
}

/// Looks at the host to turn a profile and a launch into a [`Plan`].
///
/// One function on purpose: bwrap applies the mounts in list order and a later mount covers
/// an earlier one, so the order is the policy, and it reads top to bottom here:
/// 1. `/tmp`: the project state's own, else a tmpfs.
/// 2. The profile's system paths, read-only (symlinks recreated), then the nix-ld loader at
///    the ELF interpreter path.
/// 3. `/etc`: an empty dir, the profile's entries read-only (the one that holds the
///    Chromium policy rebuilt around it), then the policy file.
/// 4. The home: a tmpfs, then what lives in it: the project state (`~/.claude.json`,
///    `~/.local/*`), the browser's profile and wrapper, the `~/.claude` view.
/// 5. The host files the exposure shows read-only.
/// 6. The agent install and its command link: after the home and all in it, so nothing
///    hides them.
/// 7. The project read-write, its pinned dirs, then the git view (after the pins: a pin
///    bound later would cover it), then the protected paths read-only over all of those.
/// 8. Sockets, devices, the status dir, the hook settings, the X socket and cookie.
/// 9. The secrets file (the command is wrapped to load it), then with `--network proxy`
///    the CONNECT helper for ssh.
/// 10. Last, with hardening, `/` remounted read-only: after every mount, which all need
///     their mount points created.
#[allow(clippy::too_many_lines)]
pub fn plan(profile: &Profile, launch: &Launch) -> Plan {
    let mut mounts = Vec::new();
    match &launch.state {
        Some(state) => mounts.push(Mount::Bind(state.tmp(), "/tmp".into())),
        None => mounts.push(Mount::Tmpfs("/tmp".into())),
    }
    for path in &profile.ro_paths {
        if let Some(mount) = host_path_mount(path) {
            mounts.push(mount);
        }
    }
    if let Some(loader) = &profile.nix_ld {
        mounts.push(Mount::RoBind(
            loader.clone(),
            crate::spec::elf_interpreter().into(),
        ));
    }
    mounts.push(Mount::Dir("/etc".into()));
    let policy = launch.browser.as_ref().and_then(|b| b.policy.as_ref());
    for entry in &profile.etc {
        let host = Path::new("/etc").join(entry);
        if policy.is_some() && Path::new(POLICY_PATH).starts_with(&host) && host.is_dir() {
            mounts.extend(rebuilt_around(&host, Path::new(POLICY_PATH)));
        } else if host.exists() {
            // An /etc entry that is a symlink (resolv.conf often is) is bound as what it
            // points to.
            mounts.push(Mount::RoBind(host.clone(), host));
        }
    }
    if policy.is_some() {
        mounts.push(Mount::RoData {
            fd: POLICY_FD,
            path: POLICY_PATH.into(),
        });
    }
    mounts.push(Mount::Tmpfs(launch.home.clone()));
    if let Some(state) = &launch.state {
        mounts.extend(state_mounts(state, &launch.home));
    }
    if let Some(browser) = &launch.browser {
        mounts.push(Mount::Bind(
            browser.profile.clone(),
            launch.home.join(".config/chromium"),
        ));
        mounts.push(Mount::ExecData {
            fd: WRAPPER_FD,
            path: BROWSER_WRAPPER.into(),
        });
    }
    if let Some(view) = &launch.claude {
        mounts.extend(claude_mounts(view, &launch.home));
    }
    let exposure = &launch.exposure;
    for path in &exposure.read_only {
        mounts.push(Mount::RoBind(path.clone(), path.clone()));
    }
    // After the home and everything bound into it, so nothing hides the install.
    if let Some(agent) = &launch.agent {
        for (host, inside) in &agent.binds {
            mounts.push(Mount::RoBind(host.clone(), inside.clone()));
        }
        mounts.push(Mount::Symlink {
            target: agent.target.clone(),
            link: agent.command.clone(),
        });
    }
    mounts.push(Mount::Bind(launch.project.clone(), launch.project.clone()));
    for dir in &exposure.pinned {
        mounts.push(Mount::Bind(dir.clone(), dir.clone()));
    }
    // After the pins: a pinned dir bound later would cover a git view mounted below it.
    for git in &exposure.git {
        let (host, inside) = (git.host.clone(), git.inside.clone());
        mounts.push(match git.writable {
            true => Mount::Bind(host, inside),
            false => Mount::RoBind(host, inside),
        });
    }
    for path in &exposure.protected {
        mounts.push(Mount::RoBind(path.clone(), path.clone()));
    }
    for (host, inside) in &exposure.sockets {
        mounts.push(Mount::Bind(host.clone(), inside.clone()));
    }
    for device in &exposure.devices {
        mounts.push(Mount::DevBind(device.clone(), device.clone()));
    }
    if let Some(dir) = &launch.status_dir {
        mounts.push(Mount::Bind(dir.clone(), STATUS_DIR.into()));
    }
    if let Some(file) = &launch.agent_settings {
        mounts.push(Mount::RoBind(file.clone(), AGENT_SETTINGS.into()));
    }
    if let Some(display) = &launch.display {
        let socket = xvfb::socket_path(display.number);
        mounts.push(Mount::Bind(socket.clone(), socket));
        mounts.push(Mount::RoBind(
            display.xauthority.clone(),
            launch.home.join(super::XAUTHORITY_IN_HOME),
        ));
    }
    let mut command = launch.command.clone();
    if !launch.secrets.is_empty() {
        mounts.push(Mount::RoData {
            fd: SECRETS_FD,
            path: SECRETS_PATH.into(),
        });
        let mut wrapped: Vec<OsString> =
            vec!["sh".into(), "-c".into(), LOAD_SECRETS.into(), "sh".into()];
        wrapped.append(&mut command);
        command = wrapped;
    }
    if launch.network == Network::Proxy {
        mounts.push(Mount::ExecData {
            fd: CONNECT_FD,
            path: egress::CONNECT_SCRIPT.into(),
        });
    }
    if launch.hardening {
        mounts.push(Mount::RemountRo("/".into()));
    }
    let has_browser = launch.browser.is_some();
    Plan {
        hostname: launch.hostname.clone(),
        network: launch.network,
        hardening: launch.hardening,
        nested_userns: has_browser,
        id_inside: (has_browser && nix::unistd::geteuid().is_root()).then_some(ROOT_INSIDE_ID),
        mounts,
        chdir: launch.project.clone(),
        command,
    }
}

fn state_mounts(state: &ProjectState, home: &Path) -> Vec<Mount> {
    let mut mounts = vec![Mount::Bind(state.claude_json(), home.join(".claude.json"))];
    for part in ProjectState::LOCAL_PARTS {
        mounts.push(Mount::Bind(
            state.local(part),
            home.join(".local").join(part),
        ));
    }
    mounts
}

/// The host dir `dir` rebuilt in a directory bwrap owns, entry by entry, so that bwrap can
/// create `target` (a file under `dir` that the host lacks, e.g. the managed policy under
/// `/etc/chromium`) without writing to the host: a read-only bind of `dir` itself would
/// leave it no way to create `target`'s parents. What the host has there stays visible,
/// except `target` itself, which the caller provides.
fn rebuilt_around(dir: &Path, target: &Path) -> Vec<Mount> {
    let mut mounts = vec![Mount::Dir(dir.to_owned())];
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(list) => list.flatten().map(|e| e.path()).collect(),
        Err(_) => return mounts,
    };
    entries.sort();
    for path in entries {
        if !target.starts_with(&path) {
            mounts.extend(host_path_mount(&path));
        } else if path != target && !path.is_symlink() && path.is_dir() {
            mounts.extend(rebuilt_around(&path, target));
        }
        // Anything else on the way to `target` (a file or symlink where a directory must be,
        // or `target` itself) is left out: bwrap creates the path afresh.
    }
    mounts
}

/// The sandbox's `~/.claude`: its private dir, and the host entries the allowlist lets in,
/// each at its host path (the view's mount points were prepared by `ClaudeView::resolve`).
fn claude_mounts(view: &ClaudeView, home: &Path) -> Vec<Mount> {
    let mut mounts = vec![
        Mount::Bind(view.private_dir.clone(), home.join(".claude")),
        Mount::Bind(view.transcripts.clone(), view.transcripts.clone()),
    ];
    for path in &view.preferences {
        mounts.push(Mount::RoBind(path.clone(), path.clone()));
    }
    if let Some(file) = &view.credentials {
        mounts.push(Mount::Bind(file.clone(), file.clone()));
    }
    mounts
}

/// A host path bound read-only at the same place, or recreated as a symlink (merged /usr).
fn host_path_mount(path: &Path) -> Option<Mount> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).ok()?;
        Some(Mount::Symlink {
            target,
            link: path.to_owned(),
        })
    } else {
        Some(Mount::RoBind(path.to_owned(), path.to_owned()))
    }
}

/// The bwrap argv (after the program name) for a plan. Pure: unit-tested.
pub fn argv(plan: &Plan) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&OsStr]| args.extend(items.iter().map(|s| s.to_os_string()));
    push(&["--unshare-user".as_ref()]);
    if let Some(id) = plan.id_inside {
        let id = id.to_string();
        push(&["--uid".as_ref(), id.as_ref(), "--gid".as_ref(), id.as_ref()]);
    }
    if plan.hardening {
        push(&[
            "--unshare-pid".as_ref(),
            "--unshare-ipc".as_ref(),
            "--unshare-uts".as_ref(),
            "--unshare-cgroup-try".as_ref(),
        ]);
        if !plan.nested_userns {
            push(&["--disable-userns".as_ref()]);
        }
        push(&[
            "--cap-drop".as_ref(),
            "ALL".as_ref(),
            "--hostname".as_ref(),
            plan.hostname.as_ref(),
        ]);
    }
    if !plan.network.shares_host() {
        push(&["--unshare-net".as_ref()]);
    }
    if plan.network == Network::Proxy {
        // bwrap reports its child and holds it until the proxy's listeners are inside.
        let (info, block) = (INFO_FD.to_string(), BLOCK_FD.to_string());
        push(&[
            "--info-fd".as_ref(),
            info.as_ref(),
            "--block-fd".as_ref(),
            block.as_ref(),
        ]);
    }
    push(&[
        "--die-with-parent".as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--dev".as_ref(),
        "/dev".as_ref(),
    ]);
    for mount in &plan.mounts {
        let mount = mount_argv(mount);
        push(&mount.iter().map(OsString::as_os_str).collect::<Vec<_>>());
    }
    if plan.hardening {
        // As many as there are programs: a fd without its program would make bwrap fail.
        for fd in SECCOMP_FDS.iter().take(seccomp::PROGRAM_COUNT) {
            let fd = fd.to_string();
            push(&["--add-seccomp-fd".as_ref(), fd.as_ref()]);
        }
    }
    push(&["--chdir".as_ref(), plan.chdir.as_ref(), "--".as_ref()]);
    args.extend(plan.command.iter().cloned());
    args
}

/// The bwrap arguments of one mount.
fn mount_argv(mount: &Mount) -> Vec<OsString> {
    let os = |items: &[&OsStr]| items.iter().map(|s| s.to_os_string()).collect();
    match mount {
        Mount::RoBind(src, dst) => os(&["--ro-bind".as_ref(), src.as_ref(), dst.as_ref()]),
        Mount::Bind(src, dst) => os(&["--bind".as_ref(), src.as_ref(), dst.as_ref()]),
        Mount::DevBind(src, dst) => os(&["--dev-bind".as_ref(), src.as_ref(), dst.as_ref()]),
        Mount::Symlink { target, link } => {
            os(&["--symlink".as_ref(), target.as_ref(), link.as_ref()])
        }
        Mount::Tmpfs(path) => os(&["--tmpfs".as_ref(), path.as_ref()]),
        Mount::Dir(path) => os(&["--dir".as_ref(), path.as_ref()]),
        Mount::RoData { fd, path } => {
            let fd = fd.to_string();
            os(&["--ro-bind-data".as_ref(), fd.as_ref(), path.as_ref()])
        }
        Mount::ExecData { fd, path } => {
            let fd = fd.to_string();
            os(&[
                "--perms".as_ref(),
                "0555".as_ref(),
                "--ro-bind-data".as_ref(),
                fd.as_ref(),
                path.as_ref(),
            ])
        }
        Mount::RemountRo(path) => os(&["--remount-ro".as_ref(), path.as_ref()]),
    }
}

/// The bwrap process for a launch. Its own environment is cleared and rebuilt from the
/// allowlist: bwrap's pid 1 keeps the environment it was started with and `/proc/1/environ`
/// is readable inside, so `--clearenv` alone would leak the caller's secrets.
///
/// A `--network proxy` launch needs its proxy's pipes (`egress::start_proxy`).
pub fn command(
    bwrap: &Path,
    profile: &Profile,
    launch: &Launch,
    egress: Option<BwrapFds>,
) -> Result<Command> {
    let mut command = Command::new(bwrap);
    command.arg0("bwrap");
    command.args(argv(&plan(profile, launch)));
    command.env_clear();
    command.envs(launch.env.iter().map(|(k, v)| (k, v)));
    let mut fds = Vec::new();
    if launch.hardening {
        let programs = seccomp::programs()?;
        for (program, child_fd) in programs.iter().zip(SECCOMP_FDS) {
            fds.push(FdMapping {
                parent_fd: data_fd(&seccomp::program_bytes(program))?,
                child_fd,
            });
        }
        if let Some(ruleset) = landlock::scoped_ruleset() {
            let mut ruleset = Some(ruleset);
            // SAFETY: restrict_self is two syscalls (prctl, landlock_restrict_self).
            unsafe {
                command.pre_exec(move || match ruleset.take() {
                    Some(r) => landlock::restrict(r),
                    None => Ok(()),
                });
            }
        }
    }
    fds.extend(data_fds(launch, egress)?);
    command
        .fd_mappings(fds)
        .map_err(|e| DeckError::os("passing descriptors to bwrap", std::io::Error::other(e)))?;
    Ok(command)
}

/// The descriptors bwrap reads besides the seccomp programs: the secrets file, the
/// browser's wrapper and policy, and a proxy-mode sandbox's pipes and connect script.
fn data_fds(launch: &Launch, egress: Option<BwrapFds>) -> Result<Vec<FdMapping>> {
    let mut fds = Vec::new();
    if !launch.secrets.is_empty() {
        let mut text = String::new();
        for (key, value) in &launch.secrets {
            text.push_str(&format!("{key}={value}\n"));
        }
        fds.push(FdMapping {
            parent_fd: data_fd(text.as_bytes())?,
            child_fd: SECRETS_FD,
        });
    }
    if let Some(browser) = &launch.browser {
        fds.push(FdMapping {
            parent_fd: data_fd(BROWSER_WRAPPER_SCRIPT.as_bytes())?,
            child_fd: WRAPPER_FD,
        });
        if let Some(policy) = &browser.policy {
            fds.push(FdMapping {
                parent_fd: data_fd(policy.as_bytes())?,
                child_fd: POLICY_FD,
            });
        }
    }
    match (launch.network, egress) {
        (Network::Proxy, Some(pipes)) => {
            fds.push(FdMapping {
                parent_fd: pipes.info,
                child_fd: INFO_FD,
            });
            fds.push(FdMapping {
                parent_fd: pipes.block,
                child_fd: BLOCK_FD,
            });
            fds.push(FdMapping {
                parent_fd: data_fd(egress::CONNECT_SCRIPT_TEXT.as_bytes())?,
                child_fd: CONNECT_FD,
            });
        }
        (Network::Proxy, None) => {
            return Err(DeckError::host(
                "starting bwrap",
                "a proxy-mode sandbox without its proxy",
            ));
        }
        _ => {}
    }
    Ok(fds)
}

/// A pipe already holding `data`, read end returned (bwrap reads it to EOF).
fn data_fd(data: &[u8]) -> Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| DeckError::os("creating a pipe", e))?;
    // Our payloads are a few KiB; a pipe holds 64 KiB, so this never blocks.
    std::fs::File::from(write)
        .write_all(data)
        .map_err(|e| DeckError::io("filling a pipe for bwrap", e))?;
    Ok(read)
}

/// The managed-policy JSON for the sandbox's Chromium: the profile's extensions, forced;
/// with `--network proxy`, the sandbox's proxy, fixed. A managed policy outranks the
/// command line (`--no-proxy-server`, `--proxy-server`), the environment and the settings
/// page, and the file is read-only inside, so the agent cannot steer the browser around
/// the allowlist (it could not reach anything without the proxy either: there is no route).
/// `None` when there is nothing to enforce.
pub fn chromium_policy(extension_ids: &[String], network: Network) -> Option<String> {
    let mut policy = serde_json::Map::new();
    if !extension_ids.is_empty() {
        let list: Vec<String> = extension_ids
            .iter()
            .map(|id| format!("{id};https://clients2.google.com/service/update2/crx"))
            .collect();
        policy.insert("ExtensionInstallForcelist".into(), list.into());
    }
    if network == Network::Proxy {
        // One HTTP proxy for every scheme (CONNECT for https and wss). Loopback stays direct
        // (Chromium's implicit bypass): it is the sandbox's own `lo`.
        policy.insert(
            "ProxySettings".into(),
            serde_json::json!({
                "ProxyMode": "fixed_servers",
                "ProxyServer": format!("127.0.0.1:{}", egress::plant::PROXY_PORT),
            }),
        );
    }
    (!policy.is_empty()).then(|| serde_json::Value::Object(policy).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{AgentInstall, Exposure, SandboxDisplay};

    fn launch() -> Launch {
        Launch {
            hostname: "api".into(),
            project: "/home/dev/code/api".into(),
            home: "/home/dev".into(),
            network: Network::Host,
            display: Some(SandboxDisplay {
                number: 12,
                xauthority: "/run/user/1000/sandbox-deck/sandboxes/ab/Xauthority".into(),
                size: Some((1280, 800)),
            }),
            command: vec!["bash".into()],
            agent: Some(AgentInstall {
                command: "/run/sandbox-deck/bin/claude".into(),
                target: "/home/dev/.npm-global/lib/node_modules/cc/bin/claude.exe".into(),
                binds: vec![(
                    "/home/dev/.npm-global/lib/node_modules/cc".into(),
                    "/home/dev/.npm-global/lib/node_modules/cc".into(),
                )],
                path: vec!["/run/sandbox-deck/bin".into()],
            }),
            state: Some(ProjectState {
                dir: "/state/projects/api-0123".into(),
            }),
            claude: Some(ClaudeView {
                private_dir: "/state/projects/api-0123/claude".into(),
                transcripts: "/home/dev/.claude/projects/-home-dev-code-api".into(),
                preferences: vec!["/home/dev/.claude/settings.json".into()],
                credentials: Some("/home/dev/.claude/.credentials.json".into()),
            }),
            exposure: Exposure {
                protected: vec!["/home/dev/code/api/.git/hooks".into()],
                pinned: vec!["/home/dev/code/api/.git".into()],
                ..Exposure::default()
            },
            env: vec![],
            secrets: vec![],
            browser: None,
            hardening: true,
            status_dir: None,
            agent_settings: None,
        }
    }

    fn args_of(launch: &Launch) -> Vec<String> {
        argv(&plan(&Profile::host(), launch))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    fn position(args: &[String], window: &[&str]) -> Option<usize> {
        args.windows(window.len()).position(|w| w == window)
    }

    #[test]
    fn namespaces_are_unshared_and_the_sandbox_dies_with_its_parent() {
        let args = args_of(&launch());
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
        ] {
            assert!(args.contains(&flag.to_string()), "{flag} missing");
        }
        assert!(position(&args, &["--cap-drop", "ALL"]).is_some());
        assert!(position(&args, &["--add-seccomp-fd", "20"]).is_some());
        assert!(position(&args, &["--add-seccomp-fd", "23"]).is_some());
        let fds = args.iter().filter(|a| *a == "--add-seccomp-fd").count();
        assert_eq!(fds, seccomp::PROGRAM_COUNT, "one descriptor per program");
        assert!(!args.contains(&"--unshare-net".to_string()));
        let mut offline = launch();
        offline.network = Network::None;
        assert!(args_of(&offline).contains(&"--unshare-net".to_string()));
        assert!(!args_of(&offline).contains(&"--info-fd".to_string()));
    }

    #[test]
    fn a_proxy_sandbox_has_its_own_network_and_waits_for_its_proxy() {
        let mut proxied = launch();
        proxied.network = Network::Proxy;
        let args = args_of(&proxied);
        assert!(args.contains(&"--unshare-net".to_string()));
        let info = position(&args, &["--info-fd", "27", "--block-fd", "28"]).unwrap();
        let separator = args.iter().position(|a| a == "--").unwrap();
        assert!(info < separator);
        let helper = position(&args, &["--ro-bind-data", "29", egress::CONNECT_SCRIPT]).unwrap();
        let remount = position(&args, &["--remount-ro", "/"]).unwrap();
        assert!(
            helper < remount,
            "the helper is mounted before / goes read-only"
        );
        let err = command(
            Path::new("/usr/bin/bwrap"),
            &Profile::host(),
            &proxied,
            None,
        );
        assert!(err.is_err(), "never without its proxy's pipes");
    }

    #[test]
    fn without_hardening_only_the_mounts_remain() {
        let mut l = launch();
        l.hardening = false;
        let args = args_of(&l);
        for flag in [
            "--unshare-pid",
            "--add-seccomp-fd",
            "--disable-userns",
            "--remount-ro",
            "--cap-drop",
        ] {
            assert!(!args.contains(&flag.to_string()), "{flag} present");
        }
    }

    #[test]
    fn home_is_fresh_and_only_the_project_and_state_are_writable() {
        let args = args_of(&launch());
        let tmpfs_home = position(&args, &["--tmpfs", "/home/dev"]).expect("home tmpfs");
        let project = position(
            &args,
            &["--bind", "/home/dev/code/api", "/home/dev/code/api"],
        )
        .unwrap();
        let claude = position(
            &args,
            &[
                "--bind",
                "/state/projects/api-0123/claude",
                "/home/dev/.claude",
            ],
        )
        .unwrap();
        assert!(
            tmpfs_home < project && tmpfs_home < claude,
            "binds must come after the home tmpfs"
        );
        let rw_binds: Vec<&String> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "--bind")
            .map(|(i, _)| &args[i + 2])
            .collect();
        assert_eq!(
            rw_binds,
            [
                "/tmp",
                "/home/dev/.claude.json",
                "/home/dev/.local/bin",
                "/home/dev/.local/lib",
                "/home/dev/.local/share",
                "/home/dev/.claude",
                "/home/dev/.claude/projects/-home-dev-code-api",
                "/home/dev/.claude/.credentials.json",
                "/home/dev/code/api",
                "/home/dev/code/api/.git",
                "/tmp/.X11-unix/X12",
            ]
        );
        assert!(position(&args, &["--bind", "/state/projects/api-0123/tmp", "/tmp"]).is_some());
        assert!(!args.iter().any(|a| a.contains(".ssh")));
        assert!(position(&args, &["--chdir", "/home/dev/code/api"]).is_some());
    }

    #[test]
    fn the_claude_view_is_built_over_the_private_dir_after_the_home() {
        let args = args_of(&launch());
        let home = position(&args, &["--tmpfs", "/home/dev"]).unwrap();
        let private = position(
            &args,
            &[
                "--bind",
                "/state/projects/api-0123/claude",
                "/home/dev/.claude",
            ],
        )
        .unwrap();
        let transcripts = position(
            &args,
            &[
                "--bind",
                "/home/dev/.claude/projects/-home-dev-code-api",
                "/home/dev/.claude/projects/-home-dev-code-api",
            ],
        )
        .unwrap();
        let settings = position(
            &args,
            &[
                "--ro-bind",
                "/home/dev/.claude/settings.json",
                "/home/dev/.claude/settings.json",
            ],
        )
        .unwrap();
        assert!(home < private && private < transcripts && private < settings);
        // Nothing else of the host's ~/.claude: no bind of the whole dir.
        assert!(position(&args, &["/home/dev/.claude", "/home/dev/.claude"]).is_none());
        let mut no_claude = launch();
        no_claude.claude = None;
        assert!(!args_of(&no_claude).iter().any(|a| a.contains(".claude/")));
    }

    #[test]
    fn the_agent_install_is_bound_after_the_home_and_everything_in_it() {
        let args = args_of(&launch());
        let package = "/home/dev/.npm-global/lib/node_modules/cc";
        let install = position(&args, &["--ro-bind", package, package]).expect("install bound");
        let last_home_bind = [
            position(&args, &["--tmpfs", "/home/dev"]),
            position(&args, &["--bind", "/state/projects/api-0123/local/share"]),
            position(&args, &["--bind", "/state/projects/api-0123/claude"]),
        ];
        for earlier in last_home_bind {
            assert!(earlier.unwrap() < install, "the install would be hidden");
        }
        let link = position(
            &args,
            &[
                "--symlink",
                "/home/dev/.npm-global/lib/node_modules/cc/bin/claude.exe",
                "/run/sandbox-deck/bin/claude",
            ],
        )
        .expect("the agent's symlink");
        assert!(install < link);
        let remount = position(&args, &["--remount-ro", "/"]).unwrap();
        assert!(link < remount);
    }

    #[test]
    fn files_the_host_runs_later_are_bound_read_only_over_the_writable_binds() {
        let args = args_of(&launch());
        let project = position(
            &args,
            &["--bind", "/home/dev/code/api", "/home/dev/code/api"],
        )
        .unwrap();
        let hooks = position(
            &args,
            &[
                "--ro-bind",
                "/home/dev/code/api/.git/hooks",
                "/home/dev/code/api/.git/hooks",
            ],
        )
        .unwrap();
        assert!(project < hooks);
        let pinned = position(
            &args,
            &[
                "--bind",
                "/home/dev/code/api/.git",
                "/home/dev/code/api/.git",
            ],
        )
        .expect("the parent of a protected path is pinned");
        assert!(project < pinned && pinned < hooks);
    }

    #[test]
    fn the_git_view_is_mounted_over_the_project_after_the_pins() {
        use crate::backend::git_view::GitMount;
        let mut l = launch();
        l.exposure.git = vec![
            GitMount {
                host: "/state/projects/api-0123/git/main/view".into(),
                inside: "/home/dev/code/api/.git".into(),
                writable: true,
            },
            GitMount {
                host: "/home/dev/code/api/.git/config".into(),
                inside: "/home/dev/code/api/.git/config".into(),
                writable: false,
            },
        ];
        let args = args_of(&l);
        let project = position(
            &args,
            &["--bind", "/home/dev/code/api", "/home/dev/code/api"],
        );
        let pin = position(
            &args,
            &[
                "--bind",
                "/home/dev/code/api/.git",
                "/home/dev/code/api/.git",
            ],
        );
        let view = position(
            &args,
            &[
                "--bind",
                "/state/projects/api-0123/git/main/view",
                "/home/dev/code/api/.git",
            ],
        );
        let config = position(
            &args,
            &[
                "--ro-bind",
                "/home/dev/code/api/.git/config",
                "/home/dev/code/api/.git/config",
            ],
        );
        let (project, pin, view, config) = (
            project.unwrap(),
            pin.unwrap(),
            view.unwrap(),
            config.unwrap(),
        );
        assert!(project < pin && pin < view && view < config, "{args:?}");
    }

    #[test]
    fn the_root_is_remounted_read_only_after_every_mount() {
        let args = args_of(&launch());
        let remount = position(&args, &["--remount-ro", "/"]).expect("remount");
        let last_mount = args
            .iter()
            .rposition(|a| a.starts_with("--") && a.contains("bind"))
            .unwrap();
        assert!(remount > last_mount);
    }

    #[test]
    fn secrets_travel_by_descriptor_and_never_appear_in_argv() {
        let mut l = launch();
        l.secrets = vec![("GH_TOKEN".into(), "ghp_very_secret".into())];
        let args = args_of(&l);
        assert!(!args.iter().any(|a| a.contains("ghp_very_secret")));
        assert!(position(&args, &["--ro-bind-data", "21", SECRETS_PATH]).is_some());
        let sep = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[sep + 1..sep + 3], ["sh", "-c"]);
        assert_eq!(args[sep + 4..], ["sh", "bash"]);
    }

    #[test]
    fn only_the_sandboxs_own_display_and_cookie_are_visible() {
        let args = args_of(&launch());
        assert!(
            position(
                &args,
                &["--bind", "/tmp/.X11-unix/X12", "/tmp/.X11-unix/X12"]
            )
            .is_some()
        );
        assert!(!args.iter().any(|a| a == "/tmp/.X11-unix"));
        assert!(
            position(
                &args,
                &[
                    "--ro-bind",
                    "/run/user/1000/sandbox-deck/sandboxes/ab/Xauthority",
                    "/home/dev/.Xauthority"
                ]
            )
            .is_some()
        );
        let mut headless = launch();
        headless.display = None;
        assert!(
            !args_of(&headless)
                .iter()
                .any(|a| a.contains("X11") || a.contains("Xauthority"))
        );
    }

    #[test]
    fn user_arguments_come_after_the_separator_and_cannot_become_options() {
        let mut l = launch();
        l.command = vec!["--dev-bind".into(), "/".into(), "/".into()];
        let args = args_of(&l);
        let sep = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[sep + 1..], ["--dev-bind", "/", "/"]);
        assert!(!args[..sep].contains(&"--dev-bind".to_string()));
    }

    #[test]
    fn the_status_dir_is_writable_and_the_hook_settings_are_not() {
        let mut l = launch();
        l.status_dir = Some("/run/user/1000/sandbox-deck/sandboxes/ab/status".into());
        l.agent_settings = Some("/run/user/1000/sandbox-deck/sandboxes/ab/hooks.json".into());
        let args = args_of(&l);
        let home = position(&args, &["--tmpfs", "/home/dev"]).unwrap();
        let status = position(
            &args,
            &[
                "--bind",
                "/run/user/1000/sandbox-deck/sandboxes/ab/status",
                STATUS_DIR,
            ],
        );
        let settings = position(
            &args,
            &[
                "--ro-bind",
                "/run/user/1000/sandbox-deck/sandboxes/ab/hooks.json",
                AGENT_SETTINGS,
            ],
        );
        assert!(status.is_some_and(|s| s > home));
        assert!(settings.is_some_and(|s| s > home));
        // Only the fixed paths appear inside: nothing under the host's runtime dir.
        let destinations: Vec<&String> = args
            .windows(3)
            .filter(|w| w[0] == "--bind" || w[0] == "--ro-bind")
            .map(|w| &w[2])
            .collect();
        assert!(!destinations.iter().any(|d| d.starts_with("/run/user")));
        // The root is remounted read-only after every bind.
        let remount = position(&args, &["--remount-ro", "/"]).unwrap();
        assert!(remount > settings.unwrap() && remount > status.unwrap());
    }

    #[test]
    fn system_paths_are_read_only() {
        let args = args_of(&launch());
        assert!(position(&args, &["--ro-bind", "/usr", "/usr"]).is_some());
        assert!(
            !args
                .windows(2)
                .any(|w| w[0] == "--bind" && (w[1] == "/usr" || w[1] == "/etc" || w[1] == "/"))
        );
    }

    #[test]
    fn the_environment_of_bwrap_itself_is_cleared() {
        let mut l = launch();
        l.env = vec![("TERM".into(), "xterm".into())];
        let cmd = command(Path::new("/usr/bin/bwrap"), &Profile::host(), &l, None).unwrap();
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].0, "TERM");
    }

    #[test]
    fn a_nix_ld_loader_is_bound_at_the_elf_interpreter_path() {
        let mut profile = Profile::host();
        profile.nix_ld = Some("/nix/store/abc-nix-ld/libexec/nix-ld".into());
        let args: Vec<String> = argv(&plan(&profile, &launch()))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(
            position(
                &args,
                &[
                    "--ro-bind",
                    "/nix/store/abc-nix-ld/libexec/nix-ld",
                    crate::spec::elf_interpreter()
                ]
            )
            .is_some()
        );
    }

    fn with_browser(policy: Option<String>) -> Launch {
        let mut l = launch();
        l.browser = Some(crate::backend::Browser {
            binary: "/usr/bin/chromium".into(),
            profile: "/state/sandboxes/ab/chromium".into(),
            policy,
        });
        l
    }

    #[test]
    fn a_browser_gets_its_own_profile_the_wrapper_and_a_nested_user_namespace() {
        let args = args_of(&with_browser(None));
        let home = position(&args, &["--tmpfs", "/home/dev"]).unwrap();
        let profile = position(
            &args,
            &[
                "--bind",
                "/state/sandboxes/ab/chromium",
                "/home/dev/.config/chromium",
            ],
        )
        .expect("the sandbox's own profile");
        assert!(profile > home);
        assert!(
            position(
                &args,
                &["--perms", "0555", "--ro-bind-data", "24", BROWSER_WRAPPER]
            )
            .is_some()
        );
        // Chromium's sandbox needs to create a user namespace; without a browser nothing may.
        assert!(!args.contains(&"--disable-userns".to_string()));
        assert!(args_of(&launch()).contains(&"--disable-userns".to_string()));
        assert!(
            !args_of(&launch())
                .iter()
                .any(|a| a.contains(".config/chromium") || a == BROWSER_WRAPPER)
        );
    }

    #[test]
    fn root_is_another_uid_inside_only_when_the_plan_says_so() {
        let mut plan = plan(&Profile::host(), &launch());
        plan.id_inside = None;
        assert!(!argv(&plan).iter().any(|a| a == "--uid"));
        plan.id_inside = Some(ROOT_INSIDE_ID);
        let args: Vec<String> = argv(&plan)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(position(&args, &["--uid", "1000", "--gid", "1000"]).is_some());
    }

    #[test]
    fn the_policy_file_is_created_in_a_rebuilt_dir_and_host_entries_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("chromium");
        std::fs::create_dir_all(root.join("policies/managed")).unwrap();
        std::fs::create_dir_all(root.join("policies/recommended")).unwrap();
        std::fs::write(root.join("master_preferences"), "{}").unwrap();
        std::fs::write(root.join("policies/managed/admin.json"), "{}").unwrap();
        std::fs::write(root.join("policies/managed/ours.json"), "{}").unwrap();
        let target = root.join("policies/managed/ours.json");
        let bind = |p: &str| Mount::RoBind(root.join(p), root.join(p));
        assert_eq!(
            rebuilt_around(&root, &target),
            [
                Mount::Dir(root.clone()),
                bind("master_preferences"),
                Mount::Dir(root.join("policies")),
                Mount::Dir(root.join("policies/managed")),
                bind("policies/managed/admin.json"),
                bind("policies/recommended"),
            ]
        );
        // In the plan: no read-only bind of a dir the policy must be created under.
        let args = args_of(&with_browser(chromium_policy(
            &["a".repeat(32)],
            Network::Host,
        )));
        let data = position(&args, &["--ro-bind-data", "22", POLICY_PATH]).expect("policy");
        assert!(position(&args, &["--ro-bind", "/etc/chromium", "/etc/chromium"]).is_none());
        if Path::new("/etc/chromium").is_dir() {
            let own = position(&args, &["--dir", "/etc/chromium"]).expect("rebuilt");
            assert!(own < data);
        }
    }

    #[test]
    fn the_chromium_policy_forces_the_profiles_extensions() {
        let policy = chromium_policy(&["a".repeat(32)], Network::Host).unwrap();
        let value: serde_json::Value = serde_json::from_str(&policy).unwrap();
        assert!(
            value["ExtensionInstallForcelist"][0]
                .as_str()
                .unwrap()
                .starts_with(&"a".repeat(32))
        );
        assert!(value.get("ProxySettings").is_none(), "{policy}");
    }

    /// In proxy mode the proxy is fixed, with or without extensions; with nothing to enforce
    /// (no extension, no proxy) there is no policy file at all.
    #[test]
    fn the_chromium_policy_fixes_the_proxy_in_proxy_mode_only() {
        assert_eq!(chromium_policy(&[], Network::Host), None);
        assert_eq!(chromium_policy(&[], Network::None), None);
        let pretty = |policy: Option<String>| {
            let value: serde_json::Value = serde_json::from_str(&policy.unwrap()).unwrap();
            serde_json::to_string_pretty(&value).unwrap()
        };
        let text = format!(
            "# proxy, no extension\n{}\n# proxy and an extension\n{}\n",
            pretty(chromium_policy(&[], Network::Proxy)),
            pretty(chromium_policy(&["a".repeat(32)], Network::Proxy)),
        );
        insta::assert_snapshot!(text);
    }

    /// The whole argv for a few launches, reviewed like code: any change to the mount plan or
    /// the flags shows in the snapshot's diff. Host-independent: the profile's system paths
    /// are a temp dir's (its path shown as `<host>`), no `/etc` entry, and the uid inside
    /// (it depends on who runs the test) is left to `root_is_another_uid_inside_...`.
    #[test]
    #[cfg(target_arch = "x86_64")] // The ELF interpreter path and the seccomp fds differ.
    fn the_argv_of_a_few_launches_is_unchanged() {
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(host.path().join("usr")).unwrap();
        std::os::unix::fs::symlink("usr/bin", host.path().join("bin")).unwrap();
        let profile = Profile {
            name: "snapshot".into(),
            path: vec!["/usr/bin".into()],
            ro_paths: ["usr", "bin", "missing"]
                .iter()
                .map(|p| host.path().join(p))
                .collect(),
            etc: Vec::new(),
            env: Default::default(),
            chromium_extensions: Vec::new(),
            notice: String::new(),
            nix_ld: Some("/nix/store/ld/lib/ld.so".into()),
        };
        let full = launch();
        let mut everything = with_browser(chromium_policy(&["a".repeat(32)], Network::Host));
        everything.network = Network::None;
        everything.secrets = vec![("TOKEN".into(), "secret".into())];
        everything.status_dir = Some("/run/user/1000/sandbox-deck/sandboxes/ab/status".into());
        everything.agent_settings =
            Some("/run/user/1000/sandbox-deck/sandboxes/ab/hooks.json".into());
        everything.exposure.read_only = vec!["/home/dev/.gitconfig".into()];
        everything.exposure.git = vec![
            crate::backend::git_view::GitMount {
                host: "/state/projects/api-0123/git/main".into(),
                inside: "/home/dev/code/api/.git".into(),
                writable: true,
            },
            crate::backend::git_view::GitMount {
                host: "/home/dev/code/api/.git/config".into(),
                inside: "/home/dev/code/api/.git/config".into(),
                writable: false,
            },
        ];
        everything.exposure.sockets =
            vec![("/run/user/1000/bus".into(), "/run/user/1000/bus".into())];
        everything.exposure.devices = vec!["/dev/dri".into()];
        let mut bare = launch();
        bare.hardening = false;
        bare.state = None;
        bare.claude = None;
        bare.agent = None;
        bare.display = None;
        bare.exposure = Exposure::default();
        let mut text = String::new();
        for (name, launch) in [("full", full), ("everything", everything), ("bare", bare)] {
            let mut plan = plan(&profile, &launch);
            plan.id_inside = None;
            text.push_str(&format!("# {name}\n"));
            for arg in argv(&plan) {
                let arg = arg
                    .to_string_lossy()
                    .replace(&*host.path().to_string_lossy(), "<host>");
                text.push_str(&arg);
                text.push('\n');
            }
        }
        insta::assert_snapshot!(text);
    }
}
