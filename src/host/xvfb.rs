//! One Xvfb per sandbox (D5). Clients need the sandbox's own MIT-MAGIC-COOKIE, and the
//! server listens only on its path socket: `-nolisten local` closes the abstract socket,
//! which any process sharing the network namespace could reach.
//!
//! Why not `-displayfd`: its search for a free number uses the abstract socket as the lock
//! and skips the lock file, so with `-nolisten local` every server picks the same number
//! (seen: three servers all on :0). Instead we name a number and let the X server claim it
//! through its own atomic lock file; a server that loses the race exits and we try the next.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::placement::Placement;
use crate::error::{DeckError, IoContext, Result};
use crate::host::process::ProcRef;

const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many numbers to try when others are taken or a race is lost.
const ATTEMPTS: u32 = 64;

#[derive(Debug, Clone)]
pub struct XvfbSpec {
    /// The first display number to try (low numbers are left to real desktops).
    pub first_display: u32,
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

fn lock_path(number: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X{number}-lock"))
}

/// The argv after `Xvfb` for display `number`.
pub fn args(spec: &XvfbSpec, number: u32) -> Vec<String> {
    vec![
        format!(":{number}"),
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
        // Without it the server resets whenever its last client leaves: the screen goes
        // back to black and every screenshot connection would cost a reset.
        "-noreset".into(),
    ]
}

/// Writes a fresh random cookie to `path` (mode 0600) in Xauthority format. The entry is
/// family Wild with no display number, so it matches whichever display the server gets;
/// the server loads every entry of its `-auth` file regardless of number.
pub fn write_cookie(path: &Path) -> Result<()> {
    let mut cookie = [0u8; 16];
    getrandom::fill(&mut cookie).map_err(|e| DeckError::randomness("generating an X cookie", e))?;
    let mut entry = 0xFFFFu16.to_be_bytes().to_vec(); // FamilyWild
    for field in [&b""[..], b"", b"MIT-MAGIC-COOKIE-1", &cookie] {
        entry.extend_from_slice(&(field.len() as u16).to_be_bytes());
        entry.extend_from_slice(field);
    }
    crate::host::fs::write_private(path, &entry)
}

/// The first MIT-MAGIC-COOKIE-1 in an Xauthority file.
pub fn read_cookie(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let mut pos = 0;
    let field = |pos: &mut usize| -> Option<Vec<u8>> {
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(*pos)?,
            *bytes.get(*pos + 1)?,
        ]));
        let value = bytes.get(*pos + 2..*pos + 2 + len)?.to_vec();
        *pos += 2 + len;
        Some(value)
    };
    while pos + 2 <= bytes.len() {
        pos += 2; // family
        let _address = field(&mut pos)?;
        let _number = field(&mut pos)?;
        let name = field(&mut pos)?;
        let data = field(&mut pos)?;
        if name == b"MIT-MAGIC-COOKIE-1" {
            return Some(data);
        }
    }
    None
}

/// A display number looks free when no live server holds its lock and no socket is left.
fn looks_free(number: u32) -> bool {
    let locked_by_live_server = std::fs::read_to_string(lock_path(number))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(|pid| ProcRef::of(pid).is_some_and(|p| p.is_alive()));
    !locked_by_live_server && !socket_path(number).exists()
}

/// Starts Xvfb detached (own session, so a Ctrl-C in the caller's terminal doesn't reach it)
/// and returns once it owns its display and its socket accepts clients; placed as this host
/// places long-lived processes (see [`super::placement`]).
pub fn start(binary: &Path, spec: &XvfbSpec) -> Result<Display> {
    start_placed(
        binary,
        spec,
        Placement::current(),
        &super::placement::unique_id(),
    )
}

/// [`start`] with the placement given; `label` (letters, digits, `-`: e.g. the sandbox id)
/// names the scope, with the display number.
pub fn start_placed(
    binary: &Path,
    spec: &XvfbSpec,
    placement: &Placement,
    label: &str,
) -> Result<Display> {
    let mut number = spec.first_display;
    let mut last_error = String::from("no free display number");
    for _ in 0..ATTEMPTS {
        while !looks_free(number) {
            number += 1;
        }
        let command = command(binary, spec, number, placement, label);
        match start_on(command, spec, number)? {
            Ok(display) => return Ok(display),
            Err(why) => last_error = why,
        }
        number += 1;
    }
    Err(DeckError::xvfb(last_error))
}

