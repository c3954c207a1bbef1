//! The CLI's surface as tests: clap's own checks, every `--help` as a snapshot, and help
//! on every positional argument.

use clap::CommandFactory;

use super::Cli;

#[test]
fn the_clap_definitions_are_consistent() {
    Cli::command().debug_assert();
}

/// What `--help` prints for `args`, exactly (clap renders it as an "error").
fn help_of(args: &[&str]) -> String {
    let argv = std::iter::once("sandbox-deck")
        .chain(args.iter().copied())
        .chain(["--help"]);
    match Cli::command().try_get_matches_from(argv) {
        Ok(_) => panic!("{args:?} --help parsed as a command"),
        Err(e) => {
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{args:?}");
            e.render().to_string()
        }
    }
}

/// Help text is reviewed like code: every `--help` (hidden subcommands too) is a
/// snapshot, so a change to it shows in the diff.
#[test]
fn every_help_text_is_a_reviewed_snapshot() {
    insta::assert_snapshot!("help", help_of(&[]));
    for command in Cli::command().get_subcommands() {
        let name = command.get_name();
        insta::assert_snapshot!(format!("help_{name}"), help_of(&[name]));
    }
}

/// Every positional argument of every subcommand (hidden ones too) says what it is.
#[test]
fn every_positional_argument_has_help() {
    let root = Cli::command();
    for command in root.get_subcommands() {
        for arg in command.get_positionals() {
            assert!(
                arg.get_help().is_some(),
                "`{} <{}>` has no help",
                command.get_name(),
                arg.get_id()
            );
        }
    }
}

/// Hidden subcommands are typed by the deck itself, not by people, but their flags are
/// explained all the same (their `--help` is a snapshot too).
#[test]
fn every_option_has_help() {
    for command in Cli::command().get_subcommands() {
        for arg in command.get_opts() {
            assert!(
                arg.get_help().is_some(),
                "`{} --{}` has no help",
                command.get_name(),
                arg.get_id()
            );
        }
    }
}

/// The engine returns what a launch has to say; the CLI prints it (`sandbox-deck: ` first)
/// in the words it always used.
#[test]
fn launch_notices_read_as_before() {
    use crate::engine::launch::LaunchNotice;
    use crate::sandbox::SandboxName;
    let name = SandboxName::parse("api").unwrap();
    let texts = [
        (LaunchNotice::Stopped { name: name.clone() }, "stopped api"),
        (
            LaunchNotice::Joining {
                name,
                project: "/src/api".into(),
            },
            "joining api (already running for /src/api); --new starts another",
        ),
        (
            LaunchNotice::Exposure {
                warning: "x is a symlink".into(),
            },
            "warning: x is a symlink",
        ),
        (
            LaunchNotice::NoLandlockScoping,
            "warning: this kernel has no Landlock scoping (ABI < 6): with the host network \
             shared, the sandbox can reach the host's abstract sockets (X11, some D-Bus buses); \
             use --network none where you can",
        ),
        (
            LaunchNotice::NoDisplay,
            "no display in a hand-launched sandbox; Chromium needs one (`--display host` on a \
             desktop, or `sandbox-deck create` for its own)",
        ),
    ];
    for (notice, text) in texts {
        assert_eq!(notice.to_string(), text);
    }
}
