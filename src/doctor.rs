//! `sandbox-deck doctor`: every host prerequisite, and how to install what is missing.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::host::placement::{Facts, has_user_manager};
use crate::host::which;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Whether `create` needs it (others are needed by later backends or the agent).
    pub required: bool,
    pub detail: String,
    /// What to do when it is not ok.
    pub fix: Option<String>,
}

pub fn run() -> Vec<Check> {
    vec![
        bwrap(),
        xvfb(),
        binary("tmux", "tmux", true, "sudo apt-get install tmux", &["-V"]),
        binary(
            "systemd-nspawn",
            "systemd-nspawn",
            false,
            "sudo apt-get install systemd-container (container backend)",
            &["--version"],
        ),
        binary(
            "qemu",
            "qemu-system-x86_64",
            false,
            "sudo apt-get install qemu-system-x86 (VM backend)",
            &["--version"],
        ),
        kvm(),
        landlock(),
        agent(),
        chromium(),
        linger(),
    ]
}

/// The name of the check of what survives a logout.
const LINGER: &str = "linger";

/// Whether logging out (of SSH) ends the sandboxes: with a systemd user manager, our
/// long-lived processes live in its scopes, which outlive a logout only with lingering on.
fn linger() -> Check {
    let facts = Facts::observe();
    if !has_user_manager(&facts) {
        return without_user_manager();
    }
    if facts.systemd_run.is_none() {
        return without_systemd_run();
    }
    let uid = nix::unistd::getuid().as_raw().to_string();
    let reading = match which("loginctl") {
        None => Err("`loginctl` is not on PATH".to_owned()),
        Some(loginctl) => Command::new(loginctl)
            .args(["show-user", &uid, "--property=Linger"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running loginctl: {e}"))
            .and_then(|out| {
                parse_linger(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
                    let err = String::from_utf8_lossy(&out.stderr);
                    format!("`loginctl show-user {uid}` did not say: {}", err.trim())
                })
            }),
    };
    with_user_manager(reading)
}

/// `Linger=yes` or `Linger=no` in `loginctl show-user … --property=Linger` output.
pub fn parse_linger(text: &str) -> Option<bool> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Linger="))
        .and_then(|value| match value.trim() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        })
}

const ENABLE_LINGER: &str = "`loginctl enable-linger $USER`: your user manager, and the \
     sandboxes in its scopes, then keep running after your last logout (agent-deck lost 33 \
     sessions to one SSH logout after 25 days of uptime)";

/// The check on a host with a user manager, from what `loginctl` said (or why it did not).
fn with_user_manager(linger: std::result::Result<bool, String>) -> Check {
    let placed = "the tmux server, the Xvfbs and the engine run in scopes of your systemd \
                  user manager (sandbox-deck-*.scope)";
    match linger {
        Ok(true) => Check {
            name: LINGER,
            ok: true,
            required: false,
            detail: format!("lingering is on: {placed} and outlive every logout"),
            fix: None,
        },
        Ok(false) => Check {
            name: LINGER,
            ok: false,
            required: false,
            detail: format!(
                "lingering is off: {placed}, which systemd stops when your last session \
                 ends (an SSH logout), and every sandbox with them"
            ),
            fix: Some(ENABLE_LINGER.into()),
        },
        Err(why) => Check {
            name: LINGER,
            ok: false,
            required: false,
            detail: format!(
                "{placed}, which outlive your last logout only with lingering on; \
                 whether it is is unknown: {why}"
            ),
            fix: Some(ENABLE_LINGER.into()),
        },
    }
}

fn without_systemd_run() -> Check {
    Check {
        name: LINGER,
        ok: false,
        required: false,
        detail: "a systemd user manager runs but `systemd-run` is not on PATH: the tmux \
                 server, the Xvfbs and the engine stay in your login's session, which \
                 systemd may end at logout (KillUserProcesses)"
            .into(),
        fix: Some("put systemd's `systemd-run` on PATH (package systemd)".into()),
    }
}

fn without_user_manager() -> Check {
    Check {
        name: LINGER,
        ok: true,
        required: false,
        detail: "no systemd user manager here, so no lingering to check: the tmux server, \
                 the Xvfbs and the engine run as ordinary processes, each in a session of \
                 its own (setsid), so a logout's hangup does not reach them; they end with a \
                 reboot, or when logind kills a session's processes at logout \
                 (KillUserProcesses=yes)"
            .into(),
        fix: None,
    }
}

