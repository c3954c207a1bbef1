//! The caller's terminal job, for what `launch` runs in it (a sandbox, or a process joined
//! to one): the command leads a process group of its own (so `kill(0, …)` from inside reaches
//! nothing else of the job), takes the terminal's foreground when we had it and gives it
//! back, its stops (Ctrl-Z) become ours so the user's shell sees the job stopped, and
//! SIGTERM/SIGHUP sent to us go on to it.
//!
//! The functions marked "only syscalls" also run between fork and exec, in the waiter and
//! the joined process of [`crate::host::namespace::join`].

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::error::{DeckError, IoContext, Result};

/// True when our process group is the terminal's foreground one: a joined process then
/// takes it over (an interactive shell needs it for job control and Ctrl-C), and
/// [`reclaim_terminal`] gives it back.
pub fn owns_the_terminal() -> bool {
    // SAFETY: plain queries on fd 0.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// `child`, leader of its own process group, was stopped (Ctrl-Z): that group is not the one
/// the user's shell waits for, so ours stops the same way, with the terminal given back, and
/// on `fg` the terminal goes to the child's group again and it goes on. Only syscalls: also
/// safe in the waiter between fork and exec.
pub fn suspend_with(child: libc::pid_t) {
    // SAFETY: plain syscall wrappers, async-signal-safe (see `namespace::join`).
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
pub(crate) fn lead_a_new_group(foreground: bool) -> io::Result<()> {
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

/// Spawns `command` in this terminal and waits for it. SIGTERM/SIGHUP sent to us go on to
/// the sandbox; Ctrl-C reaches it through the terminal, so we only survive it. With
/// `relay_stops` (the command leads its own process group), a Ctrl-Z that stops it stops us
/// too, so the user's shell sees the job stopped, and `fg` resumes it.
pub fn run_forwarding_signals(command: &mut Command, relay_stops: bool) -> Result<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])
        .map_err(|e| DeckError::io("installing signal handlers", e))?;
    let handle = signals.handle();
    let child = command
        .spawn()
        .context_io(|| "starting the sandbox".to_string())?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            if (signal == SIGTERM || signal == SIGHUP)
                && let Ok(sig) = nix::sys::signal::Signal::try_from(signal)
            {
                // ESRCH: it ended meanwhile, and the wait below sees that.
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    });
    let flags = relay_stops.then_some(WaitPidFlag::WUNTRACED);
    let status = loop {
        match waitpid(pid, flags) {
            Ok(WaitStatus::Stopped(..)) => suspend_with(pid.as_raw()),
            Ok(WaitStatus::Exited(_, code)) => break Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => break Ok(128 + signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => break Err(DeckError::io("waiting for the sandbox", e.into())),
        }
    };
    handle.close();
    // Its only work is `kill`, which cannot panic: the join just waits for it to end.
    let _ = forwarder.join();
    status
}

/// Our own binary again with `args` (less `--detach`), to run in a session of its own, so it
/// outlives the caller's terminal and job (the `--detach` step of the helpers a launch
/// leaves behind). The caller sets its stdio and spawns it.
pub fn own_binary_detached(args: &[std::ffi::OsString]) -> Result<Command> {
    let exe = std::env::current_exe().context_io(|| "finding our own binary".to_string())?;
    let mut command = Command::new(exe);
    command.args(args.iter().filter(|a| *a != "--detach"));
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    Ok(command)
}
