//! `serve`: the engine headless, with its websocket API on the unix socket in the runtime
//! dir (`docs/protocol.md`). Sandboxes never depend on it: it can be killed and started again.
//! `--listen` adds a loopback TCP port for explicit tunnels, guarded by a token file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::api::server::{self, Settings};
use crate::api::tcp::{self, Token};
use crate::engine::Deck;
use crate::engine::service::{self, ServeOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Close a connection that sent nothing (not even a pong) for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub idle_timeout: u64,
    /// Also listen on this loopback TCP address, for a tunnel you set up yourself
    /// (127.0.0.1:PORT or [::1]:PORT; port 0 picks a free one, printed at start). Any
    /// other address is refused. Clients send the token of --token-file as
    /// `Authorization: Bearer TOKEN`; browsers (any Origin) and other Host names are refused.
    #[arg(long, value_name = "ADDRESS", value_parser = tcp::loopback, requires = "token_file")]
    pub listen: Option<SocketAddr>,
    /// The token file of --listen: at least 32 hex digits (128 bits) on one line, owned by
    /// you and readable by nobody else (mode 0600), else `serve` refuses to start. Make one:
    /// (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > FILE)
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub service: ServeOptions,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    // The token is checked before anything is opened or bound (SECURITY.md W18).
    let token = match &args.token_file {
        Some(file) => Some(Token::read(file)?),
        None => None,
    };
    let deck = Arc::new(Deck::open()?);
    let path = service::api_socket(&deck.paths);
    // Two clients may each start one: the one that finds another answering ends quietly
    // (the starter reads a clean exit as "another engine won" and connects to it).
    if args.service.auto && std::os::unix::net::UnixStream::connect(&path).is_ok() {
        tracing::info!(
            "another engine answers on {}; this one ends",
            path.display()
        );
        return Ok(0);
    }
    let idle_exit = args.service.idle_policy(&deck.config.serve);
    let pid_file = service::pid_file(&deck.paths);
    // One thread runs every task: a mostly idle daemon wakes one thread per event instead
    // of waking a second worker to look for work (issue 15). What blocks goes to the
    // blocking pool (`spawn_blocking`), as before.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the engine's runtime")?;
    runtime.block_on(async {
        // Bound inside the runtime: tokio's listener needs its reactor. TCP first: a port
        // in use then leaves no socket file behind.
        let tcp = match (args.listen, token) {
            (Some(address), Some(token)) => Some(tcp::Listener::bind(address, token).await?),
            _ => None,
        };
        let listener = server::bind(&path)?;
        service::write_pid_file(&pid_file)?;
        tell!("sandbox-deck: the engine listens on {}", path.display());
        if let (Some(local), Some(file)) = (
            tcp.as_ref().and_then(tcp::Listener::local),
            &args.token_file,
        ) {
            tell!(
                "sandbox-deck: and on {local} (TCP; clients send the token of {})",
                file.display()
            );
        }
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signals(stop.clone()));
        let settings = Settings {
            idle_timeout: Duration::from_secs(args.idle_timeout),
            idle_exit,
        };
        server::serve(listener, tcp, path.clone(), deck, settings, stop).await;
        service::remove_pid_file(&pid_file);
        anyhow::Ok(())
    })?;
    // Blocking reads still running (a slow `list`) are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(0)
}

/// SIGTERM and SIGINT end the engine cleanly (the socket removed); sandboxes keep running.
async fn stop_on_signals(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch SIGTERM/SIGINT; the engine ends only when killed");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("the engine stops on a signal");
    stop.cancel();
}