/// The browser every sandbox gets (`chromium` inside) when the host has one.
fn chromium() -> Check {
    let hint = crate::backend::browser_install_hint();
    let missing = |detail: String| Check {
        name: "chromium",
        ok: false,
        required: false,
        detail,
        fix: Some(hint.into()),
    };
    let Some(found) = which("chromium") else {
        return missing("`chromium` is not on PATH: sandboxes get no browser".into());
    };
    match crate::backend::find_browser(&crate::spec::Profile::host()) {
        Some(path) => Check {
            name: "chromium",
            ok: true,
            required: false,
            detail: format!(
                "{}; inside, `chromium` runs it with its own sandbox and a profile per sandbox",
                version_line(&path, &["--version"]).unwrap_or_else(|| path.display().to_string())
            ),
            fix: None,
        },
        None => missing(format!(
            "{} is outside the system paths a sandbox sees: sandboxes get no browser",
            found.display()
        )),
    }
}

/// The agent, its version, and what of its install a sandbox gets (bound read-only after
/// the fresh home; a per-user install lives under it).
fn agent() -> Check {
    let mut check = binary(
        "claude",
        "claude",
        false,
        &crate::backend::claude_install_hint(),
        &["--version"],
    );
    let found = which("claude");
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    if let (Some(found), Some(home)) = (found, home) {
        let home = home.canonicalize().unwrap_or(home);
        let install =
            crate::backend::agent::resolve(&found, &home, &crate::spec::Profile::host().ro_paths);
        check
            .detail
            .push_str(&format!("; inside: {}", install_summary(&install)));
    }
    check
}

/// One line: the binds and the command a sandbox runs the agent as.
fn install_summary(install: &crate::backend::AgentInstall) -> String {
    let mut parts: Vec<String> = install
        .binds
        .iter()
        .map(|(host, inside)| {
            if host == inside {
                format!("{} (read-only)", host.display())
            } else {
                format!("{} at {} (read-only)", host.display(), inside.display())
            }
        })
        .collect();
    if parts.is_empty() {
        parts.push("nothing to bind (a system install)".into());
    }
    format!(
        "mounts {}; runs {} -> {}",
        parts.join(", "),
        install.command.display(),
        install.target.display()
    )
}

/// True when everything `create` needs is present.
pub fn all_required_ok(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok || !c.required)
}

fn binary(
    name: &'static str,
    binary: &str,
    required: bool,
    fix: &str,
    version_args: &[&str],
) -> Check {
    match which(binary) {
        None => not_on_path(name, binary, required, fix),
        Some(path) => Check {
            name,
            ok: true,
            required,
            detail: version_line(&path, version_args).unwrap_or_else(|| path.display().to_string()),
            fix: None,
        },
    }
}

/// Xvfb has no version option (and run without one, it starts a server): its version
/// comes from the package manager that installed it.
fn xvfb() -> Check {
    let Some(path) = which("Xvfb") else {
        return not_on_path("Xvfb", "Xvfb", true, "sudo apt-get install xvfb");
    };
    let version = package_version(&path)
        .unwrap_or_else(|| "version unknown: no dpkg or rpm package owns it".into());
    Check {
        name: "Xvfb",
        ok: true,
        required: true,
        detail: format!("{} ({version})", path.display()),
        fix: None,
    }
}

/// "<package> <version>" of the dpkg or rpm package that owns `path`.
fn package_version(path: &Path) -> Option<String> {
    let real = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let output = |program: &Path, args: &[&std::ffi::OsStr]| -> Option<String> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    };
    if let Some(dpkg) = which("dpkg-query") {
        // "xvfb: /usr/bin/Xvfb"
        let owner = output(&dpkg, &["-S".as_ref(), real.as_os_str()])?;
        let package = owner.split(':').next()?.trim().to_owned();
        let version = output(
            &dpkg,
            &[
                "-W".as_ref(),
                "-f".as_ref(),
                "${Version}".as_ref(),
                package.as_ref(),
            ],
        )?;
        return Some(format!("{package} {version}"));
    }
    let rpm = which("rpm")?;
    output(
        &rpm,
        &[
            "-qf".as_ref(),
            "--qf".as_ref(),
            "%{NAME} %{VERSION}-%{RELEASE}".as_ref(),
            real.as_os_str(),
        ],
    )
}

fn not_on_path(name: &'static str, binary: &str, required: bool, fix: &str) -> Check {
    Check {
        name,
        ok: false,
        required,
        detail: format!("`{binary}` is not on PATH"),
        fix: Some(fix.to_owned()),
    }
}

fn version_line(path: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let line = String::from_utf8_lossy(&text)
        .lines()
        .next()?
        .trim()
        .to_owned();
    (!line.is_empty() && line.len() < 120).then(|| format!("{} ({line})", path.display()))
}