/// The command that runs the server for display `number`, placed, with its environment by
/// allowlist (stdio and session are set by [`start_on`]).
pub fn command(
    binary: &Path,
    spec: &XvfbSpec,
    number: u32,
    placement: &Placement,
    label: &str,
) -> Command {
    let args = args(spec, number);
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    placement.command("xvfb", &format!("{label}-{number}"), binary, &args)
}

/// One attempt on `number`: Ok(Err(why)) when the server exited (e.g. it lost the lock).
fn start_on(
    mut command: Command,
    spec: &XvfbSpec,
    number: u32,
) -> Result<std::result::Result<Display, String>> {
    let log = File::create(&spec.log_file)
        .context_io(|| format!("creating {}", spec.log_file.display()))?;
    let log_err = log
        .try_clone()
        .context_io(|| "duplicating the Xvfb log handle".to_string())?;
    command.stdin(Stdio::null()).stdout(log).stderr(log_err);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context_io(|| format!("starting {}", Path::new(command.get_program()).display()))?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(Err(format!(
                "display :{number}: Xvfb exited ({status}): {}",
                log_tail(&spec.log_file)
            )));
        }
        // The lock names its owner; the socket appears once the server listens.
        let owns_lock = std::fs::read_to_string(lock_path(number))
            .is_ok_and(|text| text.trim().parse::<u32>().ok() == Some(pid));
        if owns_lock && socket_path(number).exists() {
            let process =
                ProcRef::of(pid).ok_or_else(|| DeckError::xvfb("it vanished right after start"))?;
            return Ok(Ok(Display {
                number,
                process,
                child,
            }));
        }
        if Instant::now() > deadline {
            // It may have ended already; either way it is reaped and the error below says why.
            let _ = child.kill();
            let _ = child.wait();
            return Err(DeckError::xvfb(format!(
                "display :{number} not ready after {START_TIMEOUT:?}: {}",
                log_tail(&spec.log_file)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_never_listens_on_tcp_or_the_abstract_socket_and_needs_a_cookie() {
        let spec = XvfbSpec {
            first_display: 10,
            width: 1280,
            height: 800,
            depth: 24,
            auth_file: "/run/x/auth".into(),
            log_file: "/run/x/log".into(),
        };
        let args = args(&spec, 12).join(" ");
        assert!(args.starts_with(":12 "));
        assert!(args.contains("-nolisten tcp"));
        assert!(args.contains("-nolisten local"));
        assert!(args.contains("-auth /run/x/auth"));
        assert!(args.contains("-screen 0 1280x800x24"));
        assert!(!args.contains("-ac"));
    }

    #[test]
    fn the_server_runs_in_its_own_scope_under_a_user_manager_and_directly_otherwise() {
        let spec = XvfbSpec {
            first_display: 10,
            width: 640,
            height: 480,
            depth: 24,
            auth_file: "/run/x/auth".into(),
            log_file: "/run/x/log".into(),
        };
        let argv = |command: &Command| -> Vec<String> {
            std::iter::once(command.get_program())
                .chain(command.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let direct = command(Path::new("/bin/Xvfb"), &spec, 12, &Placement::Direct, "sb1");
        let mut expected = vec!["/bin/Xvfb".to_owned()];
        expected.extend(args(&spec, 12));
        assert_eq!(argv(&direct), expected);

        let scope = Placement::UserScope {
            systemd_run: "/usr/bin/systemd-run".into(),
        };
        let placed = command(Path::new("/bin/Xvfb"), &spec, 12, &scope, "sb1");
        let mut wrapped: Vec<String> = [
            "/usr/bin/systemd-run",
            "--user",
            "--scope",
            "--quiet",
            "--unit=sandbox-deck-xvfb-sb1-12",
            "--collect",
            "--",
        ]
        .map(str::to_owned)
        .to_vec();
        wrapped.extend(expected);
        assert_eq!(argv(&placed), wrapped);
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
        assert_eq!(read_cookie(&path).unwrap(), bytes[bytes.len() - 16..]);
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert_eq!(
            read_cookie(&path),
            None,
            "a truncated file yields no cookie"
        );
    }
}
