//! What is generated from the CLI's clap definitions, so it never drifts from `--help`:
//! shell completion scripts and man pages.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use crate::error::{IoContext, Result};

/// The program's name in completions and man pages.
const NAME: &str = "sandbox-deck";

/// The CLI without its hidden (internal) subcommands, which clap_complete would offer.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    // A Command cannot drop a subcommand: a copy without any gets the visible ones back.
    let mut visible = clap::Command::new(NAME).version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        visible = visible.about(about.clone());
    }
    visible
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Writes the completion script for `shell`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    if shell != Shell::Bash {
        clap_complete::generate(shell, &mut visible_command(), NAME, out);
        return Ok(());
    }
    // clap_complete's bash script never completes a subcommand's options when the program's
    // name has a hyphen (clap-rs/clap#6421: its dispatch and its case labels disagree). It
    // is generated for a name without one, then registered for the real name.
    let stand_in = NAME.replace('-', "_");
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut visible_command(), &stand_in, &mut script);
    let script = String::from_utf8_lossy(&script);
    for line in script.lines() {
        match line.trim_start().strip_prefix("complete -F ") {
            Some(_) => {
                let registered = line.strip_suffix(stand_in.as_str()).unwrap_or(line);
                writeln!(out, "{registered}{NAME}")?
            }
            None => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}

/// The man page of the whole program (section 1), as roff.
pub fn render_man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes `sandbox-deck.1` and one page per subcommand (`sandbox-deck-create.1`, …) into
/// `dir`, which must exist; returns the files written. Hidden subcommands get none.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Built, subcommands know their full names ("sandbox-deck create").
    command.build();
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    Ok(written)
}

fn write_pages(command: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let page = clap_mangen::Man::new(command.clone());
    let path = dir.join(page.get_filename());
    let mut body = Vec::new();
    page.render(&mut body)
        .context_io(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, body).context_io(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_named_after_its_command_and_the_hidden_one_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "sandbox-deck.1");
        for sub in ["create", "list", "status", "completions", "man"] {
            assert!(
                names.contains(&format!("sandbox-deck-{sub}.1")),
                "{names:?}"
            );
        }
        assert!(
            !names.iter().any(|n| n.contains("run-managed")),
            "{names:?}"
        );
        let create = std::fs::read_to_string(dir.path().join("sandbox-deck-create.1")).unwrap();
        assert!(
            create.starts_with(".ie") || create.contains(".TH"),
            "{create}"
        );
        assert!(
            create.contains("no\\-network"),
            "the options are documented"
        );
    }
}
