//! Shell completions and man pages, generated from the CLI's clap definitions: each script
//! names every subcommand, bash's parses and really completes, the man pages render.

use std::process::{Command, Output, Stdio};

use crate::common::*;
use clap::CommandFactory;
use sandbox_deck::cli::Cli;

fn deck(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running sandbox-deck")
}

fn stdout_of(args: &[&str]) -> String {
    let out = deck(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The subcommands a user can type (the internal one is hidden from --help).
fn subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect()
}

#[test]
fn each_shell_gets_a_script_that_names_every_subcommand() {
    let names = subcommands();
    for wanted in ["create", "status", "completions", "man"] {
        assert!(names.iter().any(|n| n == wanted), "{names:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for name in &names {
            assert!(script.contains(name.as_str()), "{shell} lacks {name}");
        }
        assert!(
            script.contains("sandbox-deck"),
            "{shell}: not for sandbox-deck"
        );
        assert!(
            !script.contains("run-managed"),
            "{shell} offers the internal command"
        );
        assert!(
            script.contains("image-protocol"),
            "{shell} lacks the global options"
        );
    }
    assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef sandbox-deck"));
    let bad = deck(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bash"));
}

/// Runs bash's completion for `words` (the last one being completed) with the script loaded.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    // The script's words come as arguments, never spliced into the program.
    let program = r#"source "$1"
f=$(complete -p sandbox-deck | sed 's/.*-F \([^ ]*\).*/\1/')
read -ra COMP_WORDS <<< "$2"
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
"$f" sandbox-deck "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}""#;
    let out = succeed(
        Command::new("bash")
            .args(["-c", program, "bash"])
            .arg(script)
            .arg(&line),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_bash_script_parses_and_completes_subcommands_and_their_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("sandbox-deck.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    succeed(Command::new("bash").arg("-n").arg(&script));
    assert_eq!(
        bash_completes(&script, &["sandbox-deck", "cre"]),
        ["create"]
    );
    assert_eq!(
        bash_completes(&script, &["sandbox-deck", "status", "--me"]),
        ["--metrics"]
    );
    // A subcommand's own options: what clap_complete's script misses for a hyphenated name.
    assert_eq!(
        bash_completes(&script, &["sandbox-deck", "create", "--no-n"]),
        ["--no-network"]
    );
    assert_eq!(
        bash_completes(&script, &["sandbox-deck", "completions", "fi"]),
        ["fish"]
    );
}

fn render(page: &[u8]) -> String {
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running man");
    use std::io::Write;
    man.stdin.take().unwrap().write_all(page).unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a terminal, man may still overstrike bold text: keep the letters.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn the_man_pages_render_with_every_command_and_option() {
    if !prerequisites(&["man"]) {
        return;
    }
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH sandbox-deck 1"), "{page}");
    let shown = render(page.as_bytes());
    assert!(shown.contains("NAME"), "{shown}");
    for name in subcommands() {
        assert!(shown.contains(&name), "the page lacks {name}: {shown}");
    }

    let dir = tempfile::tempdir().unwrap();
    let listed = stdout_of(&["man", dir.path().to_str().unwrap()]);
    assert_eq!(listed.lines().count(), subcommands().len() + 1, "{listed}");
    for name in subcommands() {
        let path = dir.path().join(format!("sandbox-deck-{name}.1"));
        assert!(listed.contains(path.to_str().unwrap()), "{listed}");
    }
    let create = std::fs::read(dir.path().join("sandbox-deck-create.1")).unwrap();
    let shown = render(&create);
    assert!(shown.contains("--no-network"), "{shown}");
    assert!(shown.contains("sandbox-deck-create"), "{shown}");

    // A directory that is not there: a clear error, nothing written.
    let missing = dir.path().join("nope");
    let out = deck(&["man", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope") && err.contains("sandbox-deck.1"),
        "{err}"
    );
    assert!(!missing.exists());
}
