//! `attach NAME`: this terminal becomes the sandbox's tmux client (with --host, through
//! `ssh -t HOST sandbox-deck attach NAME`).

use std::os::unix::process::CommandExt;

use anyhow::Context;

use crate::cli::NAME_HELP;
use crate::cli::remote::HostArgs;
use crate::engine::Deck;
use crate::sandbox::SandboxName;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    #[command(flatten)]
    pub remote: HostArgs,
}

/// Returns only on failure: on success this process becomes the tmux client (or ssh).
pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    let mut command = match &args.remote.host {
        Some(host) => {
            // The name goes into the remote shell's command line: checked first, it can only
            // be [a-z0-9-].
            let name = SandboxName::parse(&args.name)?;
            let argv = args.remote.ssh.options(false)?.ssh.attach(host, &name);
            let mut command = std::process::Command::new(&argv[0]);
            command.args(&argv[1..]);
            command
        }
        None => Deck::open()?.attach_command(&args.name)?,
    };
    let err = command.exec();
    let what = if args.remote.host.is_some() {
        "running ssh"
    } else {
        "running tmux attach"
    };
    Err(err).context(what)
}
