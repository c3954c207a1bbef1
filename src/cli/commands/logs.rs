//! `logs NAME [--lines N] [-f]`: a sandbox's pane log, the output its pane printed while a
//! control center watched it.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::NAME_HELP;
use crate::engine::Deck;
use crate::engine::preview::PaneLog;
use crate::sandbox::SandboxState;

/// How often `-f` looks for more output, and for whether the sandbox still runs.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
const STATE_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The log holds what the pane printed (secrets too) and is written only while a \
control center (the TUI) watches: with none open, nothing is logged. Its size is capped by \
logs.max_bytes (one older file is kept). Lines are printed without escape sequences or control \
bytes; with --json each is one object a line, {\"text\": …}, its text as the pane wrote it."
)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// Print only the last N lines.
    #[arg(long, short = 'n', value_name = "N")]
    pub lines: Option<usize>,
    /// Keep printing what is appended, until the sandbox ends (or Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let (record, path) = deck.pane_log_of(&args.name)?;
    let mut bytes = read_or_empty(&PaneLog::rotated(&path))?;
    let mut current = read_or_empty(&path)?;
    let mut offset = current.len() as u64;
    bytes.append(&mut current);
    if bytes.is_empty() && !json {
        tell!(
            "sandbox-deck: no pane output logged for {} (logs are written only while the \
             control center watches)",
            record.name
        );
    }
    let (mut lines, mut partial) = split_lines(&bytes);
    if !args.follow && !partial.is_empty() {
        // The line the pane is still writing (a prompt) counts, as with `tail`.
        lines.push(std::mem::take(&mut partial));
    }
    let skip = args.lines.map_or(0, |n| lines.len().saturating_sub(n));
    for line in &lines[skip..] {
        print_line(line, json)?;
    }
    if !args.follow {
        return Ok(0);
    }
    let mut checked = Instant::now();
    let mut running = record.state == SandboxState::Running;
    loop {
        let (more, at) = read_from(&path, offset)?;
        offset = at;
        partial.extend_from_slice(&more);
        let (lines, rest) = split_lines(&partial);
        for line in &lines {
            print_line(line, json)?;
        }
        partial = rest;
        if !running {
            break;
        }
        if checked.elapsed() >= STATE_POLL {
            checked = Instant::now();
            running = deck.show(&args.name)?.state == SandboxState::Running;
            // One more read after it ended: what it printed last.
            continue;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    if !partial.is_empty() {
        print_line(&partial, json)?;
    }
    Ok(0)
}

fn read_or_empty(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    }
}

/// What was appended to `path` after `offset`, and the new offset. A file that shrank was
/// rotated: it is read from its start.
fn read_from(path: &Path, offset: u64) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
        }
    };
    let len = file.metadata()?.len();
    let from = if len < offset { 0 } else { offset };
    file.seek(SeekFrom::Start(from))?;
    let mut more = Vec::new();
    file.read_to_end(&mut more)?;
    let at = from + more.len() as u64;
    Ok((more, at))
}

/// The complete lines of `bytes` (without `\n`) and what follows the last one.
fn split_lines(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let rest = lines.pop().unwrap_or_default();
    (lines, rest)
}

/// One line of pane output: made printable (escape sequences and control bytes dropped,
/// invalid UTF-8 replaced), or with `--json` an object whose `text` keeps it escaped.
fn print_line(line: &[u8], json: bool) -> anyhow::Result<()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    if json {
        let body = serde_json::json!({ "text": text }).to_string();
        println!("{}", crate::cli::output::escape_json_controls(&body));
    } else {
        say!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_a_partial_line_is_kept() {
        let (lines, rest) = split_lines(b"a\r\nb\n\xffc");
        assert_eq!(lines, vec![b"a\r".to_vec(), b"b".to_vec()]);
        assert_eq!(rest, b"\xffc");
        let (lines, rest) = split_lines(b"");
        assert!(lines.is_empty() && rest.is_empty());
    }
}
