//! One module per subcommand, each with its arguments (`Args`) and what it does (`exec`),
//! named as the subcommand is typed.

pub mod attach;
pub mod auth;
pub mod bridge;
pub mod completions;
pub mod create;
pub mod doctor;
pub mod egress_proxy;
pub mod gc;
pub mod git_sync;
pub mod launch;
pub mod list;
pub mod logs;
pub mod man;
pub mod mirror;
pub mod net;
pub mod restart;
pub mod rm;
pub mod run_managed;
pub mod screenshot;
pub mod serve;
pub mod show;
pub mod start;
pub mod status;
pub mod stop;
pub mod usage;
