//! The bubblewrap backend: unprivileged user namespaces. bwrap is a toolkit, not a policy;
//! the argv built here *is* the policy, so it is built by a pure function and tested.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::backend::Launch;
use crate::host::xvfb;
use crate::spec::Profile;

/// One step of the sandbox's filesystem, in the order bwrap applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    RoBind(PathBuf, PathBuf),
    Bind(PathBuf, PathBuf),
    Symlink { target: PathBuf, link: PathBuf },
    Tmpfs(PathBuf),
    Dir(PathBuf),
}

/// The resolved plan: host facts (what exists, what is a symlink) already looked up.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hostname: String,
    pub network: bool,
    pub die_with_parent: bool,
    pub mounts: Vec<Mount>,
    pub chdir: PathBuf,
    pub command: Vec<OsString>,
}

/// Looks at the host to turn a profile and a launch into a [`Plan`].
pub fn plan(profile: &Profile, launch: &Launch) -> Plan {
    let mut mounts = vec![Mount::Tmpfs("/tmp".into())];
    for path in profile.ro_paths.iter().chain(&launch.extra_ro) {
        if let Some(mount) = host_path_mount(path) {
            mounts.push(mount);
        }
    }
    mounts.push(Mount::Dir("/etc".into()));
    for entry in &profile.etc {
        let host = Path::new("/etc").join(entry);
        // An /etc entry that is a symlink (resolv.conf often is) is bound as what it points to.
        if host.exists() {
            mounts.push(Mount::RoBind(host.clone(), host));
        }
    }
    mounts.push(Mount::Tmpfs(launch.home.clone()));
    if let Some(dir) = &launch.claude_dir {
        mounts.push(Mount::Bind(dir.clone(), launch.home.join(".claude")));
    }
    if let Some(file) = &launch.claude_json {
        mounts.push(Mount::Bind(file.clone(), launch.home.join(".claude.json")));
    }
    mounts.push(Mount::Bind(launch.project.clone(), launch.project.clone()));
    if let Some(dir) = &launch.status_dir {
        mounts.push(Mount::Bind(dir.clone(), dir.clone()));
    }
    if let Some(file) = &launch.agent_settings {
        mounts.push(Mount::RoBind(file.clone(), file.clone()));
    }
    if let Some(display) = &launch.display {
        let socket = xvfb::socket_path(display.number);
        mounts.push(Mount::Bind(socket.clone(), socket));
        mounts.push(Mount::RoBind(
            display.xauthority.clone(),
            launch.home.join(".Xauthority"),
        ));
    }
    Plan {
        hostname: launch.hostname.clone(),
        network: launch.network,
        die_with_parent: true,
        mounts,
        chdir: launch.project.clone(),
        command: launch.command.clone(),
    }
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
    let mut push = |items: &[&std::ffi::OsStr]| args.extend(items.iter().map(|s| s.to_os_string()));
    push(&[
        "--unshare-user".as_ref(),
        "--unshare-pid".as_ref(),
        "--unshare-ipc".as_ref(),
        "--unshare-uts".as_ref(),
        "--unshare-cgroup-try".as_ref(),
    ]);
    if !plan.network {
        push(&["--unshare-net".as_ref()]);
    }
    if plan.die_with_parent {
        push(&["--die-with-parent".as_ref()]);
    }
    push(&[
        "--hostname".as_ref(),
        plan.hostname.as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--dev".as_ref(),
        "/dev".as_ref(),
    ]);
    for mount in &plan.mounts {
        match mount {
            Mount::RoBind(src, dst) => push(&["--ro-bind".as_ref(), src.as_ref(), dst.as_ref()]),
            Mount::Bind(src, dst) => push(&["--bind".as_ref(), src.as_ref(), dst.as_ref()]),
            Mount::Symlink { target, link } => {
                push(&["--symlink".as_ref(), target.as_ref(), link.as_ref()])
            }
            Mount::Tmpfs(path) => push(&["--tmpfs".as_ref(), path.as_ref()]),
            Mount::Dir(path) => push(&["--dir".as_ref(), path.as_ref()]),
        }
    }
    push(&["--chdir".as_ref(), plan.chdir.as_ref(), "--".as_ref()]);
    args.extend(plan.command.iter().cloned());
    args
}

