//! Running a command inside a running sandbox's namespaces (`launch DIR` joining an instance,
//! `launch DIR --enter`), without trusting anything the sandbox controls.
//!
//! The join happens in three processes:
//! - the caller (host, unconfined) spawns a child and waits for it;
//! - that child, the *waiter*, joins the namespaces and forks. It stays in the host's pid
//!   namespace (joining a pid namespace only applies to children), so it runs nothing but our
//!   own code from the fork: it forwards SIGTERM/SIGHUP and passes on the exit status. No
//!   process of the sandbox can name it (it has no pid there), so none can signal or trace it;
//! - its child, the *joined* process, is born in the sandbox's pid namespace, in a process
//!   group of its own (so `kill(0, …)` reaches nothing on the host), confined (capabilities
//!   dropped, Landlock, seccomp) and then execs the command with the environment we give it.
//!
//! What a join trusts is recorded on our side when the sandbox starts: the environment its
//! payload was given ([`write_join_env`]) and the namespaces its init started in
//! ([`pin_init_namespaces`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use crate::error::{DeckError, IoContext, Result};
use crate::host::job;
use crate::host::process::ProcRef;

/// The namespaces to join, in the order that works: the user namespace that owns the
/// others (for an unprivileged bwrap, the sandbox's; as root, ours, so nothing to join),
/// then the others, then the sandbox's own user namespace when it is nested below that
/// owner (`--disable-userns` runs the sandbox in a second, nested user namespace).
pub struct Namespaces {
    owner: Option<std::fs::File>,
    others: Vec<(std::fs::File, CloneFlags)>,
    inner: Option<std::fs::File>,
}

/// The sandbox's first process: the first one below `launcher` (parents come before their
/// children in [`ProcRef::descendants`]) that lives in another pid namespace, or, for a
/// sandbox without one, in another mount namespace. Namespaces are the kernel's facts; a
/// process name would be the sandbox's word (any process can call itself `bwrap`).
pub fn sandbox_init(launcher: &ProcRef) -> Option<ProcRef> {
    let tree = launcher.descendants();
    for ns in ["pid", "mnt"] {
        let ours = namespace_of(launcher.pid, ns)?;
        if let Some(init) = tree
            .iter()
            .find(|p| namespace_of(p.pid, ns).is_some_and(|theirs| theirs != ours))
        {
            return Some(*init);
        }
    }
    None
}

fn namespace_of(pid: u32, ns: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()
}

/// The namespaces a sandbox's init is pinned to: every kind a process inside could move it
/// out of (its pid namespace cannot change, but is listed for completeness).
const PINNED: [&str; 7] = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];

/// The identity (device, inode) of each of `pid`'s namespaces, by kind; None when the
/// process is gone. A join compares its target's identities with those recorded when the
/// sandbox started: a process inside may ptrace the sandbox's init (same user, same
/// namespace) and make it `unshare` into namespaces of its own choosing.
pub fn identities(pid: u32) -> Option<Vec<(String, u64, u64)>> {
    PINNED
        .iter()
        .map(|kind| {
            let meta = std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).ok()?;
            Some(((*kind).to_owned(), meta.dev(), meta.ino()))
        })
        .collect()
}

/// Records the environment a sandbox's payload was started with, for later joins, in `file`
/// (`paths::SandboxFiles::join_env`: in its runtime dir, ours and never mounted inside), secrets
/// included (mode 0600, like the token file beside it), so a join can give its process the
/// same one without asking the sandbox.
pub fn write_join_env(file: &Path, env: &[(String, String)]) -> Result<()> {
    let body = serde_json::to_vec(env)
        .map_err(|e| DeckError::json("recording the sandbox's environment", e))?;
    crate::host::fs::write_private(file, &body)
}

