//! Held connections (`egress::held`) through the real binary, bwrap and proxy: a sandbox's
//! `curl` to a host no rule names waits, and `sandbox-deck net` answers it.

use crate::common::*;
use crate::egress::{Egress, TOOLS, Upstream};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The connections `net NAME --json` lists as held.
fn held(e: &Egress, name: &str) -> Vec<serde_json::Value> {
    let out = e.run(&["--json", "net", name]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["held"] == true)
        .collect()
}

fn wait_held(e: &Egress, name: &str, what: &str) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    wait_for(what, Duration::from_secs(30), || {
        seen = held(e, name);
        !seen.is_empty()
    });
    seen
}

/// The result a step of the sandbox's script wrote, once it did.
fn result(step: &Path) -> String {
    wait_for(
        &format!("{}", step.display()),
        Duration::from_secs(40),
        || step.exists(),
    );
    std::fs::read_to_string(step).unwrap().trim().to_string()
}

fn net(e: &Egress, args: &[&str]) -> String {
    let out = e.run(&[&["net"], args].concat());
    assert!(
        out.status.success(),
        "net {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A long-lived proxy-mode sandbox running `steps` (each a curl whose status goes to a file
/// of its own, one after the other); the files, in order.
fn sandbox(e: &Egress, steps: &[String]) -> (Guarded, Vec<PathBuf>) {
    let files: Vec<PathBuf> = (0..steps.len())
        .map(|i| e.project.join(format!(".r{i}")))
        .collect();
    let mut body = String::new();
    for (step, file) in steps.iter().zip(&files) {
        let f = file.display();
        body.push_str(&format!(
            "echo $(curl -sS -m 40 -o /dev/null -w '%{{http_code}}' {step}) > '{f}.new'; mv '{f}.new' '{f}'; "
        ));
    }
    body.push_str("sleep 600");
    let child = e
        .proxy_shell(&body)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn_guarded();
    (child, files)
}

#[test]
fn a_held_connection_is_allowed_once_denied_for_the_session_or_always() {
    held_and_answered(false);
}

/// The same as `nobody`: its proxy, its CLI and its files, the answers through them.
#[test]
fn a_held_connection_is_allowed_once_denied_for_the_session_or_always_as_nobody() {
    held_and_answered(true);
}

fn held_and_answered(nobody: bool) {
    if !prerequisites(TOOLS) || (nobody && !can_drop_to_nobody()) {
        return;
    }
    let e = Egress::new_as("egress-held", nobody, &[]);
    e.write_config_with(&[], "hold_seconds = 30\nhold_max = 4\n");
    let (first, second) = (Upstream::start("127.0.0.2"), Upstream::start("127.0.0.2"));
    let rule = format!("upstream.test:{}", first.port);
    let other = format!("upstream.test:{}", second.port);
    let steps = [
        // CONNECT (the tunnel carries plain HTTP), then plain HTTP, to the same host.
        format!("-p http://{rule}/once"),
        format!("http://{rule}/held-again"),
        format!("http://{rule}/session"),
        format!("http://{rule}/session-again"),
        format!("http://{other}/always"),
        format!("http://{other}/always-again"),
    ];
    let (child, r) = sandbox(&e, &steps);
    let name = "egress-held";

    let shown = wait_held(&e, name, "the CONNECT held");
    assert_eq!(shown[0]["kind"], "connect", "{shown:?}");
    assert_eq!(shown[0]["host"], "upstream.test");
    let dir = e
        .world
        .root
        .path()
        .join("state/sandbox-deck/sandboxes")
        .read_dir()
        .unwrap()
        .flatten()
        .map(|d| d.path().join("egress-held"))
        .find(|d| d.exists())
        .expect("the held dir");
    for file in dir.read_dir().unwrap().flatten() {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.path().display());
    }
    // --once with nothing matching held is an error, the held one stays.
    let wrong = e.run(&["net", name, "allow", &other, "--once"]);
    assert!(!wrong.status.success());
    net(&e, &[name, "allow", &rule, "--once"]);
    assert_eq!(result(&r[0]), "200");

    // Once was this connection only: the next one waits again, and deny refuses it.
    let again = wait_held(&e, name, "the next connection held again");
    assert_eq!(again[0]["kind"], "http");
    net(&e, &[name, "deny", &rule]);
    assert_eq!(result(&r[1]), "403");

    wait_held(&e, name, "the third connection held");
    net(&e, &[name, "allow", &rule, "--session"]);
    assert_eq!(result(&r[2]), "200");
    // The session's rule lets the next one through unasked.
    assert_eq!(result(&r[3]), "200");

    wait_held(&e, name, "a connection to the other port held");
    let said = net(&e, &[name, "allow", &other]);
    assert!(said.contains(&other), "{said}");
    assert_eq!(result(&r[4]), "200");
    assert_eq!(result(&r[5]), "200");
    let record = e.run(&["--json", "show", name]);
    let record = String::from_utf8_lossy(&record.stdout).to_string();
    assert!(record.contains(&other), "always is in the record: {record}");
    assert!(!record.contains(&format!("\"{rule}\"")), "{record}");

    let log = e.decisions();
    let stop = e.run(&["stop", name]);
    assert!(stop.status.success());
    drop(child);
    for (answer, count) in [("once", 1), ("session", 1), ("always", 1)] {
        let seen = log
            .lines()
            .filter(|l| l.contains(&format!("\"approved\":\"{answer}\"")))
            .count();
        assert_eq!(seen, count, "{answer} in\n{log}");
    }
    assert!(log.contains("denied by the user"), "{log}");
    assert_eq!(
        first.heads().len(),
        3,
        "once, session twice: {:?}",
        first.heads()
    );
}

#[test]
fn unanswered_connections_time_out_and_a_flood_of_them_stays_bounded() {
    if !prerequisites(TOOLS) {
        return;
    }
    let e = Egress::new("egress-hold-flood");
    e.write_config_with(&[], "hold_seconds = 3\nhold_max = 3\n");
    let upstream = Upstream::start("127.0.0.2");
    let target = format!("upstream.test:{}", upstream.port);
    let done = e.project.join(".flood-done");
    let codes = e.project.join(".flood-codes");
    let body = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do \
         curl -sS -m 40 -o /dev/null -w '%{{http_code}}\\n' http://{target}/$i >> '{c}' & \
         done; wait; mv '{c}' '{d}'; sleep 600",
        c = codes.display(),
        d = done.display()
    );
    let child = e
        .proxy_shell(&body)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn_guarded();
    let name = "egress-hold-flood";
    let mut most = 0;
    wait_for("every curl", Duration::from_secs(60), || {
        most = most.max(held(&e, name).len());
        done.exists()
    });
    let codes = std::fs::read_to_string(&done).unwrap();
    let log = e.decisions();
    let left = held(&e, name);
    let stop = e.run(&["stop", name]);
    assert!(stop.status.success());
    drop(child);
    assert_eq!(codes.lines().filter(|c| *c == "403").count(), 10, "{codes}");
    // At most three waited; the control: three did wait (and timed out).
    assert!(most <= 3, "{most} held at once");
    assert_eq!(log.matches("nobody answered").count(), 3, "{log}");
    assert_eq!(log.matches("already wait").count(), 7, "{log}");
    assert!(left.is_empty(), "{left:?}");
    assert!(upstream.heads().is_empty());
}

