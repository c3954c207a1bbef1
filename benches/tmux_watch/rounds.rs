//! `--rounds 1`: what the engine asks over its one control client, part by part (see the
//! bench's doc), each figure beside nobody watching measured on the same server just before.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Server, WATCH, end_clients};

/// The survey the engine's reconcile sends, as `SURVEY_ARGS` says it.
const SURVEY: &str = "list-panes -a -F '#{session_name}\t#{pane_pid}\t#{pane_dead}\t\
                      #{pane_dead_status}\t#{pane_dead_signal}'";
const SURVEY_FILTERED: &str = "list-panes -a -f '#{!=:#{session_name},_watch}' -F \
                               '#{session_name}\t#{pane_pid}\t#{pane_dead}\t\
                               #{pane_dead_status}\t#{pane_dead_signal}'";

/// What one phase sends over the client.
#[derive(Clone, Copy)]
struct Asks {
    /// Sent once when attached.
    first: Option<&'static str>,
    captures: bool,
    /// A pane that printed is captured at most every 15 s (the status gate's safety net:
    /// plain lines pass the gate).
    gated: bool,
    survey: Option<&'static str>,
}

pub fn run(base: &Path, conf: &Path, sessions: usize, period: Duration) -> Result<(), String> {
    let server = Server::start(base, conf, "rounds", sessions)?;
    let result = (|| {
        server.link_into_watch_session(sessions)?;
        let asks = |captures, gated, survey| Asks {
            first: None,
            captures,
            gated,
            survey,
        };
        let no_output = Asks {
            first: Some("refresh-client -f no-output\n"),
            ..asks(false, false, None)
        };
        let phases: [(&str, Asks); 7] = [
            ("(c) one client, nothing asked", asks(false, false, None)),
            ("(c0) one client told to send no output", no_output),
            (
                "(d) + a capture of each pane that printed, every 1.5 s",
                asks(true, false, None),
            ),
            (
                "(e) + list-panes -a every 2 s",
                asks(true, false, Some(SURVEY)),
            ),
            (
                "(f) one client + list-panes -a every 2 s",
                asks(false, false, Some(SURVEY)),
            ),
            (
                "(g) one client + list-panes -a -f (the watch session filtered out) every 2 s",
                asks(false, false, Some(SURVEY_FILTERED)),
            ),
            (
                "(h) the gated round (a printing pane captured every 15 s) + list-panes -a -f",
                asks(true, true, Some(SURVEY_FILTERED)),
            ),
        ];
        for (what, asks) in phases {
            let none = server.cost(period);
            let cost = phase(&server, asks, period)?;
            println!(
                "{what}: {cost:.3} % against nobody watching {none:.3} % (+{:.3} %) of a core",
                cost - none
            );
        }
        Ok(())
    })();
    server.end();
    result
}

/// The server's CPU over `period` while one client on the watch session asks `asks`.
fn phase(server: &Server, asks: Asks, period: Duration) -> Result<f64, String> {
    let target = format!("={WATCH}");
    let mut child = server
        .command()
        .args(["-C", "attach-session", "-f", "ignore-size", "-t", &target])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin: ChildStdin = child.stdin.take().ok_or("no stdin")?;
    // The client's output read (and dropped) by a thread that notes which panes printed.
    let printed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let out = child.stdout.take().ok_or("no stdout")?;
    let noted = Arc::clone(&printed);
    // Each reply's end, so that a command waits for the one before as the engine's do.
    let (replied, replies) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
            if line.starts_with(b"%end ") || line.starts_with(b"%error ") {
                let _ = replied.send(());
            }
            if let Some(rest) = line.strip_prefix(b"%output %") {
                let pane = rest.split(|b| *b == b' ').next().unwrap_or_default();
                let pane = String::from_utf8_lossy(pane).into_owned();
                noted.lock().unwrap_or_else(|p| p.into_inner()).insert(pane);
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    // The attach's own reply.
    while replies.try_recv().is_ok() {}
    let ask = |stdin: &mut ChildStdin, line: &str| -> Result<(), String> {
        stdin
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string())?;
        replies
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| format!("no reply to {line}"))
    };
    if let Some(first) = asks.first {
        ask(&mut stdin, first)?;
    }
    let before = super::cpu_secs(server.pid);
    let start = Instant::now();
    let (mut next_round, mut next_survey) = (start, start);
    let mut failed = None;
    let mut last = std::collections::HashMap::new();
    while start.elapsed() < period && failed.is_none() {
        let now = Instant::now();
        if asks.captures && now >= next_round {
            let panes: Vec<String> =
                std::mem::take(&mut *printed.lock().unwrap_or_else(|p| p.into_inner()))
                    .into_iter()
                    .collect();
            for pane in panes {
                if asks.gated
                    && last
                        .get(&pane)
                        .is_some_and(|t: &Instant| t.elapsed() < Duration::from_secs(15))
                {
                    continue;
                }
                last.insert(pane.clone(), Instant::now());
                let line = format!("capture-pane -p -t %{pane} -S -0\n");
                if let Err(e) = ask(&mut stdin, &line) {
                    failed = Some(e);
                }
            }
            next_round += Duration::from_millis(1500);
        }
        if let Some(survey) = asks.survey
            && now >= next_survey
        {
            if let Err(e) = ask(&mut stdin, &format!("{survey}\n")) {
                failed = Some(e);
            }
            next_survey += Duration::from_secs(2);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cost = 100.0 * (super::cpu_secs(server.pid) - before) / start.elapsed().as_secs_f64();
    drop(stdin);
    end_clients(&mut vec![child]);
    let _ = reader.join();
    match failed {
        Some(e) => Err(format!("asking the control client: {e}")),
        None => Ok(cost),
    }
}
