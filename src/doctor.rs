//! `sandbox-deck doctor`: every host prerequisite, and how to install what is missing.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

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
        binary(
            "Xvfb",
            "Xvfb",
            true,
            "sudo apt-get install xvfb",
            &["-help"],
        ),
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
        binary(
            "claude",
            "claude",
            false,
            &crate::backend::claude_install_hint(),
            &["--version"],
        ),
    ]
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
        None => Check {
            name,
            ok: false,
            required,
            detail: format!("`{binary}` is not on PATH"),
            fix: Some(fix.to_owned()),
        },
        Some(path) => Check {
            name,
            ok: true,
            required,
            detail: version_line(&path, version_args).unwrap_or_else(|| path.display().to_string()),
            fix: None,
        },
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
