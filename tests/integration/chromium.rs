//! The real Chromium inside managed sandboxes: `chromium` on PATH is our wrapper, the browser
//! runs with its own sandbox on (renderers under seccomp-bpf in their own user, pid and
//! network namespaces), draws a window that fills the sandbox's display, reads the managed
//! policy that forces Claude in Chrome, and two sandboxes of one project get two browsers.
//! Everything started is ended by pid (World's drop, through `rm --force`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use sandbox_deck::capture::Frame;
use serde_json::Value;

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap", "chromium"];
/// Where Chromium reads mandatory policies, and the file we provide there.
const POLICY_FILE: &str = "/etc/chromium/policies/managed/sandbox-deck.json";
const CLAUDE_IN_CHROME: &str = "fcoeoabgfenejglbffodgkkbkcdhcgfn";
/// A closed network here: nothing in the background may wait for it.
const OFFLINE_FLAGS: &[&str] = &[
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--vmodule=config_dir_policy_loader=1",
];

/// The payload: records what the sandbox shows (which `chromium`, the policy file), then
/// runs `chromium` from PATH with its log in the project. The page is one solid colour.
const PAYLOAD: &str = "command -v chromium > which; cat \"$1\" > policy.json; shift; \
                       exec chromium \"$@\" 2> chromium.log";

fn page(rgb: [u8; 3]) -> String {
    let [r, g, b] = rgb;
    format!("data:text/html,<body style=\"margin:0;background:rgb({r},{g},{b})\">")
}

/// `create DIR --name NAME --shell -- sh -c PAYLOAD …`: a managed sandbox whose payload is
/// Chromium on a page of colour `rgb`.
fn create_browser(
    run: &dyn Fn(&[&str]) -> Command,
    project: &Path,
    name: &str,
    rgb: [u8; 3],
) -> Value {
    create_browser_with(run, project, name, rgb, &[])
}

