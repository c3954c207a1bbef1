//! The ssh process a remote engine is reached through: its stdin and stdout are the
//! connection (one byte stream, as `bridge` makes it on the other end), its stderr is kept
//! to explain a failure. ssh is started from an argv (never a shell) and killed when the
//! tunnel is dropped, so no failure path leaves it behind.
//!
//! When the connection fails, [`Tunnel::explain`] says why in the user's terms, from how
//! ssh ended and what came back: ssh's 255 is an unreachable host, the remote shell's 127
//! a host without sandbox-deck, bytes that are no API answer a bridge that is something
//! else.

use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{Destination, SshCommand};
use crate::error::{DeckError, Result};

/// How much of ssh's stderr is kept (its last bytes say why).
const STDERR_KEPT: usize = 4096;
/// How much of the first answer is kept, to show what a wrong program said.
const FIRST_BYTES_KEPT: usize = 256;
/// How long a failed tunnel's ssh is given to exit and say why.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// ssh's exit status when ssh itself failed (connecting, authenticating).
const SSH_FAILED: i32 = 255;
/// A POSIX shell's exit status for a command it did not find.
const NOT_FOUND: i32 = 127;

/// The connection: ssh's stdout to read, its stdin to write.
pub type TunnelStream = tokio::io::Join<Recorded<ChildStdout>, ChildStdin>;

/// A running ssh and what it said.
pub struct Tunnel {
    destination: Destination,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Reads ssh's stderr until ssh closes it.
    stderr_reader: tokio::task::JoinHandle<()>,
    first_bytes: Arc<Mutex<Vec<u8>>>,
}

impl Tunnel {
    /// Starts `ssh … DEST sandbox-deck bridge`. `detach`: in a session of its own, so ssh
    /// never reads or draws on our terminal (the mirror's TUI owns it; a password prompt
    /// would then fail, as with BatchMode); otherwise ssh may ask for a passphrase there.
    pub fn open(
        ssh: &SshCommand,
        destination: &Destination,
        detach: bool,
    ) -> Result<(Tunnel, TunnelStream)> {
        let argv = ssh.bridge(destination);
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if detach {
            // SAFETY: setsid is async-signal-safe and touches no memory of ours.
            unsafe {
                command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(Into::into));
            }
        }
        let mut child = command.spawn().map_err(|source| DeckError::RemoteStart {
            host: destination.to_string(),
            command: ssh.words()[0].clone(),
            source,
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(DeckError::Remote {
                host: destination.to_string(),
                detail: "ssh was started without its pipes".into(),
            });
        };
        let kept = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = tokio::spawn(keep_tail(stderr, Arc::clone(&kept)));
        let first_bytes = Arc::new(Mutex::new(Vec::new()));
        let reader = Recorded {
            inner: stdout,
            kept: Arc::clone(&first_bytes),
        };
        let tunnel = Tunnel {
            destination: destination.clone(),
            child,
            stderr: kept,
            stderr_reader,
            first_bytes,
        };
        Ok((tunnel, tokio::io::join(reader, stdin)))
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Why the connection failed, `what` being what the client saw (a timeout, a handshake
    /// error). Waits a moment for ssh to exit: its status says most.
    pub async fn explain(&mut self, what: &str) -> DeckError {
        let status = tokio::time::timeout(EXIT_GRACE, self.child.wait())
            .await
            .ok()
            .and_then(std::result::Result::ok);
        if status.is_some() {
            // Exited: what it said last may still be in the pipe.
            let _ = tokio::time::timeout(EXIT_GRACE, &mut self.stderr_reader).await;
        }
        let said = last_lines(&lock(&self.stderr));
        let first = lock(&self.first_bytes).clone();
        let detail = explanation(status.and_then(|s| s.code()), &said, &first, what);
        DeckError::Remote {
            host: self.destination.to_string(),
            detail,
        }
    }

    /// Waits for ssh to exit (the connection ended on either side).
    pub async fn wait(mut self) {
        match self.child.wait().await {
            Ok(status) => tracing::debug!("ssh to {} ended: {status}", self.destination),
            Err(e) => tracing::debug!("waiting for ssh to {}: {e}", self.destination),
        }
    }

    /// Ends ssh now (the connection with it).
    pub async fn close(mut self) {
        // An ssh that has exited already cannot be killed, and one that will not be reaped in
        // time is reaped by tokio later (`kill_on_drop`): nothing to report either way.
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(EXIT_GRACE, self.child.wait()).await;
    }
}

/// The user's words for a failure, from ssh's exit code (None: still running or killed by
/// a signal), its last stderr lines, the first bytes it passed on and what the client saw.
fn explanation(code: Option<i32>, said: &str, first: &[u8], what: &str) -> String {
    let said_part = if said.is_empty() {
        String::new()
    } else {
        format!(" (ssh: {said})")
    };
    match code {
        Some(SSH_FAILED) => format!("ssh could not connect{said_part}"),
        Some(NOT_FOUND) => format!(
            "sandbox-deck is not installed there, or not on the PATH of a non-interactive ssh \
             session{said_part}; install it on that host (see the README, \"From your laptop\")"
        ),
        _ if !first.is_empty() && !first.starts_with(b"HTTP/1.1 101") => format!(
            "`sandbox-deck bridge` there answered with something that is not the sandbox-deck \
             API: {:?}{said_part}",
            crate::format::printable_line(&String::from_utf8_lossy(first))
        ),
        Some(code) => {
            format!("`sandbox-deck bridge` there ended with status {code}: {what}{said_part}")
        }
        None => format!("{what}{said_part}"),
    }
}

fn lock(buffer: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(|p| p.into_inner())
}

/// ssh's last non-empty lines (three at most), on one line and printable.
fn last_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    crate::format::printable_line(&lines[start..].join("; ")).into_owned()
}

/// Reads ssh's stderr to its end, keeping the last [`STDERR_KEPT`] bytes.
async fn keep_tail(mut stderr: tokio::process::ChildStderr, kept: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let mut kept = lock(&kept);
        kept.extend_from_slice(&buffer[..n]);
        let over = kept.len().saturating_sub(STDERR_KEPT);
        kept.drain(..over);
    }
}

