//! `screenshot NAME`: a PNG of the sandbox's display, into a file or onto stdout.

use std::path::{Path, PathBuf};

use crate::cli::NAME_HELP;
use crate::cli::output::print_json;
use crate::cli::remote::{HostArgs, Remote};
use crate::engine::Deck;
use crate::error::DeckError;
use crate::sandbox::SandboxName;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// The PNG file, or `-` for stdout (default: NAME-<time>.png here).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let Args {
        name,
        output,
        remote,
    } = args;
    // With --host the picture comes as the engine sends it to a watcher; the PNG is
    // written here.
    let frame = match &remote.host {
        Some(host) => {
            Remote::connect(host, &remote.ssh)?.screenshot(&SandboxName::parse(&name)?)?
        }
        None => Deck::open()?.screenshot(&name)?,
    };
    let captured_at = chrono::Utc::now();
    let path = output.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{name}-{}.png",
            captured_at.format("%Y%m%d-%H%M%S")
        ))
    });
    crate::capture::write_png(&frame, &path)
        .map_err(|e| DeckError::capture("writing the screenshot", e))?;
    let to_stdout = path == Path::new("-");
    if json && !to_stdout {
        let absolute = std::path::absolute(&path).unwrap_or(path);
        print_json(&serde_json::json!({
            "name": name,
            "width": frame.width,
            "height": frame.height,
            "path": absolute,
            "captured_at": captured_at,
        }))?;
    } else if !to_stdout {
        say!("{} ({}x{})", path.display(), frame.width, frame.height);
    }
    Ok(0)
}
