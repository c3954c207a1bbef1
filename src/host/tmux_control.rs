//! A tmux control-mode connection (`tmux -C`) to our private server.
//!
//! tmux speaks a line protocol on a control client's stdout: every command it runs answers
//! with a block (`%begin <time> <number> <flags>`, the output lines, then `%end …` or
//! `%error …`), and between blocks it sends notifications (`%output %<pane> <data>`,
//! `%exit`, `%sessions-changed`, `%window-close @<id>`, …). Commands go in on stdin, one a
//! line, so a capture costs no process. tmux sends `%output` only for panes of the session
//! the client is attached to, so one connection watches every session through the watch
//! session ([`WATCH_SESSION`]): every other session's windows are linked into it, and
//! [`Control::tend`] keeps it so (links new windows, ends those whose session is gone).
//!
//! A reader thread parses the lines into [`Message`]s: replies go to whoever sent the
//! command (in order: tmux answers commands in the order it gets them), notifications bump
//! a change counter and pane output goes to the connection's output sink (the pane log).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::tmux::{
    Pane, SURVEY_ARGS, Tmux, WATCH_LIST_ARGS, WATCH_MARK, WATCH_SESSION, WatchPlan, parse_survey,
    plan_watch,
};
use crate::error::{DeckError, IoContext, Result};

/// How long a command may take to answer before the connection is given up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// A notification, typed where we act on it; the rest keep their line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pane wrote `data` (the raw bytes, unescaped; not necessarily UTF-8).
    Output {
        pane: u32,
        data: Vec<u8>,
    },
    /// The client is detaching: its session ended, the server exited, or it was told to.
    Exit {
        reason: Option<String>,
    },
    SessionsChanged,
    /// The client's session is now `$<id>` named `name`.
    SessionChanged {
        id: u32,
        name: String,
    },
    /// A window of the client's session closed (`%window-close @<id>`).
    WindowClose {
        window: u32,
    },
    /// A window of another session closed (`%unlinked-window-close @<id>`).
    UnlinkedWindowClose {
        window: u32,
    },
    /// A `refresh-client -B` subscription's value changed (`%subscription-changed <name>
    /// $<session> @<window> <index> %<pane> … : <value>`).
    SubscriptionChanged {
        name: String,
        value: String,
    },
    /// Any other notification, as tmux wrote it (lossy UTF-8).
    Other(String),
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// tmux's command number.
    pub number: u64,
    /// `%end` (true) or `%error` (false).
    pub ok: bool,
    /// The output lines, each ending in `\n`, as bytes.
    pub body: Vec<u8>,
    /// tmux sets flag 1 on the replies to commands a client sent; the block answering the
    /// command line that attached the client has 0.
    pub from_client: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Reply(Reply),
    Event(Event),
}

/// Turns control-mode lines (without their `\n`) into messages.
#[derive(Debug, Default)]
pub struct Parser {
    block: Option<(u64, Vec<u8>)>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Whether a command's reply block is being read (a line is then its body).
    fn in_block(&self) -> bool {
        self.block.is_some()
    }

    /// One line in; a message out when the line completes one.
    pub fn line(&mut self, line: &[u8]) -> Option<Message> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some((number, body)) = &mut self.block {
            let end = block_guard(line, b"%end ").map(|n| (n, true));
            let end = end.or_else(|| block_guard(line, b"%error ").map(|n| (n, false)));
            match end {
                Some(((n, flags), ok)) if n == *number => {
                    let body = std::mem::take(body);
                    self.block = None;
                    return Some(Message::Reply(Reply {
                        number: n,
                        ok,
                        body,
                        from_client: flags & 1 == 1,
                    }));
                }
                _ => {
                    body.extend_from_slice(line);
                    body.push(b'\n');
                    return None;
                }
            }
        }
        if let Some((number, _)) = block_guard(line, b"%begin ") {
            self.block = Some((number, Vec::new()));
            return None;
        }
        notification(line).map(Message::Event)
    }
}

/// The command number and flags of a `%begin`/`%end`/`%error` line.
fn block_guard(line: &[u8], word: &[u8]) -> Option<(u64, u32)> {
    let rest = std::str::from_utf8(line.strip_prefix(word)?).ok()?;
    let mut fields = rest.split(' ');
    let _time: u64 = fields.next()?.parse().ok()?;
    let number = fields.next()?.parse().ok()?;
    let flags = fields.next()?.parse().ok()?;
    Some((number, flags))
}

