//! `man [DIR]`: the man page on stdout, or one page per command written into DIR.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::docs;
use crate::cli::output::print_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An existing directory, e.g. ~/.local/share/man/man1.
    pub dir: Option<PathBuf>,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let Some(dir) = args.dir else {
        docs::render_man_page(&mut std::io::stdout().lock()).context("writing the man page")?;
        return Ok(0);
    };
    let written = docs::write_man_pages(&dir)?;
    if json {
        print_json(&written)?;
    } else {
        for path in written {
            println!("{}", path.display());
        }
    }
    Ok(0)
}
