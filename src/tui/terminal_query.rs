//! Asking the terminal what images it can show, without holding up the first frame and
//! without eating keys. ratatui-image's own query reads stdin on a thread that outlives its
//! timeout: a terminal that never answers (a tmux that drops passthrough) cost two seconds
//! and the thread then swallowed the first key. Here the reads are ours: one byte at a time
//! (never past the terminal's last answer), each with a deadline, and whatever the user
//! typed before the answers came is handed back as keys.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ratatui_image::picker::ProtocolType;
use ratatui_image::picker::cap_parser::{Parser, QueryStdioOptions, Response};

/// How long a terminal gets to answer. Real ones answer in milliseconds; a silent one costs
/// this once, with the table already on screen.
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(400);

/// What the terminal said, and the keys typed while it was being asked.
#[derive(Debug, Default)]
pub struct Answer {
    pub responses: Vec<Response>,
    /// False when the terminal stayed silent until the deadline.
    pub answered: bool,
    pub typed: Vec<KeyEvent>,
}

/// Sends the query and reads the answers up to the device status report that ends them.
/// The terminal must be in raw mode.
pub fn ask(wrap_for_tmux: bool, options: QueryStdioOptions) -> io::Result<Answer> {
    let query = Parser::query(wrap_for_tmux, options);
    let stdin = io::stdin();
    ask_over(stdin.as_fd(), &mut io::stdout(), &query, ANSWER_TIMEOUT)
}

/// `ask` over any input and output, for tests.
fn ask_over(
    input: BorrowedFd<'_>,
    output: &mut impl Write,
    query: &str,
    timeout: Duration,
) -> io::Result<Answer> {
    output.write_all(query.as_bytes())?;
    output.flush()?;
    let deadline = Instant::now() + timeout;
    let mut parser = Parser::new();
    let mut answer = Answer::default();
    // Bytes before the first escape are keys the user typed, not answers: answers all start
    // with ESC, and the terminal sends them in one go.
    let mut typed = Vec::new();
    let mut answering = false;
    while let Some(byte) = read_byte(input, deadline)? {
        if !answering && byte != 0x1b {
            typed.push(byte);
            continue;
        }
        answering = true;
        let responses = parser.push(char::from(byte));
        if responses.contains(&Response::Status) {
            answer.answered = true;
            break;
        }
        answer.responses.extend(responses);
    }
    answer.typed = keys_from_bytes(&typed);
    Ok(answer)
}

/// One byte of `input`, or None once `deadline` passed with nothing to read. Unbuffered: a
/// byte not read here is left for the TUI's input reader.
fn read_byte(input: BorrowedFd<'_>, deadline: Instant) -> io::Result<Option<u8>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(input, &mut byte) {
            Ok(1) => return Ok(Some(byte[0])),
            Ok(_) => return Ok(None),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Keys as a raw-mode terminal sends plain typing: characters, Enter, Tab, Backspace and
/// control letters. Escape sequences (arrows) do not come before the answers, which start
/// with the first ESC.
pub fn keys_from_bytes(bytes: &[u8]) -> Vec<KeyEvent> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter_map(|c| {
            let (code, modifiers) = match c {
                '\r' | '\n' => (KeyCode::Enter, KeyModifiers::NONE),
                '\t' => (KeyCode::Tab, KeyModifiers::NONE),
                '\x7f' | '\x08' => (KeyCode::Backspace, KeyModifiers::NONE),
                '\x01'..='\x1a' => (
                    KeyCode::Char(char::from(c as u8 - 1 + b'a')),
                    KeyModifiers::CONTROL,
                ),
                c if c.is_control() => return None,
                c if c.is_uppercase() => (KeyCode::Char(c), KeyModifiers::SHIFT),
                c => (KeyCode::Char(c), KeyModifiers::NONE),
            };
            Some(KeyEvent::new(code, modifiers))
        })
        .collect()
}