fn notification(line: &[u8]) -> Option<Event> {
    if !line.starts_with(b"%") {
        return None;
    }
    if line.starts_with(b"%output ") {
        let (pane, data) = output_line(line)?;
        return Some(Event::Output {
            pane,
            data: unescape(data),
        });
    }
    let text = String::from_utf8_lossy(line);
    let (word, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let id = |prefix: char| rest.split(' ').next()?.strip_prefix(prefix)?.parse().ok();
    let event = match word {
        "%exit" => Event::Exit {
            reason: (!rest.is_empty()).then(|| rest.to_owned()),
        },
        "%sessions-changed" => Event::SessionsChanged,
        "%session-changed" => Event::SessionChanged {
            id: id('$')?,
            name: rest.split_once(' ')?.1.to_owned(),
        },
        "%window-close" => Event::WindowClose { window: id('@')? },
        "%unlinked-window-close" => Event::UnlinkedWindowClose { window: id('@')? },
        "%subscription-changed" => Event::SubscriptionChanged {
            name: rest.split(' ').next()?.to_owned(),
            value: rest.split_once(" : ")?.1.to_owned(),
        },
        _ => Event::Other(text.into_owned()),
    };
    Some(event)
}

/// tmux writes a pane's bytes below 0x20 and the backslash as `\ooo` (three octal digits);
/// every other byte is itself.
pub fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    unescape_into(data, &mut out);
    out
}

/// [`unescape`] appending to `out` (the reader thread reuses one buffer for every line).
fn unescape_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len());
    let mut i = 0;
    while i < data.len() {
        let octal = data.get(i + 1..i + 4).filter(|d| {
            data[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                // The run up to the next backslash as it is.
                let run = data[i + 1..]
                    .iter()
                    .position(|b| *b == b'\\')
                    .map_or(data.len(), |n| i + 1 + n);
                out.extend_from_slice(&data[i..run]);
                i = run;
            }
        }
    }
}

/// The pane id and escaped data of a `%output` line, outside a block.
fn output_line(line: &[u8]) -> Option<(u32, &[u8])> {
    let rest = line.strip_prefix(b"%output %")?;
    let space = rest.iter().position(|b| *b == b' ')?;
    let pane = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    Some((pane, &rest[space + 1..]))
}

/// An argument for a control-mode command line. tmux's parser takes a single-quoted word
/// literally; a quote or a line break could not be written so, and is refused.
fn quote(arg: &str) -> Result<String> {
    if arg.contains(['\'', '\n', '\r']) {
        return Err(DeckError::tmux(
            "a tmux control command",
            format!("refusing the argument {arg:?}"),
        ));
    }
    Ok(format!("'{arg}'"))
}

/// Where a connection's pane output goes, with the pane's id. Runs on the reader thread.
pub type OutputSink = Box<dyn FnMut(u32, &[u8]) + Send>;

/// Told every notification but pane output: the client's session ended (`%exit`), a
/// session was made or killed (`%sessions-changed`), a window came, went or changed its
/// layout. A pane whose process ended is not among them: `remain-on-exit` keeps it, and
/// tmux says nothing. A `refresh-client -B` subscription to `#{pane_dead}` would (once a
/// second), but it costs the server a timer per client; the monitor's timer finds a dead
/// pane instead. Runs on the reader thread: it must not send a command and wait.
pub type ChangeSink = Box<dyn Fn(&Event) + Send>;

struct Shared {
    alive: AtomicBool,
    /// How many commands of each kind were sent, for tests and benches that check what an
    /// idle engine asks of the server.
    sent: Arc<Sent>,
    /// Bumped on every notification: whoever remembers it knows whether anything changed.
    changes: AtomicU64,
    waiting: Mutex<VecDeque<Sender<Reply>>>,
}

/// How many commands of each kind (its first word) were sent over one or more connections.
#[derive(Debug, Default)]
pub struct Sent {
    counts: Mutex<Vec<(String, u64)>>,
}

