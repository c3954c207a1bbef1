//! `git-sync` (internal): the helper that keeps a sandbox's view of the project's git dir
//! and the host's in step while the sandbox runs.

use std::path::PathBuf;

use crate::backend::git_view;
use crate::host::process::ProcRef;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sync spec the launch wrote (`git/sync.json` in the project's state dir).
    #[arg(long)]
    pub spec: PathBuf,
    /// The process the sandbox runs under: the helper syncs while it lives, and once after.
    #[arg(long)]
    pub pid: u32,
    /// That process's start time (as /proc gives it), so a reused pid is not taken for it.
    #[arg(long)]
    pub start_time: u64,
    /// Start the helper in a new session of its own and return at once.
    #[arg(long)]
    pub detach: bool,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    if args.detach {
        let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        git_view::detach(&argv)?;
    } else {
        let watched = ProcRef {
            pid: args.pid,
            start_time: args.start_time,
        };
        git_view::run_sync_helper(&args.spec, watched)?;
    }
    Ok(0)
}