#[test]
fn a_client_that_gives_up_while_held_frees_its_place_at_once() {
    if !prerequisites(TOOLS) {
        return;
    }
    let e = Egress::new("egress-held-left");
    e.write_config_with(&[], "hold_seconds = 60\nhold_max = 4\n");
    let upstream = Upstream::start("127.0.0.2");
    let url = format!("http://upstream.test:{}/", upstream.port);
    // curl gives up after 2 s, long before the hold would end.
    let (child, r) = sandbox(&e, &[format!("-m 2 {url}")]);
    let name = "egress-held-left";
    wait_held(&e, name, "the connection held");
    result(&r[0]);
    let mut left = Vec::new();
    wait_for("the held connection to go", Duration::from_secs(10), || {
        left = held(&e, name);
        left.is_empty()
    });
    let log = e.decisions();
    let stop = e.run(&["stop", name]);
    assert!(stop.status.success());
    drop(child);
    assert!(log.contains("the client left while held"), "{log}");
    assert!(upstream.heads().is_empty());
}

/// The real Chromium through its wrapper: the listed page loads, an unlisted one waits for
/// the answer. (Chromium also reads the proxy variables by itself; the wrapper's
/// `--proxy-server` is checked by `backend::tests::the_browser_wrapper_names_the_sandboxs_proxy`.)
#[test]
fn the_browser_inside_goes_through_the_proxy_and_an_unlisted_host_is_held() {
    if !prerequisites(&["bwrap", "curl", "chromium"]) {
        return;
    }
    let e = Egress::new("egress-browser");
    e.write_config_with(&[], "hold_seconds = 30\nhold_max = 16\n");
    let listed = format!("http://upstream.test:{}/listed", e.port());
    let unlisted_upstream = Upstream::start("127.0.0.2");
    let unlisted = format!("upstream.test:{}", unlisted_upstream.port);
    let browse = |url: &str| {
        format!(
            "timeout 60 chromium --headless=new --disable-gpu --disable-background-networking --disable-component-update --dump-dom {url} 2>/dev/null | grep -c upstream-ok"
        )
    };
    let done = e.project.join(".browsed");
    let body = format!(
        "{{ echo listed=$({}); echo unlisted=$({}); }} > '{d}.new'; mv '{d}.new' '{d}'; sleep 600",
        browse(&listed),
        browse(&format!("http://{unlisted}/unlisted")),
        d = done.display()
    );
    let child = e
        .proxy_shell(&body)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn_guarded();
    let name = "egress-browser";
    // The browser's own background requests (its updater) are held too: it really asks
    // the proxy. Only the page's host is answered.
    wait_for(
        "the browser's request to an unlisted host held",
        Duration::from_secs(60),
        || held(&e, name).iter().any(|h| h["host"] == "upstream.test"),
    );
    net(&e, &[name, "allow", &unlisted, "--once"]);
    wait_for("the browser", Duration::from_secs(90), || done.exists());
    let text = std::fs::read_to_string(&done).unwrap();
    let stop = e.run(&["stop", name]);
    assert!(stop.status.success());
    drop(child);
    assert!(text.contains("listed=1"), "{text}");
    assert!(text.contains("unlisted=1"), "{text}");
    assert!(!unlisted_upstream.heads().is_empty());
}