impl Sent {
    fn count(&self, command: &str) {
        let mut counts = lock(&self.counts);
        match counts.iter_mut().find(|(c, _)| c == command) {
            Some((_, n)) => *n += 1,
            None => counts.push((command.to_owned(), 1)),
        }
    }

    /// Each kind of command sent so far, with how many times.
    pub fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        lock(&self.counts).iter().cloned().collect()
    }
}

/// A control client attached to a session. Dropping it ends the client.
pub struct Control {
    child: Child,
    stdin: Mutex<ChildStdin>,
    shared: Arc<Shared>,
}

impl Control {
    /// Attaches a control client to `session` on `tmux`'s server (one process, kept).
    pub fn attach(
        tmux: &Tmux,
        session: &str,
        mut sink: OutputSink,
        on_change: ChangeSink,
        sent: Arc<Sent>,
    ) -> Result<Control> {
        let mut child = tmux
            .control_command(session)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context_io(|| format!("attaching a tmux control client to {session}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            end(&mut child);
            return Err(DeckError::tmux("tmux -C", "no pipes to the client"));
        };
        let shared = Arc::new(Shared {
            alive: AtomicBool::new(true),
            sent,
            changes: AtomicU64::new(0),
            waiting: Mutex::new(VecDeque::new()),
        });
        let reader = Arc::clone(&shared);
        let (attached, ready) = channel();
        let spawned = std::thread::Builder::new()
            .name("deck-tmux-control".into())
            .spawn(move || {
                let sinks = Sinks {
                    output: &mut sink,
                    change: &on_change,
                };
                // Big enough that a burst of output is one read, not one per page.
                let stdout = BufReader::with_capacity(1 << 16, stdout);
                read_messages(stdout, &reader, sinks, attached);
            });
        if let Err(e) = spawned {
            end(&mut child);
            return Err(DeckError::io("starting the tmux control reader", e));
        }
        // Attached once tmux answers the command line that attached it: from then on no
        // output of the session is missed. A client that ends first found no session.
        if !matches!(ready.recv_timeout(REPLY_TIMEOUT), Ok(true)) {
            end(&mut child);
            return Err(DeckError::tmux(
                format!("attaching a tmux control client to {session}"),
                "it ended or did not answer",
            ));
        }
        Ok(Control {
            child,
            stdin: Mutex::new(stdin),
            shared,
        })
    }

    /// A client on the watch session ([`WATCH_SESSION`]), made if there is none: attached
    /// first to `via`, a session known to exist (attaching never starts a server, so no
    /// server is started for a watch session alone), then switched. Its output is every
    /// linked pane's, once [`Control::tend`] has linked them.
    pub fn watch(
        tmux: &Tmux,
        via: &str,
        sink: OutputSink,
        on_change: ChangeSink,
        sent: Arc<Sent>,
    ) -> Result<Control> {
        let control = Control::attach(tmux, via, sink, on_change, sent)?;
        if via != WATCH_SESSION {
            // Its own window: a pane that ends at once and stays dead (`remain-on-exit`),
            // marked so that it is never taken for a window whose session is gone.
            let watch = format!("={WATCH_SESSION}");
            let made = control.command(&[
                "new-session",
                "-d",
                "-s",
                WATCH_SESSION,
                "-x",
                "80",
                "-y",
                "24",
                "-P",
                "-F",
                "#{window_id}",
                "true",
            ]);
            match made {
                Ok(window) => {
                    let window = String::from_utf8_lossy(&window).trim().to_owned();
                    control.command(&["set-option", "-w", "-t", &window, WATCH_MARK, "1"])?;
                }
                // Another engine made it: use it.
                Err(e) if e.to_string().contains("duplicate session") => {}
                Err(e) => return Err(e),
            }
            control.command(&["switch-client", "-t", &watch])?;
        }
        Ok(control)
    }

    /// Tends the watch session this client is on: links every window of the other sessions
    /// into it, kills the windows left there by a session that is gone, and kills the watch
    /// session (ending this client) when no other session is left. Returns what it found
    /// (every pane of the other sessions, by session).
    pub fn tend(&self) -> Result<WatchPlan> {
        let plan = plan_watch(&self.command(&WATCH_LIST_ARGS)?);
        let watch = format!("={WATCH_SESSION}:");
        for window in &plan.kill {
            if let Err(e) = self.command(&["kill-window", "-t", window]) {
                tracing::debug!("ending {window}, left in the watch session: {e}");
            }
        }
        for window in &plan.link {
            // -d: the watch session's current window stays; nothing is resized (its only
            // client ignores sizes).
            if let Err(e) = self.command(&["link-window", "-d", "-s", window, "-t", &watch]) {
                tracing::debug!("linking {window} into the watch session: {e}");
            }
        }
        if plan.idle {
            let watch = format!("={WATCH_SESSION}");
            self.command(&["kill-session", "-t", &watch]).ok();
            self.shared.alive.store(false, Ordering::SeqCst);
        }
        Ok(plan)
    }

    /// Whether the client is still attached (false once it said `%exit` or its pipe closed).
    pub fn alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// How many notifications (pane output, window and session changes) came so far.
    pub fn changes(&self) -> u64 {
        self.shared.changes.load(Ordering::SeqCst)
    }

    /// Runs one tmux command over the connection; its output, or its error as a `DeckError`.
    pub fn command(&self, args: &[&str]) -> Result<Vec<u8>> {
        let what = format!("tmux {} (control)", args.first().copied().unwrap_or(""));
        if !self.alive() {
            return Err(DeckError::tmux(what, "the control client has ended"));
        }
        self.shared.sent.count(args.first().copied().unwrap_or(""));
        let mut line = args.iter().map(|a| quote(a)).collect::<Result<Vec<_>>>()?;
        line.push("\n".into());
        let line = line.join(" ");
        let (tx, rx): (Sender<Reply>, Receiver<Reply>) = channel();
        {
            // One lock for queueing and writing, so replies come back in the queue's order.
            let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
            lock(&self.shared.waiting).push_back(tx);
            if let Err(e) = stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush())
            {
                self.shared.alive.store(false, Ordering::SeqCst);
                return Err(DeckError::io(what, e));
            }
        }
        match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(reply) if reply.ok => Ok(reply.body),
            Ok(reply) => Err(DeckError::tmux(
                what,
                String::from_utf8_lossy(&reply.body).trim().to_owned(),
            )),
            Err(_) => {
                // A client that does not answer is no use: the next user makes a new one.
                self.shared.alive.store(false, Ordering::SeqCst);
                Err(DeckError::tmux(what, "no answer from the control client"))
            }
        }
    }

    /// `session`'s active pane as text, like [`Tmux::capture`] but without a process.
    pub fn capture(&self, session: &str, history: usize, colours: bool) -> Result<String> {
        let target = format!("={session}:");
        let start = format!("-{history}");
        let mut args = vec!["capture-pane", "-p"];
        if colours {
            args.push("-e");
        }
        args.extend(["-t", &target, "-S", &start]);
        let body = self.command(&args)?;
        let text = String::from_utf8_lossy(&body);
        Ok(if colours {
            text.into_owned()
        } else {
            text.trim_end().to_owned()
        })
    }

    /// Every pane on the server, like [`Tmux::survey`] but without a process.
    pub fn survey(&self) -> Result<Vec<Pane>> {
        let body = self.command(&SURVEY_ARGS)?;
        Ok(parse_survey(&body))
    }

    /// The client's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shared.alive.store(false, Ordering::SeqCst);
        end(&mut self.child);
    }
}

