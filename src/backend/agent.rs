//! Where the agent is installed on the host, and how that install appears inside. A per-user
//! install lives under `$HOME`, which a sandbox sees as a fresh tmpfs; so the whole install
//! (and the interpreter a script install names) is bound read-only after the home, and the
//! agent is run through a symlink in a directory of ours that comes first on PATH.
//!
//! Layouts this handles (the symlinks are followed on the host):
//! - npm user prefix: `~/.npm-global/bin/claude` → `../lib/node_modules/@anthropic-ai/claude-code/…`
//! - native installer: `~/.local/bin/claude` → `~/.local/share/claude/versions/<v>`
//! - nvm: `~/.nvm/versions/node/<v>/bin/claude` → `../lib/node_modules/…/cli.js`, run by
//!   `#!/usr/bin/env node` with node in `~/.nvm/versions/node/<v>/bin`

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::host::which;

/// Inside: where the agent's symlink is, first on PATH.
pub const AGENT_BIN: &str = "/run/sandbox-deck/bin";
/// Inside: where an install is bound when its host path lies under a directory the sandbox
/// sees as its own (`~/.local`, `~/.claude`, `~/.config`, `/tmp`): a mount point there would
/// be created in the sandbox's writable state, and the install would hide its files.
const AGENT_ROOT: &str = "/run/sandbox-deck/agent";

/// The agent's install as the sandbox sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentInstall {
    /// What the payload runs, inside: `AGENT_BIN/<name>`.
    pub command: PathBuf,
    /// Where that symlink points, inside.
    pub target: PathBuf,
    /// Host directories bound read-only: (host, inside).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Directories put on PATH inside, before the profile's.
    pub path: Vec<PathBuf>,
}

/// Resolves the agent found at `found` on the host. `visible` are host paths the sandbox
/// already sees read-only (the profile's `ro_paths`): installs there need no bind.
pub fn resolve(found: &Path, home: &Path, visible: &[PathBuf]) -> AgentInstall {
    let real = found.canonicalize().unwrap_or_else(|_| found.to_owned());
    let mut roots = vec![install_root(&real, home)];
    let interpreter = script_interpreter(&real);
    if let Some(interp) = &interpreter {
        roots.push(interpreter_root(interp));
    }
    roots.sort();
    roots.dedup_by(|later, earlier| later.starts_with(&*earlier));
    let mut binds: Vec<(PathBuf, PathBuf)> = Vec::new();
    for root in roots {
        if visible.iter().any(|v| root.starts_with(v)) {
            continue;
        }
        let inside = if is_shadowed(&root, home) {
            Path::new(AGENT_ROOT).join(binds.len().to_string())
        } else {
            root.clone()
        };
        binds.push((root, inside));
    }
    let inside_of = |host: &Path| -> PathBuf {
        binds
            .iter()
            .find_map(|(root, inside)| {
                // Not `join("")`: that adds a trailing `/`, and a file's link would break.
                let rel = host.strip_prefix(root).ok()?;
                Some(if rel.as_os_str().is_empty() {
                    inside.clone()
                } else {
                    inside.join(rel)
                })
            })
            .unwrap_or_else(|| host.to_owned())
    };
    let name = found.file_name().unwrap_or(real.as_os_str());
    let mut path = vec![PathBuf::from(AGENT_BIN)];
    if let Some(dir) = interpreter.as_deref().and_then(Path::parent) {
        path.push(inside_of(dir));
    }
    AgentInstall {
        command: Path::new(AGENT_BIN).join(name),
        target: inside_of(&real),
        binds,
        path,
    }
}

/// Whether `path` lies in a directory a sandbox gets its own copy of: never the place to
/// bind an install.
fn is_shadowed(path: &Path, home: &Path) -> bool {
    match path.strip_prefix(home) {
        Ok(rel) => [".local", ".claude", ".config", ".claude.json"]
            .iter()
            .any(|d| rel.starts_with(d)),
        Err(_) => ["/tmp", "/run", "/etc", "/dev", "/proc"]
            .iter()
            .any(|d| path.starts_with(d)),
    }
}

/// The whole install of `real`: its npm package (the nearest directory above with a
/// `package.json`, inside a `node_modules`), else the directory holding it. Never `$HOME`,
/// `/` or a directory above them: then only the file itself.
fn install_root(real: &Path, home: &Path) -> PathBuf {
    let too_wide = |dir: &Path| home.starts_with(dir);
    let parent = real.parent().unwrap_or(real);
    let package = parent
        .ancestors()
        .take_while(|dir| !too_wide(dir))
        .find(|dir| {
            dir.join("package.json").is_file()
                && dir.components().any(|c| c.as_os_str() == "node_modules")
        });
    match package {
        Some(dir) => dir.to_owned(),
        None if too_wide(parent) => real.to_owned(),
        None => parent.to_owned(),
    }
}

