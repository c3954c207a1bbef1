//! The attacker's view of `--network proxy`, as root and as an unprivileged user (`nobody`
//! through setpriv: the path real users take, bwrap in an unprivileged user namespace and the
//! proxy running as that user too). Each attack is run from inside a sandbox; the same case
//! run on the host as the same user is its control: there it works.

use super::*;

use serde_json::{Value, json};
use std::process::{Command, Stdio};

/// Names on the allowlist (`*.rebind.test`) whose addresses point inward, in each form, with
/// the reason the proxy gives. `mixed` has a good address (127.0.0.2, let through by the
/// test's `internal_allowed`) beside a bad one.
const REBINDS: &[(&str, &str, &str)] = &[
    ("v4.rebind.test", "127.0.0.1", "loopback"),
    (
        "ll.rebind.test",
        "169.254.169.254",
        "link-local or cloud metadata",
    ),
    ("private.rebind.test", "10.1.2.3", "private (10/8)"),
    ("mapped.rebind.test", "::ffff:127.0.0.1", "IPv4-mapped"),
    ("sixtofour.rebind.test", "2002:7f00:1::1", "6to4"),
    ("nat64.rebind.test", "64:ff9b::7f00:1", "NAT64"),
    ("v6loop.rebind.test", "::1", "loopback (::1)"),
    ("mixed.rebind.test", "::ffff:127.0.0.1", "IPv4-mapped"),
];

/// Whether the test runs for this user: tools there, and for `nobody` a root caller.
fn ready(nobody: bool, tools: &[&str]) -> bool {
    prerequisites(tools) && (!nobody || can_drop_to_nobody())
}

fn who(nobody: bool) -> &'static str {
    if nobody { "nobody" } else { "root" }
}

/// Writes the probe and `cases` into the project; returns the probe's argv.
fn probe_files(e: &Egress, cases: &Value) -> (PathBuf, PathBuf) {
    let tag = unique();
    let probe = e.project.join(format!(".attack-probe-{tag}.py"));
    std::fs::write(&probe, PROBE).unwrap();
    let file = e.project.join(format!(".attack-cases-{tag}.json"));
    std::fs::write(&file, cases.to_string()).unwrap();
    (probe, file)
}