/// Ends our own client process (by its handle, so by its pid) and reaps it.
fn end(child: &mut Child) {
    if let Err(e) = child.kill() {
        tracing::debug!("ending a tmux control client: {e}");
    }
    if let Err(e) = child.wait() {
        tracing::debug!("reaping a tmux control client: {e}");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the reader thread hands what it does not answer itself.
struct Sinks<'a> {
    output: &'a mut OutputSink,
    change: &'a ChangeSink,
}

/// The reader thread: every line of the client's stdout until it closes.
fn read_messages(mut out: impl BufRead, shared: &Shared, sinks: Sinks<'_>, attached: Sender<bool>) {
    let mut attached = Some(attached);
    let mut parser = Parser::new();
    let mut line = Vec::new();
    // Pane output, the bulk of what comes, is unescaped into one buffer kept for every line.
    let mut data = Vec::new();
    loop {
        line.clear();
        match out.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("reading a tmux control client: {e}");
                break;
            }
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if !parser.in_block()
            && let Some((pane, escaped)) = output_line(text)
        {
            shared.changes.fetch_add(1, Ordering::SeqCst);
            data.clear();
            unescape_into(escaped, &mut data);
            (sinks.output)(pane, &data);
            continue;
        }
        match parser.line(text) {
            Some(Message::Reply(reply)) if reply.from_client => {
                if let Some(waiter) = lock(&shared.waiting).pop_front() {
                    // The sender may have given up waiting; its reply is then of no use.
                    let _ = waiter.send(reply);
                }
            }
            Some(Message::Reply(reply)) => {
                if let Some(attached) = attached.take() {
                    // The caller may have given up waiting (and ended the client).
                    let _ = attached.send(reply.ok);
                }
            }
            None => {}
            Some(Message::Event(event)) => {
                shared.changes.fetch_add(1, Ordering::SeqCst);
                match event {
                    Event::Output { pane, data } => (sinks.output)(pane, &data),
                    Event::Exit { reason } => {
                        tracing::debug!("a tmux control client exits: {reason:?}");
                        shared.alive.store(false, Ordering::SeqCst);
                        (sinks.change)(&Event::Exit { reason });
                    }
                    event => (sinks.change)(&event),
                }
            }
        }
    }
    shared.alive.store(false, Ordering::SeqCst);
    // Whoever still waits gets no reply: dropping the senders wakes them at once.
    lock(&shared.waiting).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines a tmux 3.3a control client wrote: commands and their replies (one an error),
    /// a pane printing a backslash, control bytes, 0xff and invalid UTF-8, windows coming
    /// and going, the session killed and the server killed.
    const RECORDED: &[u8] = include_bytes!("testdata/tmux-3.3-control.txt");

    fn parse_all(bytes: &[u8]) -> Vec<Message> {
        let mut parser = Parser::new();
        bytes
            .split(|b| *b == b'\n')
            .filter_map(|l| parser.line(l))
            .collect()
    }

    #[test]
    fn recorded_tmux_output_parses() {
        let messages = parse_all(RECORDED);
        let replies: Vec<&Reply> = messages
            .iter()
            .filter_map(|m| match m {
                Message::Reply(r) => Some(r),
                Message::Event(_) => None,
            })
            .collect();
        assert_eq!(replies.len(), 5, "{replies:?}");
        assert!(!replies[0].from_client, "the attach command's own block");
        assert!(replies[1].ok && replies[1].from_client);
        assert!(replies[1].body.starts_with(b"#\n"), "the captured prompt");
        assert_eq!(
            replies[2].body, b"%0\n",
            "a body line that looks like a pane id"
        );
        assert!(!replies[3].ok);
        assert_eq!(
            replies[3].body,
            b"parse error: unknown command: bogus-cmd\n".to_vec()
        );
        let events: Vec<&Event> = messages
            .iter()
            .filter_map(|m| match m {
                Message::Event(e) => Some(e),
                Message::Reply(_) => None,
            })
            .collect();
        assert_eq!(
            events[0],
            &Event::SessionChanged {
                id: 0,
                name: "api".into()
            }
        );
        let outputs: Vec<&Vec<u8>> = events
            .iter()
            .filter_map(|e| match e {
                Event::Output { pane: 0, data } => Some(data),
                _ => None,
            })
            .collect();
        assert_eq!(outputs.len(), 2);
        assert_eq!(
            outputs[1],
            &b"a\\b\x01\xff\xc3(\r\n# ".to_vec(),
            "backslash, a control byte, 0xff and invalid UTF-8 come back as they were"
        );
        assert!(events.contains(&&Event::SessionsChanged));
        assert!(events.contains(&&Event::UnlinkedWindowClose { window: 2 }));
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Exit { .. }))
                .count(),
            2
        );
    }

    /// The reader thread's own path for pane output says what the parser says, and a line
    /// that looks like output inside a reply block stays body text.
    #[test]
    fn the_reader_routes_what_the_parser_reads() {
        let shared = Shared {
            alive: AtomicBool::new(true),
            sent: Arc::default(),
            changes: AtomicU64::new(0),
            waiting: Mutex::new(VecDeque::new()),
        };
        let (tx, replies) = channel();
        // Three of the recorded replies answer commands a client sent.
        for _ in 0..3 {
            lock(&shared.waiting).push_back(tx.clone());
        }
        type Outputs = Vec<(u32, Vec<u8>)>;
        let got: Arc<Mutex<Outputs>> = Arc::default();
        let mut output: OutputSink = {
            let got = Arc::clone(&got);
            Box::new(move |pane, data| lock(&got).push((pane, data.to_vec())))
        };
        let change: ChangeSink = Box::new(|_| {});
        let (attached, _ready) = channel();
        let sinks = Sinks {
            output: &mut output,
            change: &change,
        };
        let mut input = RECORDED.to_vec();
        input.extend_from_slice(b"%begin 1 99 1\n%output %0 body\n%end 1 99 1\n");
        lock(&shared.waiting).push_back(tx);
        read_messages(&input[..], &shared, sinks, attached);
        let expected: Outputs = parse_all(RECORDED)
            .into_iter()
            .filter_map(|m| match m {
                Message::Event(Event::Output { pane, data }) => Some((pane, data)),
                _ => None,
            })
            .collect();
        assert_eq!(*lock(&got), expected);
        let bodies: Vec<Vec<u8>> = replies.try_iter().map(|r| r.body).collect();
        assert_eq!(bodies.len(), 4);
        assert_eq!(bodies[3], b"%output %0 body\n");
    }

    #[test]
    fn octal_escapes_unescape_and_anything_else_stays() {
        assert_eq!(unescape(b"a\\134b\\015\\012"), b"a\\b\r\n");
        assert_eq!(unescape(b"\\000\\037\\377"), vec![0, 0x1f, 0xff]);
        // Not an escape tmux writes: kept as it is, never a panic.
        assert_eq!(unescape(b"\\9\\12"), b"\\9\\12");
        assert_eq!(unescape(b"\\777"), b"\\777");
        assert_eq!(unescape(b"\\"), b"\\");
        assert_eq!(unescape(b"\xc3("), b"\xc3(");
    }

    #[test]
    fn a_block_ends_only_at_its_own_number_and_odd_lines_are_no_messages() {
        let mut p = Parser::new();
        assert_eq!(p.line(b"%begin 1 7 1"), None);
        assert_eq!(p.line(b"%end 1 6 1"), None, "another number is body text");
        assert_eq!(p.line(b"%exit"), None, "inside a block it is body text");
        let Some(Message::Reply(r)) = p.line(b"%end 1 7 1") else {
            panic!("the block ends");
        };
        assert_eq!(r.body, b"%end 1 6 1\n%exit\n");
        assert_eq!(p.line(b"plain text"), None);
        assert_eq!(p.line(b"%output %x abc"), None, "a bad pane id");
        assert_eq!(p.line(b"%output %3"), None, "no data field");
        assert_eq!(
            p.line(b"%exit too far behind"),
            Some(Message::Event(Event::Exit {
                reason: Some("too far behind".into())
            }))
        );
        assert_eq!(
            p.line(b"%window-close @3"),
            Some(Message::Event(Event::WindowClose { window: 3 }))
        );
        assert_eq!(
            p.line(b"%session-changed $4 my session"),
            Some(Message::Event(Event::SessionChanged {
                id: 4,
                name: "my session".into()
            }))
        );
        assert_eq!(
            p.line(b"%layout-change @0 abc"),
            Some(Message::Event(Event::Other("%layout-change @0 abc".into())))
        );
        // tmux 3.3a, `refresh-client -B 'dead:%*:#{pane_dead}'` and the pane's process ending.
        assert_eq!(
            Parser::new().line(b"%subscription-changed dead $0 @0 0 %0 : 1"),
            Some(Message::Event(Event::SubscriptionChanged {
                name: "dead".into(),
                value: "1".into()
            }))
        );
    }

    #[test]
    fn arguments_are_quoted_and_a_quote_is_refused() {
        assert_eq!(quote("=api:").unwrap(), "'=api:'");
        assert_eq!(quote("a;b $x").unwrap(), "'a;b $x'");
        assert!(quote("it's").is_err());
        assert!(quote("a\nkill-server").is_err());
    }
}
