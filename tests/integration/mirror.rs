//! `sandbox-deck mirror HOST` end to end: the real binary in a real tmux on the "laptop",
//! the host's engine behind a real sshd (`common::sshd`), each side with its own XDG dirs.

use crate::common::sshd::{RemoteDeck, SshClient, Sshd, ssh_prerequisites};
use crate::common::tui::*;
use crate::common::{Guarded, SpawnGuarded};

/// The row of `name` without what moves between two looks (the uptime column).
fn steady_row(screen: &str, name: &str) -> Option<String> {
    let line = row(screen, name)?;
    Some(
        line.split_whitespace()
            .filter(|w| !w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[test]
fn the_mirror_shows_the_hosts_table_runs_every_action_there_and_survives_the_host_going_away() {
    if !tui_prerequisites() || !ssh_prerequisites() {
        return;
    }
    let host = TuiWorld::new();
    let Some(mut sshd) = Sshd::start(&host, "deck-a", RemoteDeck::Real) else {
        return;
    };
    let laptop = TuiWorld::new();
    let ssh = SshClient::new(&laptop, &[&sshd]);
    ssh.configure(&laptop);
    let x = host.project("x");
    let out = host.deck(&["create", &x.to_string_lossy(), "--name", "x", "--shell"]);
    assert!(out.status.success(), "create x: {}", stderr(&out));

    // The host's own TUI and the mirror on the laptop show the same row.
    host.start_tui();
    let here = host.wait_for("x on the host", |s| row_says(s, "x", "running"));
    laptop.start_tui_with(&["mirror", "deck-a"]);
    let there = laptop.wait_for("x in the mirror", |s| row_says(s, "x", "running"));
    assert_eq!(
        steady_row(&there, "x"),
        steady_row(&here, "x"),
        "{there}\n{here}"
    );
    assert!(there.contains("Sandboxes 1/1"), "{there}");
    host.quit();
    assert!(laptop.registered().is_empty(), "nothing on the laptop");

    // Stop, through the mirror, on the host.
    laptop.keys(&["s"]);
    laptop.wait_for("the stop question", |s| s.contains("Stop sandbox x?"));
    laptop.keys(&["y"]);
    laptop.wait_for("x stopped", |s| row_says(s, "x", "stopped"));
    assert_eq!(host.registered(), ["x"]);

    // Create: the path is the host's, completed by the host's engine.
    let y = host.project("yproj");
    laptop.keys(&["n"]);
    laptop.wait_for("the form", |s| s.contains("New sandbox"));
    // It starts at the host's root, not at the laptop's working dir.
    let typed = y.to_string_lossy();
    laptop.type_text(typed.trim_start_matches('/').trim_end_matches("oj"));
    laptop.keys(&["Tab"]);
    laptop.wait_for("the dir completed by the host", |s| {
        s.contains("projects/yproj/")
    });
    laptop.keys(&["Up", "Space"]);
    laptop.wait_for("shell chosen", |s| s.contains("(•) shell"));
    laptop.keys(&["Enter"]);
    laptop.wait_for("yproj running", |s| row_says(s, "yproj", "running"));
    let mut registered = host.registered();
    registered.sort();
    assert_eq!(registered, ["x", "yproj"]);

    // Enter attaches through `ssh -t`: the host's tmux status line; C-q comes back.
    laptop.keys(&["Enter"]);
    laptop.wait_for("the remote session", |s| {
        s.contains("C-q: back to sandbox-deck") && !s.contains("Sandboxes 2/2")
    });
    laptop.type_text("echo mirrored-$((6*7))");
    laptop.keys(&["Enter"]);
    laptop.wait_for("the command's output", |s| s.contains("mirrored-42"));
    laptop.keys(&["C-q"]);
    laptop.wait_for("the table again", |s| s.contains("Sandboxes 2/2"));

    // Delete.
    laptop.keys(&["d"]);
    laptop.wait_for("the confirm dialog", |s| {
        s.contains("Delete sandbox yproj?")
    });
    laptop.keys(&["y"]);
    laptop.wait_for("yproj gone", |s| {
        row(s, "yproj").is_none() && s.contains("Sandboxes 1/1")
    });
    assert_eq!(host.registered(), ["x"]);

    // The host goes away (sshd, its sessions and the engine): the mirror says so and stays
    // usable; a change made there meanwhile shows once it is back, with no key pressed.
    sshd.stop();
    laptop.wait_for("the lost host reported", |s| s.contains("deck-a: "));
    laptop.keys(&["?"]);
    laptop.wait_for("the help still opens", |s| s.contains("Keys (Esc closes)"));
    laptop.keys(&["Escape"]);
    let out = host.deck(&["start", "x"]);
    assert!(out.status.success(), "start x: {}", stderr(&out));
    sshd.restart();
    laptop.wait_for("x running, seen through the new connection", |s| {
        row_says(s, "x", "running")
    });
    laptop.quit();
    assert_eq!(
        host.show("x")["state"],
        "running",
        "quitting leaves it running"
    );
}

const TOKEN: &str = "6f1c0e2a9b8d7c4e5f3a2b1c0d9e8f7a";

/// A token file of `world`'s, mode 0600.
fn token_file(world: &TuiWorld, name: &str, token: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = world.path(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

/// `serve --listen 127.0.0.1:0` in `world`, and the address it printed.
fn serve_listening(world: &TuiWorld) -> (Guarded, String) {
    use std::io::BufRead;
    let file = token_file(world, "api.token", TOKEN);
    let mut process = world
        .command()
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file", &file])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn_guarded();
    let stderr = process.stderr.take().unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    loop {
        let line = said.recv_timeout(WAIT).expect("the engine's TCP address");
        if let Some(rest) = line.strip_prefix("sandbox-deck: and on ") {
            return (process, rest.split(' ').next().unwrap().to_owned());
        }
    }
}

#[test]
fn a_mirror_through_a_tunnels_ws_end_takes_the_token_and_refuses_a_wrong_one() {
    if !tui_prerequisites() {
        return;
    }
    let host = TuiWorld::new();
    let x = host.project("x");
    let out = host.deck(&["create", &x.to_string_lossy(), "--name", "x", "--shell"]);
    assert!(out.status.success(), "create x: {}", stderr(&out));
    let (_engine, address) = serve_listening(&host);
    let url = format!("ws://{address}");
    let laptop = TuiWorld::new();

    // Refused before the screen is taken: a wrong token (the listener's 401), no token, and
    // an address that is no tunnel's loopback end.
    let wrong = token_file(&laptop, "wrong.token", &TOKEN.replace('6', "7"));
    let out = laptop.deck(&["mirror", &url, "--token-file", &wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = laptop.deck(&["mirror", &url]);
    assert!(
        stderr(&out).contains("needs --token-file"),
        "{}",
        stderr(&out)
    );
    let out = laptop.deck(&["mirror", "ws://10.1.2.3:7420", "--token-file", &wrong]);
    assert!(
        stderr(&out).contains("not a loopback address"),
        "{}",
        stderr(&out)
    );

    let right = token_file(&laptop, "api.token", TOKEN);
    laptop.start_tui_with(&["mirror", &url, "--token-file", &right]);
    laptop.wait_for("x in the mirror", |s| row_says(s, "x", "running"));
    // Attaching needs the host's terminal, which a TCP tunnel does not reach: said, not done.
    laptop.keys(&["Enter"]);
    laptop.wait_for("why attach is not possible", |s| {
        s.contains("not the sandbox's terminal")
    });
    laptop.keys(&["s"]);
    laptop.wait_for("the stop question", |s| s.contains("Stop sandbox x?"));
    laptop.keys(&["y"]);
    laptop.wait_for("x stopped", |s| row_says(s, "x", "stopped"));
    laptop.quit();
    assert_eq!(host.show("x")["state"], "stopped");
}