/// Terminals that show iTerm2 images but answer no query about it: only their environment
/// says so.
pub fn iterm2_by_environment() -> Option<ProtocolType> {
    const PROGRAMS: [&str; 8] = [
        "iTerm",
        "WezTerm",
        "mintty",
        "vscode",
        "Tabby",
        "Hyper",
        "rio",
        "WarpTerminal",
    ];
    let program = std::env::var("TERM_PROGRAM").unwrap_or_default();
    let lc_terminal = std::env::var("LC_TERMINAL").unwrap_or_default();
    (PROGRAMS.iter().any(|p| program.contains(p)) || lc_terminal.contains("iTerm"))
        .then_some(ProtocolType::Iterm2)
}

/// The terminal is tmux (or screen) by its own name, whether or not `$TMUX` survived the way
/// here (`sudo -i`, `su -` drop it).
pub fn terminal_is_tmux() -> bool {
    let term = std::env::var("TERM").unwrap_or_default();
    std::env::var_os("TMUX").is_some()
        || term.starts_with("tmux")
        || std::env::var("TERM_PROGRAM").is_ok_and(|p| p == "tmux")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe standing in for the terminal's input, with `bytes` already in it.
    fn input_with(bytes: &[u8]) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        nix::unistd::write(&write, bytes).expect("writing to the pipe");
        (read, write)
    }

    #[test]
    fn keys_typed_before_the_answer_are_kept_and_the_answer_is_read() {
        // `?` typed, then kitty's OK, a cell size of 18x9 and the status report, then a key
        // typed after: that one stays in the input for the TUI's reader.
        let (read, _write) = input_with(b"?j\x1b_Gi=31;OK\x1b\\\x1b[6;18;9t\x1b[0nq");
        let mut sent = Vec::new();
        let answer =
            ask_over(read.as_fd(), &mut sent, "QUERY", Duration::from_secs(2)).expect("asking");
        assert_eq!(sent, b"QUERY");
        assert!(answer.answered);
        assert!(
            answer.responses.contains(&Response::Kitty),
            "{:?}",
            answer.responses
        );
        assert!(
            answer
                .responses
                .contains(&Response::CellSize(Some((9, 18))))
        );
        let typed: Vec<KeyCode> = answer.typed.iter().map(|k| k.code).collect();
        assert_eq!(typed, [KeyCode::Char('?'), KeyCode::Char('j')]);
        let mut rest = [0u8; 4];
        assert_eq!(nix::unistd::read(read.as_fd(), &mut rest), Ok(1));
        assert_eq!(rest[0], b'q', "nothing past the answer was read");
    }

    #[test]
    fn a_silent_terminal_costs_the_timeout_and_no_key() {
        let (read, _write) = input_with(b"S");
        let started = Instant::now();
        let answer = ask_over(
            read.as_fd(),
            &mut Vec::new(),
            "Q",
            Duration::from_millis(150),
        )
        .expect("asking");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!answer.answered);
        let typed: Vec<KeyCode> = answer.typed.iter().map(|k| k.code).collect();
        assert_eq!(typed, [KeyCode::Char('S')], "the key typed comes back");
    }

    #[test]
    fn typed_bytes_become_the_keys_they_were() {
        let keys = keys_from_bytes(b"?jS\r\t\x7f\x0bx");
        let codes: Vec<(KeyCode, KeyModifiers)> =
            keys.iter().map(|k| (k.code, k.modifiers)).collect();
        assert_eq!(
            codes,
            [
                (KeyCode::Char('?'), KeyModifiers::NONE),
                (KeyCode::Char('j'), KeyModifiers::NONE),
                (KeyCode::Char('S'), KeyModifiers::SHIFT),
                (KeyCode::Enter, KeyModifiers::NONE),
                (KeyCode::Tab, KeyModifiers::NONE),
                (KeyCode::Backspace, KeyModifiers::NONE),
                (KeyCode::Char('k'), KeyModifiers::CONTROL),
                (KeyCode::Char('x'), KeyModifiers::NONE),
            ]
        );
    }
}