/// A reader that keeps a copy of the first bytes read through it.
pub struct Recorded<R> {
    inner: R,
    kept: Arc<Mutex<Vec<u8>>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Recorded<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let mut kept = lock(&self.kept);
            let room = FIRST_BYTES_KEPT.saturating_sub(kept.len());
            let new = &buf.filled()[before..];
            kept.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_explained_from_how_ssh_ended_and_what_came_back() {
        let unreachable = explanation(
            Some(255),
            "ssh: connect to host box port 22: Connection refused",
            b"",
            "the connection ended",
        );
        assert!(
            unreachable.starts_with("ssh could not connect"),
            "{unreachable}"
        );
        assert!(unreachable.contains("Connection refused"), "{unreachable}");
        let missing = explanation(Some(127), "bash: sandbox-deck: command not found", b"", "x");
        assert!(missing.contains("not installed there"), "{missing}");
        let garbage = explanation(None, "", b"Welcome!\x1b[2J\n", "the handshake failed");
        assert!(garbage.contains("not the sandbox-deck API"), "{garbage}");
        assert!(!garbage.contains('\x1b'), "printable: {garbage}");
        let slow = explanation(None, "", b"", "no answer within 20s");
        assert_eq!(slow, "no answer within 20s");
        let ended = explanation(Some(1), "boom", b"", "the connection ended");
        assert!(
            ended.contains("status 1") && ended.contains("boom"),
            "{ended}"
        );
    }

    #[test]
    fn only_the_last_lines_of_stderr_are_kept() {
        assert_eq!(last_lines(b"a\n\nb\nc\nd\n"), "b; c; d");
        assert_eq!(last_lines(b""), "");
    }
}
