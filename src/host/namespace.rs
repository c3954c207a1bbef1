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

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::sched::{CloneFlags, setns};

use crate::error::{DeckError, IoContext, Result};
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
    let foreground = owns_the_terminal();
    // SAFETY: between fork and exec only async-signal-safe calls are made: setns, sigprocmask,
    // fork, waitpid, sigtimedwait, kill, prctl, setpgid, tcsetpgrp, chdir, close_range, _exit,
    // and the confinement syscalls (capset, landlock, seccomp), as the backend's own
    // pre-exec hook does. Nothing of ours allocates there, except to report an error.
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

/// True when our process group is the terminal's foreground one: the joined process then
/// takes it over (an interactive shell needs it for job control and Ctrl-C), and
/// [`reclaim_terminal`] gives it back.
pub fn owns_the_terminal() -> bool {
    // SAFETY: plain queries on fd 0.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
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
        lead_a_new_group(foreground)?;
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
                suspend_with(child);
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

/// `child`, leader of its own process group, was stopped (Ctrl-Z): that group is not the one
/// the user's shell waits for, so ours stops the same way, with the terminal given back, and
/// on `fg` the terminal goes to the child's group again and it goes on. Only syscalls: also
/// safe in the waiter between fork and exec.
pub fn suspend_with(child: libc::pid_t) {
    // SAFETY: see `join`.
    unsafe {
        // Only a terminal the child had is taken back: never the shell's.
        if libc::tcgetpgrp(0) == child {
            hand_terminal_to(libc::getpgrp());
        }
        libc::kill(0, libc::SIGSTOP);
        // Continued: with the terminal (`fg`) it goes back to the joined process; without
        // it (`bg`) the joined process goes on in the background.
        if libc::tcgetpgrp(0) == libc::getpgrp() {
            hand_terminal_to(child);
        }
        libc::kill(-child, libc::SIGCONT);
    }
}

/// Makes the calling process lead a new process group, and that group the terminal's
/// foreground when `foreground`. Only syscalls: safe between fork and exec.
fn lead_a_new_group(foreground: bool) -> io::Result<()> {
    // SAFETY: plain syscall wrappers.
    if unsafe { libc::setpgid(0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if foreground {
        // SAFETY: as above.
        hand_terminal_to(unsafe { libc::getpgrp() });
    }
    Ok(())
}

/// `tcsetpgrp` on fd 0, with SIGTTOU blocked on this thread meanwhile: a background group
/// that calls it gets SIGTTOU (and stops) otherwise. Only syscalls.
fn hand_terminal_to(group: libc::pid_t) {
    // SAFETY: the sets are initialised by sigemptyset before use; plain syscall wrappers.
    unsafe {
        let mut ttou: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &ttou, &mut old);
        libc::tcsetpgrp(0, group);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Makes `cmd` lead a process group of its own, so that `kill(0, …)` from it or anything it
/// starts reaches no other process of the caller's terminal job; it takes the terminal's
/// foreground when we had it (give it back with [`reclaim_terminal`], relay stops with
/// [`suspend_with`]). Returns whether it takes the terminal.
pub fn lead_own_group(cmd: &mut Command) -> bool {
    let foreground = owns_the_terminal();
    // SAFETY: setpgid, sigprocmask and tcsetpgrp only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || lead_a_new_group(foreground));
    }
    foreground
}

/// After the joined process ends: gives the terminal's foreground back to our process group
/// if the joined process had taken it.
pub fn reclaim_terminal(had_it: bool) {
    if had_it {
        // SAFETY: a plain query.
        hand_terminal_to(unsafe { libc::getpgrp() });
    }
}

/// Empties the bounding, effective, permitted and inheritable sets, like bwrap's
/// `--cap-drop ALL` does for the sandbox itself: joining a user namespace grants them all.
/// Only syscalls: safe between fork and exec.
pub fn drop_capabilities() -> io::Result<()> {
    for cap in 0..=63 {
        // SAFETY: PR_CAPBSET_DROP takes a capability number; unknown ones fail with EINVAL.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            break;
        }
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let empty = || Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    let data = [empty(), empty()];
    // SAFETY: capset with a v3 header and two data words, as the ABI requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