/// The same with extra `create` options (before `--shell`).
fn create_browser_with(
    run: &dyn Fn(&[&str]) -> Command,
    project: &Path,
    name: &str,
    rgb: [u8; 3],
    options: &[&str],
) -> Value {
    let url = page(rgb);
    let mut args = vec![
        "--json",
        "create",
        project.to_str().unwrap(),
        "--name",
        name,
    ];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--shell", "--", "sh", "-c", PAYLOAD, "sh", POLICY_FILE]);
    args.extend_from_slice(OFFLINE_FLAGS);
    args.push(&url);
    let out = succeed(&mut run(&args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A process's arguments. Chromium rewrites its children's titles into one string, so the
/// NUL-separated arguments are split on spaces as well (good enough for flag names).
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0 || *b == b' ')
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn namespace(pid: u32, ns: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()
}

fn status_field(pid: u32, field: &str) -> String {
    read(Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The browser processes of a sandbox: every Chromium under its tmux pane's process tree.
struct Browser {
    main: u32,
    renderers: Vec<u32>,
    all: Vec<u32>,
}

fn browser_of(record: &Value) -> Option<Browser> {
    let launcher = record["launcher"]["pid"].as_u64()? as u32;
    let all: Vec<u32> = descendants(launcher)
        .into_iter()
        .filter(|p| {
            cmdline(*p)
                .first()
                .is_some_and(|a| a.ends_with("/chromium"))
        })
        .collect();
    let is_type = |p: &u32, t: &str| cmdline(*p).iter().any(|a| a == &format!("--type={t}"));
    let main = *all
        .iter()
        .find(|p| !cmdline(**p).iter().any(|a| a.starts_with("--type=")))?;
    let renderers: Vec<u32> = all
        .iter()
        .copied()
        .filter(|p| is_type(p, "renderer"))
        .collect();
    (!renderers.is_empty()).then_some(Browser {
        main,
        renderers,
        all,
    })
}

/// Waits until the sandbox's display shows `rgb` over most of the screen; returns the frame.
fn wait_for_colour(
    run: &dyn Fn(&[&str]) -> Command,
    name: &str,
    rgb: [u8; 3],
    project: &Path,
) -> Frame {
    let mut last = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        let out = run(&["screenshot", name, "-o", "-"]).output().unwrap();
        if out.status.success()
            && let Ok(frame) = Frame::from_png(&out.stdout)
        {
            if share_of(&frame, rgb) > 0.8 {
                return frame;
            }
            last = Some(frame);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "{name}'s display never showed the page (last share {:?}); chromium.log:\n{}",
        last.map(|f| share_of(&f, rgb)),
        read(&project.join("chromium.log"))
    );
}

/// The share of the frame's pixels that are `rgb`.
fn share_of(frame: &Frame, rgb: [u8; 3]) -> f64 {
    let matching = frame
        .rgb
        .chunks_exact(3)
        .filter(|p| *p == rgb.as_slice())
        .count();
    matching as f64 / (frame.width * frame.height) as f64
}

/// One browser, checked from the host: started through the wrapper, its own sandbox on,
/// its window over the whole display, the policy read.
fn a_browser_runs_sandboxed_and_fills_the_display(
    run: &dyn Fn(&[&str]) -> Command,
    project: &Path,
) {
    let colour = [0, 128, 255];
    let record = create_browser(run, project, "browser", colour);
    let frame = wait_for_colour(run, "browser", colour, project);
    // The window fills the screen: the page reaches the far corner of the display, and it
    // starts right under Chromium's toolbar (88 pixels), with no info bar in between (the
    // "unsupported command-line flag" bar of --no-sandbox covers y 88..143).
    assert_eq!((frame.width, frame.height), (1280, 800));
    assert_eq!(frame.pixel(frame.width - 2, frame.height - 2), colour);
    assert_eq!(frame.pixel(1, 95), colour);
    assert_eq!(frame.pixel(640, 115), colour);

    // `chromium` inside is our wrapper, and the policy is where Chromium reads it.
    assert_eq!(
        read(&project.join("which")).trim(),
        "/run/sandbox-deck/bin/chromium"
    );
    let policy = read(&project.join("policy.json"));
    assert!(
        policy.contains(CLAUDE_IN_CHROME) && policy.contains("ExtensionInstallForcelist"),
        "{policy}"
    );
    // …and Chromium loaded it (its policy loader logs each file it reads).
    let log = read(&project.join("chromium.log"));
    assert!(
        log.contains(&format!("Found mandatory policy file: {POLICY_FILE}")),
        "{log}"
    );
    // Nothing was written to the host's /etc.
    assert!(!Path::new(POLICY_FILE).exists());

    // Chromium's own sandbox: no --no-sandbox anywhere, the renderers under seccomp-bpf in
    // user and pid namespaces of their own (a renderer of an unsandboxed Chromium shares
    // the browser's).
    assert_eq!(record["state"], "running");
    let browser = browser_of(&show(run, "browser")).expect("the browser and a renderer run");
    for pid in &browser.all {
        assert!(
            !cmdline(*pid).iter().any(|a| a == "--no-sandbox"),
            "{:?}",
            cmdline(*pid)
        );
    }
    for renderer in &browser.renderers {
        assert_eq!(status_field(*renderer, "Seccomp"), "2");
        assert_eq!(status_field(*renderer, "NoNewPrivs"), "1");
        for ns in ["user", "pid", "net"] {
            assert_ne!(
                namespace(*renderer, ns),
                namespace(browser.main, ns),
                "the renderer shares the browser's {ns} namespace"
            );
        }
    }
    // No D-Bus session reaches the browser.
    let environ = std::fs::read(format!("/proc/{}/environ", browser.main)).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("DBUS_SESSION_BUS_ADDRESS"));
    succeed(&mut run(&["rm", "--force", "browser"]));
    for pid in browser.all {
        wait_for(
            "the browser to end with its sandbox",
            Duration::from_secs(5),
            || !is_running(pid),
        );
    }
}

fn show(run: &dyn Fn(&[&str]) -> Command, name: &str) -> Value {
    serde_json::from_slice(&succeed(&mut run(&["--json", "show", name])).stdout).unwrap()
}

#[test]
fn chromium_runs_with_its_own_sandbox_on_the_sandboxs_display() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("browser");
    let run = |args: &[&str]| {
        let mut c = world.command();
        c.args(args);
        c
    };
    a_browser_runs_sandboxed_and_fills_the_display(&run, &project);
}

/// Users run unprivileged; CI is root (where the sandbox maps root to another uid inside,
/// as Chromium refuses to sandbox itself as uid 0). This runs the same as `nobody`.
#[test]
fn chromium_runs_with_its_own_sandbox_for_an_unprivileged_user() {
    if !prerequisites(TOOLS) || !prerequisites(&["setpriv"]) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    let world = World::new();
    let project = world.project("browser");
    let as_nobody = world.as_nobody();
    a_browser_runs_sandboxed_and_fills_the_display(&as_nobody, &project);
}

/// Two sandboxes of one project: two profiles, two browsers, each on its own display. With
/// one shared profile the second Chromium hands its URL to the first and exits, and its
/// display stays black.
#[test]
fn two_sandboxes_of_one_project_have_separate_browsers() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let run = |args: &[&str]| {
        let mut c = world.command();
        c.args(args);
        c
    };
    let project = world.project("shared");
    let first = create_browser(&run, &project, "first", [255, 0, 0]);
    let second = create_browser(&run, &project, "second", [0, 160, 0]);
    assert_ne!(first["display"], second["display"]);
    wait_for_colour(&run, "first", [255, 0, 0], &project);
    wait_for_colour(&run, "second", [0, 160, 0], &project);
    let profile = |record: &Value| {
        world
            .root
            .path()
            .join("state/sandbox-deck/sandboxes")
            .join(record["id"].as_str().unwrap())
            .join("chromium")
    };
    for record in [&first, &second] {
        assert!(
            profile(record).join("Default").is_dir(),
            "{} has its own profile",
            record["name"]
        );
        assert!(browser_of(&show(&run, record["name"].as_str().unwrap())).is_some());
    }
    // `rm` takes the sandbox's browser profile with it.
    succeed(&mut run(&["rm", "--force", "first"]));
    assert!(!profile(&first).exists());
    assert!(profile(&second).exists());
}

/// `doctor` says whether sandboxes get a browser, and how to install one.
#[test]
fn doctor_checks_chromium_and_says_how_to_install_it() {
    if !prerequisites(&["chromium"]) {
        return;
    }
    let chromium_check = |world: &World| {
        let out = world.run(&["--json", "doctor"]);
        let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "chromium")
            .cloned()
            .expect("a chromium check")
    };
    let world = World::new();
    let found = chromium_check(&world);
    assert_eq!(found["ok"], true, "{found}");
    assert!(found["detail"].as_str().unwrap().contains("Chromium"));
    // Control: without chromium on PATH the check fails and names the package.
    let mut bare = World::new();
    let empty = bare.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    bare.env
        .push(("PATH".into(), empty.to_str().unwrap().to_owned()));
    let missing = chromium_check(&bare);
    assert_eq!(missing["ok"], false, "{missing}");
    assert!(
        missing["fix"]
            .as_str()
            .unwrap()
            .contains("apt-get install chromium"),
        "{missing}"
    );
}

