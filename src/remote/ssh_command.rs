//! The ssh command line: `ssh` unless `--ssh` or `mirror.ssh_command` says otherwise, split
//! by shell word rules (quotes and backslashes, no expansion, no shell ever runs it), then
//! our arguments after it: `-T -- DEST sandbox-deck bridge`, or `-t -- DEST sandbox-deck
//! attach NAME`. The remote side does run a shell on the words after DEST, so only fixed
//! words and a checked sandbox name ever go there.

use std::ffi::OsString;

use crate::error::{DeckError, Result};
use crate::sandbox::SandboxName;

use super::Destination;

/// The command ssh is started with, before our arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    argv: Vec<String>,
}

impl Default for SshCommand {
    fn default() -> SshCommand {
        SshCommand {
            argv: vec!["ssh".into()],
        }
    }
}

impl SshCommand {
    /// `text` split as a shell would split it (without running one). `origin` names where
    /// it came from in errors (`--ssh`, `mirror.ssh_command`).
    pub fn parse(text: &str, origin: &str) -> Result<SshCommand> {
        let invalid = |why: &str| DeckError::InvalidArgument {
            what: format!("{origin} {text:?}"),
            why: why.to_owned(),
        };
        let argv = shlex::split(text).ok_or_else(|| {
            invalid("it does not split into words (an unclosed quote or a trailing backslash)")
        })?;
        if argv.is_empty() {
            return Err(invalid("it is empty; give a command such as `ssh -p 2222`"));
        }
        Ok(SshCommand { argv })
    }

    /// The words as they will be run.
    pub fn words(&self) -> &[String] {
        &self.argv
    }

    /// `ssh … -T -- DEST sandbox-deck bridge`: the API over the session's stdio.
    pub fn bridge(&self, destination: &Destination) -> Vec<OsString> {
        self.with(&["-T"], destination, &["sandbox-deck", "bridge"])
    }

    /// `ssh … -t -- DEST sandbox-deck attach NAME`: this terminal on the sandbox's session.
    pub fn attach(&self, destination: &Destination, name: &SandboxName) -> Vec<OsString> {
        self.with(
            &["-t"],
            destination,
            &["sandbox-deck", "attach", name.as_str()],
        )
    }

    fn with(&self, options: &[&str], destination: &Destination, remote: &[&str]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = self.argv.iter().map(OsString::from).collect();
        argv.extend(options.iter().map(OsString::from));
        argv.push("--".into());
        argv.push(destination.as_str().into());
        argv.extend(remote.iter().map(OsString::from));
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(argv: Vec<OsString>) -> Vec<String> {
        argv.into_iter().map(|w| w.into_string().unwrap()).collect()
    }

    #[test]
    fn the_command_splits_like_shell_words_and_our_arguments_follow_it() {
        let ssh = SshCommand::parse(
            r#"ssh -p 2222 -o "ProxyJump me@jump host" -i ~/k\ ey"#,
            "--ssh",
        )
        .expect("splits");
        let dest = Destination::parse("me@box").unwrap();
        assert_eq!(
            words(ssh.bridge(&dest)),
            [
                "ssh",
                "-p",
                "2222",
                "-o",
                "ProxyJump me@jump host",
                "-i",
                "~/k ey",
                "-T",
                "--",
                "me@box",
                "sandbox-deck",
                "bridge"
            ]
        );
        let name = SandboxName::parse("api").unwrap();
        assert_eq!(
            words(SshCommand::default().attach(&dest, &name)),
            ["ssh", "-t", "--", "me@box", "sandbox-deck", "attach", "api"]
        );
    }

    #[test]
    fn nothing_is_expanded_and_bad_commands_are_refused() {
        let ssh = SshCommand::parse("ssh $(touch x) `y` ;z", "--ssh").expect("splits");
        assert_eq!(ssh.words(), ["ssh", "$(touch", "x)", "`y`", ";z"]);
        for bad in ["", "   ", "ssh 'open", "ssh \\"] {
            let err = SshCommand::parse(bad, "--ssh").expect_err(bad);
            assert_eq!(err.kind(), "invalid_argument");
        }
    }
}
