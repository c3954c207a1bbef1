//! `doctor`: the host's prerequisites, each with how to install it when missing. Exits 1
//! when a required one is missing.

use crate::cli::output::print_json;
use crate::doctor;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, json: bool) -> anyhow::Result<i32> {
    let checks = doctor::run();
    if json {
        print_json(&checks)?;
    } else {
        for c in &checks {
            let mark = if c.ok {
                "ok "
            } else if c.required {
                "MISSING"
            } else {
                "missing"
            };
            say!("{mark:8} {:15} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                say!("{:8} {:15} fix: {fix}", "", "");
            }
        }
    }
    Ok(if doctor::all_required_ok(&checks) {
        0
    } else {
        1
    })
}