/// The bwrap process for a launch, with its environment cleared and rebuilt from the
/// allowlist: bwrap's own pid 1 keeps the environment it was started with, and
/// `/proc/1/environ` is readable inside, so `--clearenv` alone would leak the caller's secrets.
pub fn command(bwrap: &Path, profile: &Profile, launch: &Launch) -> Command {
    let mut command = Command::new(bwrap);
    command.arg0("bwrap");
    command.args(argv(&plan(profile, launch)));
    command.env_clear();
    command.envs(launch.env.iter().map(|(k, v)| (k, v)));
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SandboxDisplay;

    fn launch() -> Launch {
        Launch {
            hostname: "api".into(),
            project: "/home/dev/code/api".into(),
            home: "/home/dev".into(),
            network: true,
            display: Some(SandboxDisplay {
                number: 12,
                xauthority: "/run/user/1000/sandbox-deck/sandboxes/ab/Xauthority".into(),
            }),
            command: vec!["bash".into()],
            extra_ro: vec![],
            extra_path: vec![],
            claude_dir: Some("/home/dev/.claude".into()),
            claude_json: Some("/state/claude.json".into()),
            env: vec![],
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
            "--die-with-parent",
        ] {
            assert!(args.contains(&flag.to_string()), "{flag} missing");
        }
        assert!(!args.contains(&"--unshare-net".to_string()));
        let mut offline = launch();
        offline.network = false;
        assert!(args_of(&offline).contains(&"--unshare-net".to_string()));
    }

    #[test]
    fn home_is_fresh_and_only_the_project_and_claude_state_are_writable() {
        let args = args_of(&launch());
        let tmpfs_home = position(&args, &["--tmpfs", "/home/dev"]).expect("home tmpfs");
        let project = position(
            &args,
            &["--bind", "/home/dev/code/api", "/home/dev/code/api"],
        )
        .unwrap();
        let claude =
            position(&args, &["--bind", "/home/dev/.claude", "/home/dev/.claude"]).unwrap();
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
                "/home/dev/.claude",
                "/home/dev/.claude.json",
                "/home/dev/code/api",
                "/tmp/.X11-unix/X12"
            ]
        );
        assert!(!args.iter().any(|a| a.contains(".ssh")));
        assert!(position(&args, &["--chdir", "/home/dev/code/api"]).is_some());
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
        l.status_dir = Some("/state/sb/status".into());
        l.agent_settings = Some("/state/sb/hook-settings.json".into());
        let args = args_of(&l);
        let home = position(&args, &["--tmpfs", "/home/dev"]).unwrap();
        let status = position(&args, &["--bind", "/state/sb/status", "/state/sb/status"]);
        let settings = position(
            &args,
            &[
                "--ro-bind",
                "/state/sb/hook-settings.json",
                "/state/sb/hook-settings.json",
            ],
        );
        assert!(status.is_some_and(|s| s > home));
        assert!(settings.is_some_and(|s| s > home));
        assert!(
            position(
                &args,
                &[
                    "--bind",
                    "/state/sb/hook-settings.json",
                    "/state/sb/hook-settings.json"
                ]
            )
            .is_none()
        );
    }

    #[test]
    fn system_paths_are_read_only() {
        let args = args_of(&launch());
        let usr = position(&args, &["--ro-bind", "/usr", "/usr"]);
        assert!(usr.is_some());
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
        let cmd = command(Path::new("/usr/bin/bwrap"), &Profile::host(), &l);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(envs.len(), 1);
        // Command::env_clear is recorded as clearing; no inherited variable is listed.
        assert_eq!(envs[0].0, "TERM");
    }
}