/// The probe over `cases` on the host, as the world's user: the controls.
fn on_host(e: &Egress, cases: &Value) -> Report {
    let (probe, file) = probe_files(e, cases);
    let mut command = Command::new("python3");
    // The system's python, as inside: a PATH of root's (pyenv shims) is not nobody's to run.
    command
        .arg(&probe)
        .arg(&file)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    let mut command = if e.nobody {
        nobody_command(&command)
    } else {
        command
    };
    let out = command.output().unwrap();
    Report {
        text: String::from_utf8_lossy(&out.stdout).to_string()
            + "\n--stderr--\n"
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// `before` (sh), then the probe over `cases`, inside a proxy-mode sandbox; its output and
/// the decision log as it stood when the probe ended.
fn inside(e: &Egress, before: &str, cases: &Value) -> (Report, String) {
    let (probe, file) = probe_files(e, cases);
    let mut log = String::new();
    let text = e.launch_then(
        &[],
        &format!(
            "{before}\npython3 '{}' '{}'",
            probe.display(),
            file.display()
        ),
        || log = e.decisions(),
    );
    (Report { text }, log)
}

fn unreachable(got: &str) -> bool {
    matches!(got, "ENETUNREACH" | "EHOSTUNREACH")
}

fn refused(got: &str) -> bool {
    got == "403" || got == "400"
}

// ---------------------------------------------------------------------------------------
// Around the proxy, through it, and inward
// ---------------------------------------------------------------------------------------

/// EGR-01..05 from the attacker's side: no route out (public IPv4 and IPv6, metadata), no
/// DNS (the host's resolver stub on its loopback, `getent`), the host's loopback services
/// neither directly nor through the proxy, a denied name refused by CONNECT and plain HTTP
/// before any DNS query, and allowed names that resolve inward in every form refused for
/// their address. Controls: from the host, as the same user, each direct case works; inside,
/// an allowed name passes both ways.
fn network_attacks(nobody: bool) {
    if !ready(nobody, TOOLS) {
        return;
    }
    let mut dns: Vec<(&str, IpAddr)> = REBINDS
        .iter()
        .map(|(name, address, _)| (*name, address.parse().unwrap()))
        .collect();
    dns.push(("mixed.rebind.test", [127, 0, 0, 2].into()));
    let e = Egress::new_as("egress-attacker-net", nobody, &dns);
    let (i, p, d) = (e.inward_port(), e.port(), e.dns.port);
    e.write_config(&[format!("*.rebind.test:{i}")]);
    let direct = json!([
        ["route", "route_v4", "1.1.1.1", 53],
        ["route", "route_v6", "2606:4700:4700::1111", 53],
        ["route", "route_metadata", "169.254.169.254", 80],
        ["udp", "dns_stub", "127.0.0.1", d],
        ["tcp", "host_loopback", "127.0.0.1", i],
        ["tcp6", "host_loopback_mapped", "::ffff:127.0.0.1", i],
        ["tcp", "host_upstream", "127.0.0.2", p],
    ]);
    let plain = |target: &str, path: &str| {
        format!("GET http://{target}{path} HTTP/1.1\r\nHost: {target}\r\n\r\n")
    };
    let mut through: Vec<(String, String)> = vec![
        ("denied_connect".into(), connect(&format!("denied.test:{p}"))),
        ("denied_plain".into(), plain(&format!("denied.test:{p}"), "/")),
        ("loopback_connect".into(), connect(&format!("127.0.0.1:{i}"))),
        ("loopback_plain".into(), plain(&format!("127.0.0.1:{i}"), "/")),
        (
            "mapped_literal".into(),
            connect(&format!("[::ffff:127.0.0.1]:{i}")),
        ),
        (
            "sixtofour_literal".into(),
            connect(&format!("[2002:7f00:1::1]:{i}")),
        ),
        (
            "nat64_literal".into(),
            connect(&format!("[64:ff9b::7f00:1]:{i}")),
        ),
        (
            "rebind_plain".into(),
            plain(&format!("v4.rebind.test:{i}"), "/"),
        ),
    ];
    for (name, _, _) in REBINDS {
        through.push((format!("rebind_{name}"), connect(&format!("{name}:{i}"))));
    }
    let mut cases: Vec<Value> = direct.as_array().unwrap().clone();
    for (label, request) in &through {
        cases.push(json!(["raw", label, request, "x"]));
    }
    let up = format!("upstream.test:{p}");
    cases.push(json!(["raw", "allowed_connect", connect(&up), "upstream.test"]));
    cases.push(json!(["raw", "allowed_plain", plain(&up, "/plain")]));
    let (r, log) = inside(
        &e,
        "echo uid=$(id -u)\ngetent hosts example.com >/dev/null && echo getent=resolved || echo getent=no",
        &Value::Array(cases),
    );
    let user = who(nobody);
    if nobody {
        r.expect("uid", "65534");
    }
    for label in ["route_v4", "route_v6", "route_metadata"] {
        assert!(unreachable(&r.get(label)), "{user} {label}:\n{}", r.text);
    }
    assert_ne!(r.get("dns_stub"), "answered", "{user}:\n{}", r.text);
    r.expect("getent", "no");
    for label in ["host_loopback", "host_loopback_mapped", "host_upstream"] {
        r.expect(label, "ECONNREFUSED");
    }
    for (label, _) in &through {
        assert!(refused(&r.get(label)), "{user} {label}:\n{}", r.text);
    }
    // An allowed name that points inward is refused for its address, after resolving.
    for (name, address, reason) in REBINDS {
        let said = format!("{name}:{i} resolves to {address}: {reason}");
        assert!(log.contains(&said), "{user}: no {said:?} in\n{log}");
    }
    let asked = e.dns.asked();
    assert!(
        !asked
            .iter()
            .any(|n| n.starts_with("denied") || n == "example.com"),
        "{user}: a denied name reached the resolver: {asked:?}"
    );
    // Controls inside: the allowed name passes both ways, and only those two reached it.
    r.expect("allowed_connect", "200");
    r.expect("allowed_connect.tunnel", "upstream-ok");
    r.expect("allowed_plain", "200");
    assert_eq!(e.upstream.heads().len(), 2, "{:?}", e.upstream.heads());
    assert!(asked.iter().any(|n| n == "mapped.rebind.test"), "{asked:?}");
    // Controls on the host, as the same user: every direct case works there.
    let host = on_host(&e, &direct);
    for label in [
        "route_v4",
        "route_metadata",
        "host_loopback",
        "host_loopback_mapped",
        "host_upstream",
    ] {
        host.expect(label, "ok");
    }
    host.expect("dns_stub", "answered");
}

#[test]
fn network_attacks_fail_as_root() {
    network_attacks(false);
}

#[test]
fn network_attacks_fail_as_nobody() {
    network_attacks(true);
}
