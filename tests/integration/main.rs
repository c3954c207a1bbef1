//! Every integration test in one binary, so `common` and the crate are built and linked once.
//! Each module is the old `tests/<name>.rs`; run one with `cargo test --test integration <name>::`.

mod common;

mod api;
mod api_client;
mod api_listen;
mod bridge;
mod capture;
mod chromium;
mod claude_screens;
mod cli;
mod cli_docs;
mod egress;
mod egress_approve;
mod escape;
mod fleet;
mod import_cycles;
mod launch;
mod leftovers;
mod lifecycle;
mod log;
mod logs;
mod metrics;
mod mirror;
mod nix_spec;
mod remote;
mod start;
mod status;
mod tmux_control;
mod tui_clients;
mod tui_e2e;
mod tui_egress;
mod usage;
mod wakeups;