/// The environment [`write_join_env`] recorded in `path`.
pub fn read_join_env(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read(path).map_err(|e| {
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

/// Records in `file` (`paths::SandboxFiles::init_namespaces`) the namespaces of the sandbox
/// under `launcher` (their [`identities`]) once its init has started the payload (before
/// that, bwrap is still setting up: with `--disable-userns` its init moves into a nested user
/// namespace): a later join goes only where the sandbox started.
pub fn pin_init_namespaces(file: &Path, launcher: ProcRef) -> Result<()> {
    let deadline = Instant::now() + PIN_WAIT;
    loop {
        let found = sandbox_init(&launcher)
            .filter(|init| !init.descendants().is_empty())
            .and_then(|init| identities(init.pid));
        if let Some(ids) = found {
            let body = serde_json::to_vec(&ids)
                .map_err(|e| DeckError::json("recording the sandbox's namespaces", e))?;
            return crate::host::fs::write_private(file, &body);
        }
        if !launcher.is_alive() || Instant::now() > deadline {
            return Err(DeckError::namespace(
                "recording the sandbox's namespaces",
                "its init did not appear",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long the sandbox's init may take to start its payload (bwrap's set-up on a loaded
/// machine takes seconds), and so how long a join waits for the record of its namespaces.
const PIN_WAIT: Duration = Duration::from_secs(15);

/// Refuses a join when the sandbox's init is no longer in the namespaces it started in:
/// something inside moved it, and would pick where the joined process lands. The error says
/// why, for a message that goes on to tell the user to restart the sandbox. `path` is where
/// [`pin_init_namespaces`] recorded them.
pub fn check_pinned_namespaces(path: &Path, init: &ProcRef) -> std::result::Result<(), String> {
    // A sandbox launched a moment ago may not have been pinned yet; on a loaded machine the
    // pinning thread can take seconds to run. Waiting longer costs nothing when all is well
    // (the record is there), and the join still fails closed after it.
    let deadline = Instant::now() + PIN_WAIT;
    while !path.exists() && init.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorded: Vec<(String, u64, u64)> = std::fs::read(path)
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())
        .ok_or_else(|| {
            format!(
                "the namespaces it started in were not recorded ({})",
                path.display()
            )
        })?;
    let now = identities(init.pid).ok_or_else(|| "its init is gone".to_owned())?;
    match recorded.iter().find(|r| !now.contains(r)) {
        None => Ok(()),
        Some((kind, _, _)) => Err(format!(
            "its init has left the {kind} namespace it started in (a process inside moved it)"
        )),
    }
}

/// Opened now, from outside any Landlock domain: once confined, a process may not even
/// look at another domain's /proc entries. Fails when `init` ended meanwhile (its pid could
/// have been reused by then).
pub fn open_namespaces(init: &ProcRef) -> Result<Namespaces> {
    let open = |pid: u32, name: &str| {
        let path = format!("/proc/{pid}/ns/{name}");
        std::fs::File::open(&path).context_io(|| format!("opening {path}"))
    };
    let mut others = Vec::new();
    for (name, flag) in [
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("pid", CloneFlags::CLONE_NEWPID),
    ] {
        if namespace_of(init.pid, name) != namespace_of(std::process::id(), name) {
            others.push((open(init.pid, name)?, flag));
        }
    }
    let ours = identity(&open(std::process::id(), "user")?)?;
    let inner = open(init.pid, "user")?;
    if !init.is_alive() {
        return Err(DeckError::namespace(
            "joining the sandbox",
            "its first process ended meanwhile",
        ));
    }
    let owner = match others.first() {
        Some((mnt, _)) => owning_user_namespace(mnt)?,
        None => open(init.pid, "user")?,
    };
    let owner_id = identity(&owner)?;
    let inner_id = identity(&inner)?;
    Ok(Namespaces {
        owner: (owner_id != ours).then_some(owner),
        others,
        inner: (inner_id != owner_id && inner_id != ours).then_some(inner),
    })
}

/// NS_GET_USERNS: the user namespace that owns a namespace.
fn owning_user_namespace(ns: &std::fs::File) -> Result<std::fs::File> {
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    // SAFETY: the ioctl takes no argument and returns a new file descriptor or -1.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS as _) };
    if fd < 0 {
        return Err(DeckError::io(
            "finding the owner of the sandbox's namespaces",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn identity(ns: &std::fs::File) -> Result<(u64, u64)> {
    let meta = ns
        .metadata()
        .map_err(|e| DeckError::io("reading a namespace", e))?;
    Ok((meta.dev(), meta.ino()))
}

/// Makes `cmd` run as a joined process: its child joins `namespaces` and stays behind as
/// the waiter; the grandchild, in the sandbox's pid namespace, changes to `workdir`, runs
/// `confine` and execs. `cmd`'s exit status is the joined command's (128 + signal when it
/// was killed). The caller gives `cmd` its whole environment: nothing comes from the sandbox.
pub fn join(
    cmd: &mut Command,
    namespaces: Namespaces,
    workdir: &Path,
    mut confine: impl FnMut() -> io::Result<()> + Send + Sync + 'static,
) -> Result<()> {
    let workdir = CString::new(workdir.as_os_str().as_bytes())
        .map_err(|_| DeckError::namespace("joining the sandbox", "the project path holds a NUL"))?;
    // Decided here, where the foreground process group is visible: inside, ours has no id.
    let foreground = job::owns_the_terminal();
    // SAFETY: between fork and exec only async-signal-safe calls are made: setns, sigprocmask,
    // fork, waitpid, sigtimedwait, kill, prctl, setpgid, tcsetpgrp, chdir, close_range, _exit,
    // and the confinement syscalls (the capability prctls, capget and capset of
    // `host::capabilities`, landlock, seccomp), as the backend's own pre-exec hook does.
    // Nothing of ours allocates there, except to report an error.
    unsafe {
        cmd.pre_exec(move || {
            enter_namespaces(&namespaces)?;
            let signals = forwarded_signals();
            libc::sigprocmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut());
            match libc::fork() {
                -1 => Err(io::Error::last_os_error()),
                0 => {
                    become_joined(foreground, &workdir)?;
                    confine()
                }
                child => wait_and_forward(child, &signals, foreground),
            }
        });
    }
    Ok(())
}

fn enter_namespaces(namespaces: &Namespaces) -> io::Result<()> {
    if let Some(owner) = &namespaces.owner {
        setns(owner, CloneFlags::CLONE_NEWUSER)?;
    }
    for (file, flag) in &namespaces.others {
        setns(file, *flag)?;
    }
    if let Some(inner) = &namespaces.inner {
        setns(inner, CloneFlags::CLONE_NEWUSER)?;
    }
    Ok(())
}

/// SIGTERM and SIGHUP (forwarded to the joined process) and SIGCHLD (it ended).
fn forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset only adds valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// In the grandchild, before confinement: dies with the waiter, leaves the caller's process
/// group (whose other members are host processes: `kill(0, …)` would reach them), takes the
/// terminal's foreground when the caller had it, and moves to the project.
unsafe fn become_joined(foreground: bool, workdir: &CString) -> io::Result<()> {
    // SAFETY: see `join`; every call is a plain syscall wrapper.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        job::lead_a_new_group(foreground)?;
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if libc::chdir(workdir.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The waiter's whole life: it closes every descriptor beyond stdio (among them the pipe
/// through which the caller learns that the exec happened: it must see it close when the
/// joined process execs, not when we end), forwards SIGTERM/SIGHUP, relays job control when
/// the joined process has the terminal, and exits with the joined process's status. It
/// never returns, so it never execs anything.
fn wait_and_forward(child: libc::pid_t, signals: &libc::sigset_t, foreground: bool) -> ! {
    // SAFETY: see `join`.
    unsafe {
        // Not dumpable: ptrace and /proc/<pid>/mem need CAP_SYS_PTRACE where our memory was
        // made (the host), which nothing in the sandbox has, even if it could name us.
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let tick = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let flags = if foreground {
            libc::WNOHANG | libc::WUNTRACED
        } else {
            libc::WNOHANG
        };
        loop {
            let mut status = 0;
            let reaped = libc::waitpid(child, &mut status, flags);
            if reaped == child && libc::WIFSTOPPED(status) {
                job::suspend_with(child);
                continue;
            }
            if reaped == child {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                libc::_exit(code);
            }
            if reaped < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
            let signal = libc::sigtimedwait(signals, std::ptr::null_mut(), &tick);
            if signal == libc::SIGTERM || signal == libc::SIGHUP {
                libc::kill(child, signal);
            }
        }
    }
}