/// Control for the policy checks above: a profile that forces no extension, in a sandbox
/// without the proxy (`--network none`), gets no policy file, and Chromium logs no policy
/// read. (With the proxy the policy fixes it: see the allowlist test below.)
#[test]
fn a_profile_without_extensions_gets_no_policy() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("nopolicy");
    let mut profile = sandbox_deck::spec::Profile::host();
    profile.chromium_extensions.clear();
    let file = world.path("profile.json");
    std::fs::write(&file, serde_json::to_vec(&profile).unwrap()).unwrap();
    let run = |args: &[&str]| {
        let mut c = world.command();
        c.args(args);
        c
    };
    let colour = [200, 100, 0];
    create_browser_with(
        &run,
        &project,
        "nopolicy",
        colour,
        &["--profile", file.to_str().unwrap(), "--network", "none"],
    );
    wait_for_colour(&run, "nopolicy", colour, &project);
    assert_eq!(read(&project.join("policy.json")), "");
    assert!(!read(&project.join("chromium.log")).contains("Found mandatory policy file"));
}

/// The browser under the sandbox's allowlist (`--network proxy`). The payload drops every
/// proxy variable (the wrapper's `SANDBOX_DECK_PROXY` too) and starts Chromium with
/// `--no-proxy-server`, as an agent could, so only the managed policy can point it at the
/// proxy, and with no route inside nothing loads without the proxy.
const DIRECT_PAYLOAD: &str = "cat \"$1\" > policy.json; shift; \
    unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy SANDBOX_DECK_PROXY; \
    exec chromium --no-proxy-server \"$@\" 2> chromium.log";

