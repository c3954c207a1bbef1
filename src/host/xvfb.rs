//! One Xvfb per sandbox (D5): the display number comes from `-displayfd` (no guessing, no
//! sleeps), clients need the sandbox's own MIT-MAGIC-COOKIE, and the server listens only on
//! its path socket (`-nolisten local` closes the abstract socket, which any process sharing
//! the network namespace could reach).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::{DeckError, IoContext, Result};
use crate::host::process::ProcRef;

/// The fd number Xvfb writes its display number to.
const DISPLAY_FD: i32 = 3;
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct XvfbSpec {
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub auth_file: PathBuf,
    pub log_file: PathBuf,
}

#[derive(Debug)]
pub struct Display {
    pub number: u32,
    pub process: ProcRef,
    /// Kept so a long-running caller can reap the server; dropping it is fine.
    pub child: Child,
}

/// Where clients find display `number`.
pub fn socket_path(number: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X11-unix/X{number}"))
}

/// The argv after `Xvfb`.
pub fn args(spec: &XvfbSpec) -> Vec<String> {
    vec![
        "-displayfd".into(),
        DISPLAY_FD.to_string(),
        "-screen".into(),
        "0".into(),
        format!("{}x{}x{}", spec.width, spec.height, spec.depth),
        "-nolisten".into(),
        "tcp".into(),
        "-nolisten".into(),
        "local".into(),
        "-auth".into(),
        spec.auth_file.display().to_string(),
        "-nocursor".into(),
    ]
}

/// Writes a fresh random cookie to `path` (mode 0600) in Xauthority format. The entry is
/// family Wild with no display number, so it matches whichever display `-displayfd` picks;
/// the server loads every entry of its `-auth` file regardless of number.
pub fn write_cookie(path: &Path) -> Result<()> {
    let mut cookie = [0u8; 16];
    getrandom::fill(&mut cookie)
        .map_err(|e| DeckError::host("generating an X cookie", e.to_string()))?;
    let mut entry = Vec::with_capacity(64);
    let mut field = |bytes: &[u8]| {
        entry.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        entry.extend_from_slice(bytes);
    };
    field(b""); // address
    field(b""); // display number: any
    field(b"MIT-MAGIC-COOKIE-1");
    field(&cookie);
    let mut file_bytes = 0xFFFFu16.to_be_bytes().to_vec(); // FamilyWild
    file_bytes.extend_from_slice(&entry);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .context_io(|| format!("creating {}", path.display()))?;
    file.write_all(&file_bytes)
        .context_io(|| format!("writing {}", path.display()))
}

/// Starts Xvfb detached (own session, so a Ctrl-C in the caller's terminal doesn't reach it)
/// and returns once it has picked its display and is accepting clients.
pub fn start(binary: &Path, spec: &XvfbSpec) -> Result<Display> {
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| DeckError::host("creating a pipe for Xvfb", e.to_string()))?;
    let log = File::create(&spec.log_file)
        .context_io(|| format!("creating {}", spec.log_file.display()))?;
    let log_err = log
        .try_clone()
        .context_io(|| "duplicating the Xvfb log handle".to_string())?;
    let write_fd = write_end.as_raw_fd();
    let mut command = Command::new(binary);
    command
        .args(args(spec))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if write_fd == DISPLAY_FD {
                // dup2 onto itself keeps FD_CLOEXEC; clear it by hand.
                if libc::fcntl(DISPLAY_FD, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(write_fd, DISPLAY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context_io(|| format!("starting {}", binary.display()))?;
    drop(write_end);
    let number = match read_display_number(read_end) {
        Ok(n) => n,
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&spec.log_file).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(DeckError::host(
                "starting Xvfb",
                format!("{why}; its log says: {}", tail.join(" | ")),
            ));
        }
    };
    let process = ProcRef::of(child.id()).ok_or_else(|| {
        DeckError::host("starting Xvfb", "it exited right after start".to_string())
    })?;
    Ok(Display {
        number,
        process,
        child,
    })
}

/// Xvfb writes "N\n" once its sockets are listening; EOF first means it failed.
fn read_display_number(read_end: OwnedFd) -> std::result::Result<u32, String> {
    let mut file = File::from(read_end);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut text = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no display number after {START_TIMEOUT:?}"));
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for Xvfb: {e}")),
        }
        let mut buf = [0u8; 32];
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("reading the display number: {e}"))?;
        if n == 0 {
            return Err("Xvfb exited before it reported a display".into());
        }
        text.extend_from_slice(&buf[..n]);
        if let Some(end) = text.iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&text[..end]);
            return line
                .trim()
                .parse()
                .map_err(|_| format!("Xvfb reported an odd display {line:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_never_listens_on_tcp_or_the_abstract_socket_and_needs_a_cookie() {
        let spec = XvfbSpec {
            width: 1280,
            height: 800,
            depth: 24,
            auth_file: "/run/x/auth".into(),
            log_file: "/run/x/log".into(),
        };
        let args = args(&spec).join(" ");
        assert!(args.contains("-nolisten tcp"));
        assert!(args.contains("-nolisten local"));
        assert!(args.contains("-auth /run/x/auth"));
        assert!(args.contains("-screen 0 1280x800x24"));
        assert!(!args.contains("-ac"));
    }

    #[test]
    fn the_cookie_file_is_private_and_well_formed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        write_cookie(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xFF]);
        assert_eq!(bytes.len(), 2 + 2 + 2 + 2 + 18 + 2 + 16);
        assert_eq!(&bytes[8..26], b"MIT-MAGIC-COOKIE-1");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
