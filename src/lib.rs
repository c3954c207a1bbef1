//! sandbox-deck: a terminal control center for AI coding agents in sandboxes.
//!
//! The layout follows the architecture: `engine` (lifecycle, monitor, the `Deck` handle)
//! over `registry`, `host` (Xvfb, private tmux, processes) and `backend` (one file each).

pub mod backend;
pub mod capture;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod format;
pub mod host;
pub mod log;
pub mod metrics;
pub mod paths;
pub mod registry;
pub mod sandbox;
pub mod spec;
pub mod tui;
pub mod untrusted;
pub mod usage;
