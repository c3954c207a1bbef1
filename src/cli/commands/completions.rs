//! `completions SHELL`: the completion script, generated from the clap definitions.

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// bash, zsh, fish (also elvish, powershell).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    crate::cli::docs::write_completions(args.shell, &mut std::io::stdout().lock())
        .context("writing the completion script")?;
    Ok(0)
}
