//! `egress-proxy` (internal): a `--network proxy` sandbox's proxy, started by its launch
//! with bwrap's info and block pipes at fds 3 and 4 (see `egress`).

use std::path::PathBuf;

use crate::egress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec the launch wrote (`egress.json` in the sandbox's runtime dir).
    #[arg(long)]
    pub spec: PathBuf,
    /// Start the proxy in a new session of its own and return at once.
    #[arg(long)]
    pub detach: bool,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    if args.detach {
        let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        egress::spawn_detached(&argv)?;
    } else {
        egress::run_proxy(&args.spec)?;
    }
    Ok(0)
}
