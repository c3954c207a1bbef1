//! What a test starts on the host, ended when the guard drops, so a failed assertion never
//! leaks a process: any child ([`Guarded`]), a same-user canary ([`CanaryProcess`]) and a
//! stand-in for the desktop's X server ([`HostX`]).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{abstract_x_socket_listed, unique};

/// A child process that is killed and reaped when dropped, so a failed assertion never
/// leaks it (the test's own `kill` at the end is then unnecessary).
pub struct Guarded(Option<std::process::Child>);

impl Guarded {
    /// Waits for the child and collects its output (it is no longer guarded then).
    pub fn wait_with_output(mut self) -> std::io::Result<Output> {
        self.0.take().expect("a guarded child").wait_with_output()
    }
}

impl std::ops::Deref for Guarded {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().expect("a guarded child")
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("a guarded child")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut()
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child spawned some other way (where spawning may fail), guarded from now on.
impl From<Child> for Guarded {
    fn from(child: Child) -> Guarded {
        Guarded(Some(child))
    }
}

/// `Command::spawn` that hands back a [`Guarded`] child.
pub trait SpawnGuarded {
    fn spawn_guarded(&mut self) -> Guarded;
}

impl SpawnGuarded for Command {
    fn spawn_guarded(&mut self) -> Guarded {
        Guarded(Some(self.spawn().expect("spawning a test process")))
    }
}

/// A host process of the same user (PR-01, PR-02), killed by pid at the end.
pub struct CanaryProcess {
    child: Child,
    /// Its unique argument, to find it by command line.
    pub marker: String,
}

impl CanaryProcess {
    pub fn start() -> CanaryProcess {
        let marker = format!("600.{}", unique());
        let child = Command::new("sleep").arg(&marker).spawn().unwrap();
        CanaryProcess { child, marker }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CanaryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second X server standing for the host desktop's: started WITHOUT `-nolisten local`, so
/// it has an abstract socket, on a free display number ≥ 100. Killed by pid at the end.
pub struct HostX {
    pub number: u32,
    child: Child,
}

impl HostX {
    pub fn start() -> HostX {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = 100 + (std::process::id() % 200) * 4;
        for _ in 0..60 {
            let n = base + NEXT.fetch_add(1, Ordering::SeqCst);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            // A lock left by a killed server names a dead pid: Xvfb takes such a number over
            // itself; only a live one's is skipped.
            if display_in_use(n) {
                continue;
            }
            let mut child = Command::new("Xvfb")
                .args([
                    &format!(":{n}"),
                    "-nolisten",
                    "tcp",
                    "-screen",
                    "0",
                    "64x64x8",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if abstract_x_socket_listed(n) && socket.exists() {
                    return HostX { number: n, child };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free display number for the host X canary");
    }

    pub fn abstract_name(&self) -> String {
        format!("@/tmp/.X11-unix/X{}", self.number)
    }
}

impl Drop for HostX {
    /// SIGTERM first: Xvfb then removes its lock file and socket (SIGKILL would leave both).
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a live X server holds display `n` (its lock file names a running pid).
fn display_in_use(n: u32) -> bool {
    std::fs::read_to_string(format!("/tmp/.X{n}-lock"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(super::is_running)
}
