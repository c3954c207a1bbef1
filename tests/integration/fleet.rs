//! `sandbox-deck mirror a b`: two hosts in one table. Each host is a world of its own (XDG
//! dirs, registry, engine) behind its own real sshd; the laptop runs the real binary in a
//! real tmux. Actions reach the row's host only; a host that goes away greys its rows while
//! the other stays usable, and its rows come back by themselves.

use crate::common::sshd::{RemoteDeck, SshClient, Sshd, ssh_prerequisites};
use crate::common::tui::*;

/// The row of `name` on `host`: the state glyph, NAME, then HOST.
fn host_row<'a>(screen: &'a str, name: &str, host: &str) -> Option<&'a str> {
    screen.lines().find(|line| {
        let mut words = line.trim_start_matches('│').split_whitespace();
        words.next().is_some_and(|glyph| glyph.chars().count() == 1)
            && words.next() == Some(name)
            && words.next() == Some(host)
    })
}

fn host_row_says(screen: &str, name: &str, host: &str, state: &str) -> bool {
    host_row(screen, name, host).is_some_and(|line| line.contains(state))
}

fn create(world: &TuiWorld, name: &str) {
    let dir = world.project(name);
    let out = world.deck(&["create", &dir.to_string_lossy(), "--name", name, "--shell"]);
    assert!(out.status.success(), "create {name}: {}", stderr(&out));
}

/// Shows only `host`'s rows and selects the first.
fn filter_host(laptop: &TuiWorld, host: &str) {
    laptop.keys(&["/"]);
    laptop.keys(&["C-u"]);
    laptop.type_text(&format!("host:{host}"));
    laptop.keys(&["Enter", "g"]);
}

#[test]
fn two_hosts_share_one_table_each_action_reaches_its_host_and_a_lost_host_comes_back() {
    if !tui_prerequisites() || !ssh_prerequisites() {
        return;
    }
    let a = TuiWorld::new();
    let b = TuiWorld::new();
    let Some(mut sshd_a) = Sshd::start(&a, "deck-a", RemoteDeck::Real) else {
        return;
    };
    let Some(sshd_b) = Sshd::start(&b, "deck-b", RemoteDeck::Real) else {
        return;
    };
    // A third host that is down from the start: nothing answers on its port.
    let c = TuiWorld::new();
    let Some(mut sshd_c) = Sshd::start(&c, "deck-c", RemoteDeck::Real) else {
        return;
    };
    sshd_c.stop();
    let laptop = TuiWorld::new();
    SshClient::new(&laptop, &[&sshd_a, &sshd_b, &sshd_c]).configure(&laptop);
    // The same name on both hosts, and one of b's own.
    create(&a, "x");
    create(&b, "x");
    create(&b, "y");

    laptop.start_tui_in((120, 30), &[], &["mirror", "deck-a", "deck-b", "deck-c"]);
    let both = laptop.wait_for("both hosts' rows", |s| {
        host_row_says(s, "x", "deck-a", "running")
            && host_row_says(s, "x", "deck-b", "running")
            && host_row_says(s, "y", "deck-b", "running")
    });
    assert!(both.contains("HOST"), "{both}");
    assert!(both.contains("Sandboxes 3/3"), "{both}");
    assert!(
        both.contains("deck-a ● 1") && both.contains("deck-b ● 2"),
        "the header counts per host: {both}"
    );
    laptop.wait_for("the host that is down, with why", |s| {
        s.contains("deck-c ✕ 0 down (")
    });

    // Stop x on b: b's x stops, a's x of the same name runs on.
    filter_host(&laptop, "deck-b");
    laptop.wait_for("b's rows alone", |s| {
        s.contains("Sandboxes 2/3") && host_row(s, "x", "deck-a").is_none()
    });
    laptop.keys(&["s"]);
    laptop.wait_for("the stop question", |s| {
        s.contains("Stop sandbox x@deck-b?")
    });
    laptop.keys(&["y"]);
    laptop.wait_for("b's x stopped", |s| {
        host_row_says(s, "x", "deck-b", "stopped")
    });
    assert_eq!(b.show("x")["state"], "stopped");
    assert_eq!(a.show("x")["state"], "running", "a's x is not b's");

    // Create on b through the form: the dir names its host, completed by b's engine.
    let z = b.project("zproj");
    laptop.keys(&["n"]);
    laptop.wait_for("the form on the first host", |s| s.contains("deck-a:/"));
    laptop.keys(&["BSpace"; 8]);
    let typed = format!("deck-b:{}", z.to_string_lossy());
    laptop.type_text(typed.trim_end_matches("oj"));
    laptop.keys(&["Tab"]);
    laptop.wait_for("the dir completed by b", |s| s.contains("projects/zproj/"));
    laptop.keys(&["Up", "Space"]);
    laptop.wait_for("shell chosen", |s| s.contains("(•) shell"));
    laptop.keys(&["Enter"]);
    laptop.wait_for("zproj running on b", |s| {
        host_row_says(s, "zproj", "deck-b", "running")
    });
    let mut on_b = b.registered();
    on_b.sort();
    assert_eq!(on_b, ["x", "y", "zproj"]);
    assert_eq!(a.registered(), ["x"], "nothing made on a");

    // Enter on b's zproj attaches through `ssh -t deck-b` (a has no zproj); C-q comes back.
    filter_host(&laptop, "deck-b");
    laptop.keys(&["G"]);
    laptop.wait_for("zproj selected", |s| s.contains("┌ zproj@deck-b"));
    laptop.keys(&["Enter"]);
    laptop.wait_for("b's session", |s| {
        s.contains("C-q: back to sandbox-deck") && !s.contains("Sandboxes ")
    });
    laptop.type_text("echo attached-$((6*7))");
    laptop.keys(&["Enter"]);
    laptop.wait_for("the command's output", |s| s.contains("attached-42"));
    laptop.keys(&["C-q"]);
    laptop.wait_for("the table again", |s| s.contains("Sandboxes "));
    laptop.keys(&["/", "C-u", "Enter"]);

    // a goes away (its sshd, sessions and engine ended by pid): its row greys, b stays
    // usable.
    sshd_a.stop();
    let lost = laptop.wait_for("a's row greyed", |s| {
        host_row_says(s, "x", "deck-a", "offline") && s.contains("deck-a ✕")
    });
    assert!(host_row_says(&lost, "y", "deck-b", "running"), "{lost}");
    filter_host(&laptop, "deck-b");
    laptop.wait_for("b's rows alone", |s| host_row(s, "x", "deck-a").is_none());
    laptop.keys(&["j", "s"]);
    laptop.wait_for("the stop question for y", |s| {
        s.contains("Stop sandbox y@deck-b?")
    });
    laptop.keys(&["y"]);
    laptop.wait_for("y stopped on b while a is down", |s| {
        host_row_says(s, "y", "deck-b", "stopped")
    });
    assert_eq!(b.show("y")["state"], "stopped");

    // A change made on a meanwhile shows once it is back, with no key pressed.
    let out = a.deck(&["stop", "x"]);
    assert!(out.status.success(), "stop x on a: {}", stderr(&out));
    laptop.keys(&["/", "C-u", "Enter"]);
    sshd_a.restart();
    laptop.wait_for("a's row back, as it is now", |s| {
        host_row_says(s, "x", "deck-a", "stopped") && s.contains("deck-a ● 1")
    });
    laptop.quit();
}
