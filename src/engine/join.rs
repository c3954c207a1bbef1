//! What a join (`enter`, or `launch` on a project that runs) needs recorded when a sandbox
//! starts, in its runtime dir: the environment its payload got, and the namespaces its init
//! started in, so a joined process gets the same environment and lands only where the
//! sandbox started.

use crate::error::{DeckError, Result};
use crate::host::namespace;
use crate::host::process::ProcRef;
use crate::paths::SandboxFiles;
use crate::sandbox::SandboxRecord;

/// Keeps the environment the payload was started with, secrets included (mode 0600, like the
/// token file beside it, in the runtime dir that is never mounted inside), so a join can give
/// its process the same one without asking the sandbox.
pub(crate) fn write_env(files: &SandboxFiles, env: &[(String, String)]) -> Result<()> {
    let body = serde_json::to_vec(env)
        .map_err(|e| DeckError::json("recording the sandbox's environment", e))?;
    crate::host::fs::write_private(&files.join_env(), &body)
}

pub(crate) fn read_env(files: &SandboxFiles) -> Result<Vec<(String, String)>> {
    let path = files.join_env();
    let text = std::fs::read(&path).map_err(|e| {
        let detail = format!(
            "its recorded environment {} is unreadable ({e}); a sandbox started by an \
             older sandbox-deck must be restarted before it can be joined",
            path.display()
        );
        DeckError::namespace_because("joining the sandbox", detail, e)
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        let detail = format!("{} is not a recorded environment: {e}", path.display());
        DeckError::namespace_because("joining the sandbox", detail, e)
    })
}

/// Records the namespaces of the sandbox under `launcher` (their identities, see
/// [`namespace::identities`]) once its init has started the payload (before that, bwrap is
/// still setting up: with `--disable-userns` its init moves into a nested user namespace): a
/// later join goes only where the sandbox started.
pub(crate) fn pin_namespaces(files: &SandboxFiles, launcher: ProcRef) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = namespace::sandbox_init(&launcher)
            .filter(|init| !init.descendants().is_empty())
            .and_then(|init| namespace::identities(init.pid));
        if let Some(ids) = found {
            let body = serde_json::to_vec(&ids)
                .map_err(|e| DeckError::json("recording the sandbox's namespaces", e))?;
            return crate::host::fs::write_private(&files.init_namespaces(), &body);
        }
        if !launcher.is_alive() || std::time::Instant::now() > deadline {
            return Err(DeckError::namespace(
                "recording the sandbox's namespaces",
                "its init did not appear",
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Refuses a join when the sandbox's init is no longer in the namespaces it started in:
/// something inside moved it, and would pick where the joined process lands.
pub(crate) fn check_namespaces(
    record: &SandboxRecord,
    files: &SandboxFiles,
    init: &ProcRef,
) -> Result<()> {
    let refuse = |why: String| DeckError::WrongState {
        name: record.name.to_string(),
        state: record.state.to_string(),
        hint: format!("{why}; restart it (`sandbox-deck restart {}`)", record.name),
    };
    let path = files.init_namespaces();
    // A sandbox launched a moment ago may not have been pinned yet.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let recorded: Vec<(String, u64, u64)> = std::fs::read(&path)
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())
        .ok_or_else(|| {
            refuse(format!(
                "the namespaces it started in were not recorded ({})",
                path.display()
            ))
        })?;
    let now = namespace::identities(init.pid).ok_or_else(|| refuse("its init is gone".into()))?;
    match recorded.iter().find(|r| !now.contains(r)) {
        None => Ok(()),
        Some((kind, _, _)) => Err(refuse(format!(
            "its init has left the {kind} namespace it started in (a process inside moved it)"
        ))),
    }
}
