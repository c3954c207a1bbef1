//! `bridge`: this terminal's stdin and stdout, byte for byte, to the engine's API socket
//! (started first when none answers). `ssh host sandbox-deck bridge` is the whole remote
//! transport of the mirror: SSH authenticates, and no port is opened.
//!
//! Both directions are raw bytes. The end of stdin shuts down our half of the connection
//! (the engine still answers what it got); the engine closing ends the bridge with status 0.
//! Nothing else is ever written to stdout: errors go to stderr.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use anyhow::Context;

use crate::config::Config;
use crate::engine::service::{self, Starter};
use crate::paths::Paths;

pub const LONG_ABOUT: &str = "Copy stdin to the engine's API socket and the socket to stdout, \
byte for byte, starting the engine first when none answers. `ssh HOST sandbox-deck bridge` is \
how a mirror reaches another host: SSH is the authentication and no port is opened. The end of \
stdin closes our half of the connection; the engine closing ends the bridge with status 0 \
(status 1: the connection or stdout failed).";

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Room for one full websocket frame of the API in one read.
const BUFFER: usize = 64 * 1024;

pub fn exec(_args: Args, _json: bool) -> anyhow::Result<i32> {
    let paths = Paths::from_env()?;
    paths.ensure_runtime_dir()?;
    let config = Config::load_system_and_user(&Paths::system_config_file(), &paths.config_file())?;
    let stream = service::connect_or_start(&Starter::new(&paths, &config)?)?;
    // Our own handles on fds 0 and 1: std's stdout is line-buffered, which would hold
    // binary frames back until a newline happens to pass.
    let stdin = File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stdin")?,
    );
    let stdout = File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stdout")?,
    );
    relay(stdin, stdout, stream)?;
    Ok(0)
}

/// Copies `input` to `stream` (on a thread) and `stream` to `output` until the engine
/// closes. The end of `input` shuts down the stream's write side only.
fn relay(mut input: File, mut output: File, stream: UnixStream) -> anyhow::Result<()> {
    let mut to_engine = stream
        .try_clone()
        .context("duplicating the engine connection")?;
    std::thread::spawn(move || {
        if let Err(e) = pump(&mut input, &mut to_engine) {
            // The engine may have closed first; the other direction says how it ended.
            tracing::debug!("bridge: stdin to the engine ended: {e}");
        }
        if let Err(e) = to_engine.shutdown(Shutdown::Write) {
            tracing::debug!("bridge: shutting down our half: {e}");
        }
    });
    let mut from_engine = stream;
    match pump(&mut from_engine, &mut output) {
        Ok(()) => Ok(()),
        // An engine that closes with our bytes still unread resets the connection instead
        // of ending it; what it sent before has been delivered all the same.
        Err(Pumped::Read(e)) if e.kind() == ErrorKind::ConnectionReset => {
            tracing::debug!("bridge: the engine closed with input unread: {e}");
            Ok(())
        }
        Err(Pumped::Read(e)) => Err(anyhow::Error::new(e).context("reading from the engine")),
        Err(Pumped::Write(e)) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// Which side of a copy failed.
#[derive(Debug)]
enum Pumped {
    Read(std::io::Error),
    Write(std::io::Error),
}

impl std::fmt::Display for Pumped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pumped::Read(e) => write!(f, "reading: {e}"),
            Pumped::Write(e) => write!(f, "writing: {e}"),
        }
    }
}

/// Copies until end of input, writing each chunk as soon as it is read.
fn pump(from: &mut impl Read, to: &mut impl Write) -> Result<(), Pumped> {
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Pumped::Read(e)),
        };
        to.write_all(&buffer[..n]).map_err(Pumped::Write)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pump_copies_every_byte_and_says_which_side_failed() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        pump(&mut data.as_slice(), &mut out).unwrap();
        assert_eq!(out, data);

        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(
            pump(&mut data.as_slice(), &mut Broken),
            Err(Pumped::Write(_))
        ));
    }
}
