//! Starting a sandbox's proxy (the launch's side) and being one (`egress-proxy`).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use command_fds::{CommandFdExt, FdMapping};

use super::{Spec, plant, proxy};
use crate::error::{DeckError, IoContext, Result};

/// Where the proxy finds bwrap's info pipe (read end) and block pipe (write end).
const INFO_FD: i32 = 3;
const BLOCK_FD: i32 = 4;

/// bwrap's ends of the two pipes: it writes its child's pid to `info` and its child waits
/// on `block` until the proxy has planted its listeners.
#[derive(Debug)]
pub struct BwrapFds {
    pub info: OwnedFd,
    pub block: OwnedFd,
}

/// Starts the proxy for the sandbox about to run, detached (its own session, nobody's
/// child), and returns bwrap's ends of the pipes. Were bwrap never run, the proxy reads EOF
/// and ends.
pub fn start_proxy(spec_path: &Path) -> Result<BwrapFds> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| DeckError::os("creating a pipe for the egress proxy", e))
    };
    let (info_read, info_write) = pipe()?;
    let (block_read, block_write) = pipe()?;
    let exe = std::env::current_exe().context_io(|| "finding our own binary".to_string())?;
    let mut command = Command::new(exe);
    command
        .current_dir("/")
        .args(["egress-proxy", "--detach", "--spec"])
        .arg(spec_path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
        .fd_mappings(vec![
            FdMapping {
                parent_fd: info_read,
                child_fd: INFO_FD,
            },
            FdMapping {
                parent_fd: block_write,
                child_fd: BLOCK_FD,
            },
        ])
        .map_err(|e| {
            DeckError::os(
                "passing descriptors to the egress proxy",
                std::io::Error::other(e),
            )
        })?;
    let status = command
        .status()
        .context_io(|| "starting the egress proxy".to_string())?;
    if !status.success() {
        return Err(DeckError::host(
            "starting the egress proxy",
            status.to_string(),
        ));
    }
    Ok(BwrapFds {
        info: info_write,
        block: block_read,
    })
}

/// The `--detach` step: the proxy itself in a new session (the descriptors at 3 and 4 go
/// with it), and return at once.
pub fn detach(args: &[std::ffi::OsString]) -> Result<()> {
    crate::host::job::own_binary_detached(args)?
        .spawn()
        .context_io(|| "starting the egress proxy".to_string())?;
    Ok(())
}

/// Being the proxy: wait for bwrap's child, plant the listeners in its network namespace,
/// let it go on, serve until it ends. Called single-threaded (the planting forks).
pub fn run_proxy(spec_path: &Path) -> Result<()> {
    use std::os::fd::FromRawFd;
    let spec = Spec::read(spec_path)?;
    let policy = Arc::new(spec.policy(spec_path)?);
    // SAFETY: the launch mapped these two fds for us and nothing else in this process uses them.
    let (mut info, block) = unsafe {
        (
            std::fs::File::from_raw_fd(INFO_FD),
            std::fs::File::from_raw_fd(BLOCK_FD),
        )
    };
    let pid =
        plant::read_child_pid(&mut info).map_err(|e| DeckError::io("reading bwrap's child", e))?;
    drop(info);
    let watched = plant::pidfd(pid).map_err(|e| DeckError::io("watching the sandbox", e))?;
    let listeners = match plant::listeners_in(pid) {
        Ok(listeners) => listeners,
        Err(e) => {
            plant::kill(&watched);
            return Err(DeckError::io("planting the proxy's listeners", e));
        }
    };
    // The real credential lives in this process: no core dumps, no ptrace or /proc/PID/mem
    // from processes of the same user.
    // SAFETY: prctl with an int argument; the result is not needed.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let mut block = block;
    // One byte lets bwrap's child go on; closing would too.
    let _ = block.write_all(b"1");
    drop(block);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DeckError::io("starting the proxy's runtime", e))?;
    // The sandbox's end is the proxy's: a pidfd turns readable when its process exits.
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(
            watched.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        while nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).is_err() {}
        std::process::exit(0);
    });
    runtime
        .block_on(proxy::serve(listeners, policy))
        .map_err(|e| DeckError::io("serving", e))
}