/// An HTTP server on 127.0.0.2 (standing for a public one) whose every answer is a page of
/// one colour; it keeps each request's head.
struct ColourServer {
    port: u16,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ColourServer {
    fn start(rgb: [u8; 3]) -> ColourServer {
        let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = heads.clone();
        let [r, g, b] = rgb;
        let body =
            format!("<html><body style=\"margin:0;background:rgb({r},{g},{b})\"></body></html>");
        // Ends with the test process (threads, nothing to kill).
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, body) = (log.clone(), body.clone());
                std::thread::spawn(move || serve_page(stream, &log, &body));
            }
        });
        ColourServer { port, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn serve_page(mut stream: std::net::TcpStream, log: &std::sync::Mutex<Vec<String>>, body: &str) {
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    log.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The sandbox's egress decisions so far (its proxy's log, one JSON object a line).
fn decisions(world: &World, record: &Value) -> String {
    let dir = world
        .root
        .path()
        .join("state/sandbox-deck/sandboxes")
        .join(record["id"].as_str().unwrap());
    ["egress.log.1", "egress.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect()
}

fn decided(log: &str, host: &str, allowed: bool) -> bool {
    log.lines().any(|l| {
        l.contains(&format!("\"host\":\"{host}\"")) && l.contains(&format!("\"allowed\":{allowed}"))
    })
}

/// An allowed page renders through the proxy; the same page under a name the allowlist does
/// not hold (the control: same server, same address, only the name differs) does not, and
/// the proxy logs the denial without asking the resolver. (Holding is off here: an unlisted
/// host is refused at once.)
#[test]
fn chromium_in_a_proxy_sandbox_browses_under_the_allowlist() {
    browses_under_the_allowlist(false);
}

/// The same as `nobody`: bwrap in an unprivileged user namespace, the proxy that user's too.
#[test]
fn chromium_in_a_proxy_sandbox_browses_under_the_allowlist_as_nobody() {
    browses_under_the_allowlist(true);
}

fn browses_under_the_allowlist(nobody: bool) {
    if !prerequisites(TOOLS) || (nobody && !common::can_drop_to_nobody()) {
        return;
    }
    let world = World::new();
    let project = world.project("allowlisted");
    let colour = [20, 160, 90];
    let server = ColourServer::start(colour);
    let port = server.port;
    let dns = crate::egress::DnsStub::start(&[
        ("allowed.test", [127, 0, 0, 2]),
        ("unlisted.test", [127, 0, 0, 2]),
    ]);
    let config = world.root.path().join("config/sandbox-deck");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[egress]\ndefaults = false\nallow = [\"allowed.test:{port}\"]\n\
             resolver = \"127.0.0.1:{}\"\ninternal_allowed = [\"127.0.0.2\"]\n\
             hold_seconds = 0\n",
            dns.port
        ),
    )
    .unwrap();
    if nobody {
        drop(world.as_nobody());
    }
    let run = |args: &[&str]| {
        let mut c = world.command();
        c.args(args);
        if nobody {
            common::nobody_command(&c)
        } else {
            c
        }
    };
    let open = |name: &str, host: &str| -> Value {
        let url = format!("http://{host}:{port}/page");
        let mut args = vec![
            "--json",
            "create",
            project.to_str().unwrap(),
            "--name",
            name,
            "--network",
            "proxy",
            "--shell",
            "--",
            "sh",
            "-c",
            DIRECT_PAYLOAD,
            "sh",
            POLICY_FILE,
        ];
        args.extend_from_slice(OFFLINE_FLAGS);
        args.push(&url);
        serde_json::from_slice(&succeed(&mut run(&args)).stdout).unwrap()
    };

    let allowed = open("allowed", "allowed.test");
    assert_eq!(allowed["network"], "proxy", "{allowed}");
    wait_for_colour(&run, "allowed", colour, &project);
    let policy = read(&project.join("policy.json"));
    assert!(
        policy.contains("\"ProxyMode\":\"fixed_servers\"")
            && policy.contains("\"ProxyServer\":\"127.0.0.1:3128\""),
        "{policy}"
    );
    assert!(
        server
            .heads()
            .iter()
            .any(|h| h.starts_with("GET /page HTTP/1.1\r\nHost: allowed.test:")),
        "the page request came through the proxy: {:?}",
        server.heads()
    );
    assert!(decided(&decisions(&world, &allowed), "allowed.test", true));
    succeed(&mut run(&["rm", "--force", "allowed"]));

    // The control: the same page by a name not on the list.
    let unlisted = open("unlisted", "unlisted.test");
    wait_for(
        "the proxy to deny unlisted.test",
        Duration::from_secs(60),
        || decided(&decisions(&world, &unlisted), "unlisted.test", false),
    );
    // Give the browser time to draw whatever it got, then look: never the page.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        let out = succeed(&mut run(&["screenshot", "unlisted", "-o", "-"]));
        let frame = Frame::from_png(&out.stdout).unwrap();
        assert!(
            share_of(&frame, colour) < 0.01,
            "the unlisted page rendered"
        );
    }
    assert!(
        !server.heads().iter().any(|h| h.contains("unlisted.test")),
        "{:?}",
        server.heads()
    );
    let asked = dns.asked();
    assert!(asked.iter().any(|n| n == "allowed.test"), "{asked:?}");
    assert!(!asked.iter().any(|n| n == "unlisted.test"), "{asked:?}");
    assert!(!decided(
        &decisions(&world, &unlisted),
        "unlisted.test",
        true
    ));
}
