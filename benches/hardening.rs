//! What the hardening costs (issue 3): `cargo bench --bench hardening [-- --runs N]`.
//!
//! Median wall time of `sandbox-deck launch bubblewrap --new DIR --shell -- true` from spawn
//! to exit, hardened (namespaces, seccomp, Landlock, read-only root) against unhardened
//! (`bubblewrap.hardening = false`), interleaved run by run in the same process, next to a
//! bare `bwrap --ro-bind / / true` as the floor. Target: hardening costs under 10 ms.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");
const TARGET_MS: f64 = 10.0;

struct Setup {
    root: tempfile::TempDir,
    hardening: bool,
}

impl Setup {
    fn new(hardening: bool) -> Setup {
        let root = tempfile::Builder::new()
            .prefix("sd-bench-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        for dir in ["home", "run", "project", "config/sandbox-deck"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("dirs");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("mode");
        std::fs::write(
            root.path().join("config/sandbox-deck/config.toml"),
            format!("[bubblewrap]\nhardening = {hardening}\n"),
        )
        .expect("config");
        Setup { root, hardening }
    }

    fn launch_true(&self) -> f64 {
        let p = |rel: &str| self.root.path().join(rel);
        let start = Instant::now();
        let status = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", p("home"))
            .env("XDG_STATE_HOME", p("state"))
            .env("XDG_CONFIG_HOME", p("config"))
            .env("XDG_RUNTIME_DIR", p("run"))
            .args(["launch", "bubblewrap", "--new"])
            .arg(p("project"))
            .args(["--shell", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running sandbox-deck");
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        assert!(
            status.success(),
            "launch (hardening = {}) failed",
            self.hardening
        );
        ms
    }
}

fn bare_bwrap() -> f64 {
    let start = Instant::now();
    let status = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "true"])
        .status()
        .expect("running bwrap");
    assert!(status.success());
    start.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20usize);
    if !Path::new("/usr/bin/bwrap").exists()
        && Command::new("bwrap").arg("--version").output().is_err()
    {
        eprintln!("bwrap is not installed: nothing to measure");
        return;
    }
    let hardened = Setup::new(true);
    let plain = Setup::new(false);
    // Warm-up: page cache, the per-project state dirs.
    hardened.launch_true();
    plain.launch_true();
    let (mut h, mut u, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        h.push(hardened.launch_true());
        u.push(plain.launch_true());
        b.push(bare_bwrap());
    }
    let (mh, mu, mb) = (median(h), median(u), median(b));
    println!("launch bubblewrap --shell -- true, median of {runs} runs each (interleaved):");
    println!("  hardened              {mh:8.2} ms");
    println!("  unhardened            {mu:8.2} ms");
    println!("  bare bwrap (floor)    {mb:8.2} ms");
    println!("  hardened / unhardened {:8.3}", mh / mu);
    let cost = mh - mu;
    let verdict = if cost < TARGET_MS { "ok" } else { "MISSED" };
    println!("hardening cost {cost:.2} ms (target < {TARGET_MS} ms): {verdict}");
}
