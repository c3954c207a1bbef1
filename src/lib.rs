//! sandbox-deck: a terminal control center for AI coding agents in sandboxes.
//!
//! The layout follows the architecture: `engine` (lifecycle, monitor, the `Deck` handle)
//! over `registry`, `host` (Xvfb, private tmux, processes) and `backend` (one file each).
//! `docs/architecture.md` is the map: the layers and which module owns which fact.

// Functions stay under `too-many-lines-threshold` (clippy.toml) or say why they read better
// whole (issue 11). Production code only: integration tests are scenarios read top to bottom.
#![warn(clippy::too_many_lines)]

pub mod api;
pub mod backend;
pub mod capture;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod egress;
pub mod engine;
pub mod error;
pub mod format;
pub mod host;
pub mod log;
pub mod metrics;
pub mod paths;
pub mod registry;
pub mod remote;
pub mod sandbox;
pub mod spec;
pub mod tui;
pub mod untrusted;
pub mod usage;
