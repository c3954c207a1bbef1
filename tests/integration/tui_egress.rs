//! Held connections in the control center, in real tmux with a real proxy-mode sandbox: the
//! row shows a connection waiting for an answer, the engine runs `notify.command` once for
//! it, and the keys allow it once, deny it, or allow it always.

use crate::common::tui::*;
use crate::common::*;
use crate::egress::{DnsStub, Upstream};

use std::path::Path;
use std::time::{Duration, Instant};

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The lines a file has now (none while it is missing).
fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait_lines(path: &Path, count: usize, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let lines = lines_of(path);
        if lines.len() >= count {
            return lines;
        }
        assert!(Instant::now() < deadline, "{what}: {lines:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_tui_shows_a_held_connection_and_its_keys_allow_once_deny_and_allow_always() {
    if !tui_prerequisites() || !prerequisites(&["curl"]) {
        return;
    }
    let world = TuiWorld::new();
    let dns = DnsStub::start(&[("upstream.test", [127, 0, 0, 2])]);
    let upstream = Upstream::start("127.0.0.2");
    let rule = format!("upstream.test:{}", upstream.port);
    let notified = world.path("notified");
    let command = format!(
        "printf '%s %s %s\\n' \"$SANDBOX_NAME\" \"$SANDBOX_STATE\" \"$SANDBOX_REASON\" >> '{}'",
        notified.display()
    );
    world.write_config(&format!(
        "[notify]\nbell = true\ncommand = [\"sh\", \"-c\", {}]\n\
         [egress]\ndefaults = false\nallow = []\nresolver = \"127.0.0.1:{}\"\n\
         internal_allowed = [\"127.0.0.2\"]\nhold_seconds = 30\n",
        toml_string(&command),
        dns.port
    ));
    let dir = world.project("net1");
    let codes = dir.join(".codes");
    let script = format!(
        "for i in 1 2 3 4; do echo $(curl -sS -m 40 -o /dev/null -w '%{{http_code}}' http://{rule}/$i) >> '{}'; done; exec sleep 600",
        codes.display()
    );
    let out = world.deck(&[
        "create",
        &dir.to_string_lossy(),
        "--name",
        "net1",
        "--network",
        "proxy",
        "--shell",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "create net1: {}", stderr(&out));

    world.start_tui();
    let held = |s: &str| row_says(s, "net1", "net? 1");
    world.wait_for("the held connection on net1's row", held);
    // Let the engine read it more than once: still one notification.
    std::thread::sleep(Duration::from_secs(2));
    let told = lines_of(&notified);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with("net1 egress-held ") && told[0].contains(&rule),
        "{told:?}"
    );
    world.keys(&["Tab"]);
    world.keys(&["4"]);
    let screen = world.wait_for("the Info tab listing it", |s| s.contains("held"));
    assert!(screen.contains(&rule), "{screen}");
    world.keys(&["BTab"]);

    world.keys(&["v"]);
    assert_eq!(wait_lines(&codes, 1, "allowed once")[0], "200");
    // Once was that connection only: the next one waits again, and x denies it.
    world.wait_for("the next connection held", held);
    world.keys(&["x"]);
    assert_eq!(wait_lines(&codes, 2, "denied")[1], "403");
    world.wait_for("the third connection held", held);
    world.keys(&["w"]);
    let codes_now = wait_lines(&codes, 4, "allowed always, then unasked");
    assert_eq!(codes_now[2..], ["200", "200"], "{codes_now:?}");
    let record = world.deck(&["--json", "show", "net1"]);
    let record = String::from_utf8_lossy(&record.stdout).to_string();
    assert!(
        record.contains(&rule),
        "always went in the record: {record}"
    );
    world.wait_for("the row without a held connection", |s| {
        row_says(s, "net1", "running") && !row_says(s, "net1", "net?")
    });
    // One notification per held connection, three in all.
    assert_eq!(lines_of(&notified).len(), 3, "{:?}", lines_of(&notified));
    assert_eq!(upstream.heads().len(), 3);
    // The answers went over the API, each in its audit log.
    let audit = std::fs::read_to_string(world.path("state/sandbox-deck/api-audit.log"))
        .expect("the audit log");
    assert_eq!(audit.matches("egress_answer").count(), 3, "{audit}");
    world.quit();
    let out = world.deck(&["rm", "--force", "net1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