/// Where an interpreter is installed: the directory above its `bin/`, else its directory.
fn interpreter_root(interp: &Path) -> PathBuf {
    let dir = interp.parent().unwrap_or(interp);
    match dir.file_name() {
        Some(name) if name == "bin" => dir.parent().unwrap_or(dir).to_owned(),
        _ => dir.to_owned(),
    }
}

/// The interpreter a script names on its `#!` line (through `env` looked up on the host
/// PATH), resolved to its real path. None for a binary.
fn script_interpreter(path: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let program = words.next()?;
    let interpreter = if program.ends_with("/env") {
        which(words.find(|w| !w.starts_with('-'))?)?
    } else {
        PathBuf::from(program)
    };
    interpreter.canonicalize().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn executable(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn home() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap().join("home");
        std::fs::create_dir_all(&home).unwrap();
        (dir, home)
    }

    #[test]
    fn an_npm_user_prefix_install_is_bound_whole_at_its_path() {
        let (_dir, home) = home();
        let package = home.join(".npm-global/lib/node_modules/@anthropic-ai/claude-code");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(package.join("package.json"), "{}").unwrap();
        executable(&package.join("bin/claude.exe"), "\x7fELF");
        let link = home.join(".npm-global/bin/claude");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(
            "../lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe",
            &link,
        )
        .unwrap();
        let install = resolve(&link, &home, &["/usr".into()]);
        assert_eq!(install.binds, [(package.clone(), package.clone())]);
        assert_eq!(install.command, Path::new(AGENT_BIN).join("claude"));
        assert_eq!(install.target, package.join("bin/claude.exe"));
        assert_eq!(install.path, [PathBuf::from(AGENT_BIN)]);
    }

    #[test]
    fn a_native_install_under_local_share_is_bound_where_the_state_cannot_hide_it() {
        let (_dir, home) = home();
        let version = home.join(".local/share/claude/versions/2.1.197");
        executable(&version, "\x7fELF");
        let link = home.join(".local/bin/claude");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(&version, &link).unwrap();
        let install = resolve(&link, &home, &["/usr".into()]);
        let inside = PathBuf::from(AGENT_ROOT).join("0");
        assert_eq!(
            install.binds,
            [(version.parent().unwrap().into(), inside.clone())]
        );
        assert_eq!(install.target, inside.join("2.1.197"));
    }

    #[test]
    fn an_nvm_script_install_brings_its_node() {
        let (_dir, home) = home();
        let node_root = home.join(".nvm/versions/node/v22.1.0");
        let node = node_root.join("bin/node");
        executable(&node, "\x7fELF");
        let package = node_root.join("lib/node_modules/@anthropic-ai/claude-code");
        executable(&package.join("cli.js"), &format!("#!{}\n", node.display()));
        std::fs::write(package.join("package.json"), "{}").unwrap();
        let link = node_root.join("bin/claude");
        symlink(
            "../lib/node_modules/@anthropic-ai/claude-code/cli.js",
            &link,
        )
        .unwrap();
        let install = resolve(&link, &home, &["/usr".into()]);
        assert_eq!(
            install.binds,
            [(node_root.clone(), node_root.clone())],
            "one bind: node's install holds the package"
        );
        assert_eq!(install.target, package.join("cli.js"));
        assert_eq!(
            install.path,
            [PathBuf::from(AGENT_BIN), node_root.join("bin")]
        );
    }

    #[test]
    fn an_agent_directly_in_home_is_bound_alone_never_the_home() {
        let (_dir, home) = home();
        let agent = home.join("claude");
        executable(&agent, "\x7fELF");
        std::fs::write(home.join("package.json"), "{}").unwrap();
        let install = resolve(&agent, &home, &["/usr".into()]);
        assert_eq!(install.binds, [(agent.clone(), agent.clone())]);
        assert_eq!(install.target.as_os_str(), agent.as_os_str());
    }

    #[test]
    fn a_system_install_needs_no_bind() {
        let (_dir, home) = home();
        let install = resolve(Path::new("/usr/bin/env"), &home, &["/usr".into()]);
        assert!(install.binds.is_empty());
        assert_eq!(install.command, Path::new(AGENT_BIN).join("env"));
    }
}