/// bwrap must work for an unprivileged user: as root we check as `nobody` through setpriv.
fn bwrap() -> Check {
    let fix_install = "sudo apt-get install bubblewrap";
    let Some(path) = which("bwrap") else {
        return Check {
            name: "bwrap",
            ok: false,
            required: true,
            detail: "`bwrap` is not on PATH".into(),
            fix: Some(fix_install.into()),
        };
    };
    let probe = [
        "--unshare-user",
        "--unshare-pid",
        "--ro-bind",
        "/",
        "/",
        "true",
    ];
    let is_root = nix::unistd::geteuid().is_root();
    let mut command = match (is_root, which("setpriv")) {
        (true, Some(setpriv)) => {
            let mut c = Command::new(setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&path);
            c
        }
        _ => Command::new(&path),
    };
    let out = command.args(probe).stdin(Stdio::null()).output();
    match out {
        Ok(out) if out.status.success() => Check {
            name: "bwrap",
            ok: true,
            required: true,
            detail: format!("{} works without privileges", path.display()),
            fix: None,
        },
        Ok(out) => Check {
            name: "bwrap",
            ok: false,
            required: true,
            detail: format!(
                "unprivileged user namespaces are refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            fix: Some(
                "allow unprivileged user namespaces: `sudo sysctl kernel.unprivileged_userns_clone=1` \
                 (Debian) or, on Ubuntu 24.04+, an AppArmor profile for bwrap \
                 (`kernel.apparmor_restrict_unprivileged_userns`)"
                    .into(),
            ),
        },
        Err(e) => Check {
            name: "bwrap",
            ok: false,
            required: true,
            detail: format!("could not run bwrap: {e}"),
            fix: Some(fix_install.into()),
        },
    }
}

/// Landlock scoping, and what a sandbox in host-network mode can still reach.
fn landlock() -> Check {
    let abi = crate::backend::landlock::abi_version();
    let reachable = "with --network host, TCP services on the host's 127.0.0.1 stay reachable \
                     (use --network none to close them)";
    if abi >= 6 {
        Check {
            name: "landlock",
            ok: true,
            required: false,
            detail: format!(
                "ABI {abi}: host abstract sockets (X11, D-Bus) and signals are out of reach; {reachable}"
            ),
            fix: None,
        }
    } else {
        Check {
            name: "landlock",
            ok: false,
            required: false,
            detail: format!(
                "ABI {abi} (< 6), so weaker here: with --network host a sandbox can reach the \
                 host's abstract sockets (X11, some D-Bus buses), and {reachable}. Not weaker: \
                 host processes stay invisible and out of reach of a sandbox and of what \
                 `launch --enter` or a join runs in it (own pid namespace and process group; \
                 Landlock's signal scope is a second wall there, not the only one)"
            ),
            fix: Some(
                "a kernel ≥ 6.12 with Landlock enabled (lsm=…,landlock), or --network none".into(),
            ),
        }
    }
}

fn kvm() -> Check {
    let usable = nix::unistd::access(
        "/dev/kvm",
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    );
    Check {
        name: "kvm",
        ok: usable.is_ok(),
        required: false,
        detail: match usable {
            Ok(()) => "/dev/kvm is usable".into(),
            Err(e) => format!("/dev/kvm is not usable: {e}"),
        },
        fix: usable.is_err().then(|| {
            "enable virtualization in firmware, load kvm_intel/kvm_amd, and add yourself to the `kvm` group (VM backend)"
                .into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linger_property_parses() {
        assert_eq!(parse_linger("Linger=yes\n"), Some(true));
        assert_eq!(parse_linger("Linger=no"), Some(false));
        assert_eq!(parse_linger("Name=me\nLinger=yes\n"), Some(true));
        assert_eq!(parse_linger("Linger=maybe\n"), None);
        assert_eq!(parse_linger(""), None);
        assert_eq!(parse_linger("Failed to get user: No such user"), None);
    }

    #[test]
    fn lingering_off_says_what_a_logout_ends_and_how_to_keep_it() {
        let off = with_user_manager(Ok(false));
        assert!(!off.ok && !off.required);
        assert!(off.detail.contains("lingering is off"), "{}", off.detail);
        assert!(off.detail.contains("every sandbox"), "{}", off.detail);
        let fix = off.fix.unwrap();
        assert!(fix.contains("loginctl enable-linger $USER"), "{fix}");
        assert!(fix.contains("33 sessions"), "{fix}");
    }

    #[test]
    fn lingering_on_is_fine_and_an_unknown_answer_says_why() {
        let on = with_user_manager(Ok(true));
        assert!(on.ok && on.fix.is_none());
        assert!(on.detail.contains("sandbox-deck-*.scope"), "{}", on.detail);
        let unknown = with_user_manager(Err("`loginctl` is not on PATH".into()));
        assert!(!unknown.ok);
        assert!(unknown.detail.contains("loginctl"), "{}", unknown.detail);
        assert!(unknown.fix.unwrap().contains("enable-linger"));
    }

    #[test]
    fn without_systemd_it_says_what_runs_where_instead() {
        let check = without_user_manager();
        assert!(check.ok && check.fix.is_none());
        assert!(
            check.detail.contains("no systemd user manager"),
            "{}",
            check.detail
        );
        assert!(check.detail.contains("setsid"), "{}", check.detail);
        let check = without_systemd_run();
        assert!(!check.ok);
        assert!(check.fix.unwrap().contains("systemd-run"));
    }
}
