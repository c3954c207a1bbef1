//! The escape test suite: one test per threat of the escape checklist (docs/security.md,
//! SECURITY.md section 2), each run through the real binary in a real bwrap sandbox, each with
//! a negative control that shows the canary *is* reachable outside the sandbox.
//!
//! Canaries: files in a fake HOME (credentials, another project, a file outside HOME), a host
//! process, a 127.0.0.1 listener, secrets in the launcher's environment, unix sockets standing
//! for the SSH agent and the D-Bus session bus, and a second Xvfb with an abstract socket
//! standing for the host desktop's X server. Everything a test starts is killed by pid.

use crate::common;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::time::{Duration, Instant};

use crate::common::*;

const TOOLS: &[&str] = &["bwrap", "tmux", "Xvfb", "python3", "xdpyinfo"];

/// Host credentials a sandbox must never see (FS-02, FS-03).
const CREDENTIALS: &[&str] = &[
    ".ssh/id_ed25519",
    ".config/gh/hosts.yml",
    ".aws/credentials",
    ".kube/config",
    ".docker/config.json",
    ".netrc",
    ".git-credentials",
    ".gnupg/private-keys-v1.d/canary.key",
    ".Xauthority",
];

/// Variables of the launching environment that must not cross (SEC-01, PR-08).
const SECRET_VARS: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "ANTHROPIC_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "SSH_AUTH_SOCK",
    "DBUS_SESSION_BUS_ADDRESS",
    "XAUTHORITY",
];

/// Project files the host runs later (config `bubblewrap.protect`), created before launch.
const BACK_CHANNELS: &[&str] = &[
    ".git/hooks/pre-commit",
    ".git/config",
    ".vscode/tasks.json",
    ".claude/settings.json",
    ".envrc",
    ".mcp.json",
];

/// The same probes run inside the sandbox and, as the negative control, on the host. Each
/// prints `LABEL=ok` or `LABEL=<errno name>`.
const PROBE: &str = r#"
import ctypes, errno, os, socket, stat, sys

libc = ctypes.CDLL(None, use_errno=True)

def ename(n):
    return errno.errorcode.get(n, str(n))

def report(label, fn):
    try:
        fn()
        print(f"{label}=ok", flush=True)
    except OSError as e:
        print(f"{label}={ename(e.errno)}", flush=True)

def uconnect(target):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect("\0" + target[1:] if target.startswith("@") else target)
    s.close()

def tcp(host, port):
    socket.create_connection((host, int(port)), timeout=3).close()

def tiocsti(label, where):
    fd = 0 if where == "stdin" else os.open(where, os.O_RDWR | os.O_NOCTTY)
    print(f"{label}.tty={'yes' if os.isatty(fd) else 'no'}")
    libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_char_p]
    for variant, request in (("plain", 0x5412), ("high", 0x5412 | (1 << 32))):
        r = libc.ioctl(fd, request, b" ")
        print(f"{label}.{variant}=" + ("ok" if r == 0 else ename(ctypes.get_errno())))

ARGS = {
    "keyctl": (0, -3, 0),
    "add_key": (0, 0, 0, 0, 0),
    "request_key": (0, 0, 0, 0),
    "perf_event_open": (0, 0, -1, -1, 0),
    "bpf": (0, 0, 0),
    "userfaultfd": (1,),
    "io_uring_setup": (1, 0),
}

def syscalls(label, specs):
    libc.syscall.restype = ctypes.c_long
    for spec in specs:
        name, nr = spec.split("=")
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(int(nr)), *[ctypes.c_long(a) for a in ARGS[name]])
        if r >= 0:
            if name in ("userfaultfd", "io_uring_setup"):
                os.close(r)
            print(f"{label}.{name}=ok")
        else:
            print(f"{label}.{name}={ename(ctypes.get_errno())}")

def setuid(label, d):
    def chmod(mode, name):
        def go():
            p = os.path.join(d, name)
            with open(p, "w"):
                pass
            os.chmod(p, mode)
        return go
    def creat():
        os.close(os.open(os.path.join(d, "creat-s"), os.O_CREAT | os.O_WRONLY, 0o4755))
    def mknod():
        os.mknod(os.path.join(d, "mknod-s"), stat.S_IFREG | 0o4755)
    def tmpfile():
        fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o4755)
        r = libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100,
                        os.path.join(d, "tmpfile-s").encode(), 0x400)
        os.close(fd)
        if r != 0:
            raise OSError(ctypes.get_errno(), "linkat")
    def openat2():
        class How(ctypes.Structure):
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
        how = How(os.O_CREAT | os.O_WRONLY, 0o4755, 0)
        libc.syscall.restype = ctypes.c_long
        fd = libc.syscall(ctypes.c_long(437), ctypes.c_long(-100),
                          os.path.join(d, "openat2-s").encode(), ctypes.byref(how), ctypes.c_size_t(24))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "openat2")
        os.close(fd)
    report(f"{label}.chmod-u", chmod(0o4755, "chmod-s"))
    report(f"{label}.chmod-g", chmod(0o2755, "chmod-g"))
    report(f"{label}.creat", creat)
    report(f"{label}.mknod", mknod)
    report(f"{label}.tmpfile", tmpfile)
    report(f"{label}.openat2", openat2)
    report(f"{label}.chardev", lambda: os.mknod(os.path.join(d, "dev"), stat.S_IFCHR | 0o666, os.makedev(1, 3)))

def netfilter_info(family, level, optname):
    # The GET_INFO request of ip_tables/ip6_tables/arp_tables: the table name goes in, its
    # hooks come out. Only CAP_NET_ADMIN over the socket's network namespace gets an answer.
    s = socket.socket(family, socket.SOCK_STREAM)
    buf = ctypes.create_string_buffer(b"filter", 84)
    size = ctypes.c_uint(84)
    r = libc.getsockopt(s.fileno(), level, optname, buf, ctypes.byref(size))
    s.close()
    if r != 0:
        raise OSError(ctypes.get_errno(), "getsockopt")

label, cmd, *rest = sys.argv[1:]
if cmd == "uconnect":
    report(label, lambda: uconnect(rest[0]))
elif cmd == "tcp":
    report(label, lambda: tcp(rest[0], rest[1]))
elif cmd == "kill0":
    report(label, lambda: os.kill(int(rest[0]), 0))
elif cmd == "tiocsti":
    tiocsti(label, rest[0])
elif cmd == "syscalls":
    syscalls(label, rest)
elif cmd == "setuid":
    setuid(label, rest[0])
elif cmd == "landlock":
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    abi = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    print(f"{label}=" + (f"abi{abi}" if abi >= 0 else ename(ctypes.get_errno())))
elif cmd == "x32":
    # x32 calls are x86_64 numbers with bit 30 set. A kernel without CONFIG_X86_X32_ABI answers
    # ENOSYS, one with it runs them: a filter that looks only at numbers sees neither.
    libc.syscall.restype = ctypes.c_long
    for name, nr, arg in (("getpid", 39, 0), ("unshare", 272, 0x10000000 | 0x20000)):
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(0x40000000 | nr), ctypes.c_long(arg))
        print(f"{label}.{name}=" + ("ok" if r >= 0 else ename(ctypes.get_errno())))
elif cmd == "fcap":
    # A file capability (VFS_CAP_REVISION_2, effective, permitted CAP_DAC_READ_SEARCH): from a
    # user namespace the kernel stores it tagged with that namespace's root.
    import struct
    value = struct.pack("<IIIII", 0x02000001, 1 << 2, 0, 0, 0)
    report(label, lambda: os.setxattr(rest[0], "security.capability", value))
elif cmd == "netfilter-info":
    report(label, lambda: netfilter_info(*map(int, rest)))
elif cmd == "sockopt-tos":
    # An ordinary IP option (IP_TOS 1, IPV6_TCLASS 67) keeps working next to the refused ones.
    report(label, lambda: (socket.socket().setsockopt(0, 1, 16),
                           socket.socket(socket.AF_INET6).setsockopt(41, 67, 16)))
elif cmd == "socket":
    report(label, lambda: socket.socket(*map(int, rest)).close())
"#;

/// Shell helpers every script starts with: `probe LABEL CMD ARGS` and `try LABEL CMD ARGS`.
const PRELUDE: &str = r#"probe() { python3 "$PROBE" "$@"; }
try() { label=$1; shift; if "$@" >/dev/null 2>&1; then echo "$label=ok"; else echo "$label=refused"; fi; }
"#;

/// The host's Claude state as a real user has it: preferences, code the host's Claude runs,
/// another project's transcripts and MCP secrets, and the host's own sessions.
fn write_host_claude(home: &Path, tag: &str) {
    let claude = home.join(".claude");
    for (rel, text) in [
        (
            "settings.json",
            format!("{{\"env\": {{\"PREF\": \"{tag}-settings\"}}}}\n"),
        ),
        ("CLAUDE.md", format!("{tag}-memory\n")),
        ("skills/review/SKILL.md", format!("{tag}-skill\n")),
        ("rules/style.md", format!("{tag}-rule\n")),
        ("commands/ship.md", format!("{tag}-command\n")),
        ("agents/helper.md", format!("{tag}-agent\n")),
        ("hooks/notify.sh", "#!/bin/sh\n".into()),
        ("local/claude", "#!/bin/sh\necho host-claude\n".into()),
        (
            ".credentials.json",
            format!("{{\"claudeAiOauth\": {{\"accessToken\": \"{tag}-token\"}}}}\n"),
        ),
        (
            "history.jsonl",
            format!("{{\"display\": \"{tag}-history\"}}\n"),
        ),
        (
            "projects/-elsewhere-other/s.jsonl",
            format!("{{\"cwd\": \"{tag}-other-transcript\"}}\n"),
        ),
        ("todos/t.json", format!("[\"{tag}-todo\"]\n")),
        ("backups/.claude.json.backup", format!("{tag}-backup\n")),
        (
            "ide/1234.lock",
            format!("{{\"authToken\": \"{tag}-ide\"}}\n"),
        ),
    ] {
        write(&claude.join(rel), &text);
    }
    let json = serde_json::json!({
        "hasCompletedOnboarding": true,
        "theme": "light",
        "mcpServers": {"user-wide": {"command": "x", "env": {"TOKEN": format!("{tag}-user-mcp")}}},
        "projects": {
            "/elsewhere/other": {"mcpServers": {"db": {"env": {"PASSWORD": format!("{tag}-other-mcp")}}}}
        }
    });
    write(&home.join(".claude.json"), &json.to_string());
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `key=value` lines of a run's stdout.
struct Report {
    text: String,
}

impl Report {
    fn of(out: &Output) -> Report {
        Report {
            text: format!(
                "{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out.stdout).replace('\r', ""),
                String::from_utf8_lossy(&out.stderr).replace('\r', "")
            ),
        }
    }

    fn stdout(&self) -> &str {
        self.text.split("\n--- stderr ---\n").next().unwrap()
    }

    fn get(&self, key: &str) -> &str {
        let prefix = format!("{key}=");
        self.stdout()
            .lines()
            // trim: a character injected on a tty is echoed before the next line.
            .find_map(|l| l.trim_start().strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key}= in the output:\n{}", self.text))
    }

    fn expect(&self, key: &str, value: &str) {
        assert_eq!(self.get(key), value, "{key}:\n{}", self.text);
    }

    fn refused(&self, key: &str) {
        assert_ne!(self.get(key), "ok", "{key} succeeded:\n{}", self.text);
    }
}

/// A world with canaries: a fake HOME with credentials, another project and a file outside
/// HOME; secrets in the launching environment; a project inside HOME with back-channel files.
struct Scene {
    world: World,
    /// Sandboxes run as `nobody` (the world handed to it) instead of the caller.
    nobody: bool,
    tag: String,
    project: PathBuf,
    canary: PathBuf,
    outside: PathBuf,
    other_project: PathBuf,
    probe: PathBuf,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let mut world = World::new();
        let tag = format!("sd-canary-{}", unique());
        let home = world.home.clone();
        let canary = home.join("canary.txt");
        write(&canary, &tag);
        for rel in CREDENTIALS {
            write(&home.join(rel), &format!("{tag} {rel}\n"));
        }
        write(
            &home.join(".ssh/known_hosts"),
            "example.org ssh-ed25519 AAAA\n",
        );
        write(&home.join(".gitconfig"), "[user]\n\tname = canary\n");
        write_host_claude(&home, &tag);
        let other_project = home.join("code/other-project/secret.txt");
        write(&other_project, &tag);
        let outside = world.path("outside/canary.txt");
        write(&outside, &tag);
        let project = home.join("code").join(name);
        std::fs::create_dir_all(&project).unwrap();
        let project = project.canonicalize().unwrap();
        for rel in BACK_CHANNELS {
            write(&project.join(rel), "# original\n");
        }
        let probe = project.join(".probe.py");
        write(&probe, PROBE);
        for key in SECRET_VARS {
            world.env.push((key.to_string(), format!("{tag}-{key}")));
        }
        Scene {
            world,
            nobody: false,
            tag,
            project,
            canary,
            outside,
            other_project,
            probe,
        }
    }

    /// The same scene for an unprivileged user: the world is handed to `nobody`, and
    /// sandboxes are started as it (root is what CI runs as).
    fn new_as(name: &str, nobody: bool) -> Scene {
        let mut scene = Scene::new(name);
        if nobody {
            drop(scene.world.as_nobody());
            scene.nobody = true;
        }
        scene
    }

    /// `sandbox-deck` as this scene's user.
    fn deck(&self) -> Command {
        let own = self.world.command();
        if !self.nobody {
            return own;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(own.get_program())
            .env_clear()
            .envs(
                own.get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            );
        c
    }

    /// The body run on the host as this scene's user, with the world's HOME: the negative
    /// control for what a sandbox was refused.
    fn on_host(&self, body: &str) -> Report {
        let mut c = if self.nobody {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                "sh",
            ]);
            c
        } else {
            Command::new("sh")
        };
        let out = c
            .args(["-c", &self.script(body)])
            .current_dir(&self.project)
            .env("HOME", &self.world.home)
            .output()
            .unwrap();
        Report::of(&out)
    }

    fn p(&self) -> &str {
        self.project.to_str().unwrap()
    }

    fn script(&self, body: &str) -> String {
        format!("PROBE='{}'\n{PRELUDE}{body}", self.probe.display())
    }

    /// `launch bubblewrap --new DIR --shell [extra] -- sh -c SCRIPT`, to the end.
    fn launch(&self, extra: &[&str], body: &str) -> Report {
        let out = self
            .deck()
            .args(["launch", "bubblewrap", "--new", self.p(), "--shell"])
            .args(extra)
            .args(["--", "sh", "-c", &self.script(body)])
            .output()
            .unwrap();
        Report::of(&out)
    }

    /// The same, with fd 0 on a pseudo-terminal (through `script`), so TIOCSTI has a target.
    fn launch_on_a_tty(&self, body: &str) -> Report {
        let out = self
            .on_a_tty(
                "exec \"$SD_BIN\" launch bubblewrap --new \"$SD_PROJECT\" --shell -- sh -c \"$SD_SCRIPT\"",
            )
            .env("SD_SCRIPT", self.script(body))
            .output()
            .unwrap();
        Report::of(&out)
    }

    fn on_a_tty(&self, shell: &str) -> Command {
        let template = self.world.command();
        let mut c = Command::new("script");
        c.env_clear();
        for (k, v) in template.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.env("SD_BIN", BIN)
            .env("SD_PROJECT", &self.project)
            .env("SD_PROBE", &self.probe)
            .args(["-qec", shell, "/dev/null"])
            .stdin(Stdio::null());
        c
    }

    /// Starts an instance that runs `body`, signals `up`, and waits for `go`.
    fn spawn(&self, extra: &[&str], body: &str) -> Instance {
        let up = self.project.join(format!("up-{}", unique()));
        let go = self.project.join(format!("go-{}", unique()));
        let body = format!(
            "{body}\ntouch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\n",
            up.display(),
            go.display()
        );
        let child = self
            .world
            .command()
            .args(["launch", "bubblewrap", "--new", self.p(), "--shell"])
            .args(extra)
            .args(["--", "sh", "-c", &self.script(&body)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut instance = Instance { child, go };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !up.exists() {
            if let Ok(Some(status)) = instance.child.try_wait() {
                let out = instance.child.wait_with_output_now();
                panic!("the instance ended early ({status}):\n{}", out.text);
            }
            assert!(Instant::now() < deadline, "the instance never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
        instance
    }

    /// A managed sandbox (`create --shell`) that runs `body` and stays up.
    fn create(&self, body: &str) -> serde_json::Value {
        let ready = self.project.join(format!("ready-{}", unique()));
        let body = format!("{body}\ntouch '{}'\nexec sleep 600\n", ready.display());
        let record = self.world.json(&[
            "create",
            self.p(),
            "--shell",
            "--",
            "sh",
            "-c",
            &self.script(&body),
        ]);
        wait_for("the managed payload", Duration::from_secs(10), || {
            ready.exists()
        });
        record
    }

    /// `launch` as `nobody` (the world is handed to it first).
    fn launch_as_nobody(&self, body: &str) -> Report {
        let script = self.script(body);
        let as_nobody = self.world.as_nobody();
        let args = ["launch", "bubblewrap", "--new", self.p(), "--shell", "--"];
        let out = as_nobody(&args)
            .args(["sh", "-c", &script])
            .output()
            .unwrap();
        Report::of(&out)
    }

    /// A script run on the host, as the test's user or (`nobody`) through setpriv: the
    /// negative control of a probe that needs a shell.
    fn on_host_as(&self, body: &str, nobody: bool) -> Report {
        let mut c = Command::new("setpriv");
        if nobody {
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        }
        let out = c
            .args(["--", "sh", "-c", &self.script(body)])
            .output()
            .unwrap();
        Report::of(&out)
    }

    /// The probe run on the host: the negative control.
    fn host_probe(&self, args: &[&str]) -> Report {
        let out = Command::new("python3")
            .arg(&self.probe)
            .args(args)
            .output()
            .unwrap();
        Report::of(&out)
    }
}

/// A running launched instance; released (or killed by pid) when done.
struct Instance {
    child: Child,
    go: PathBuf,
}

trait WaitNow {
    fn wait_with_output_now(&mut self) -> Report;
}

impl WaitNow for Child {
    fn wait_with_output_now(&mut self) -> Report {
        use std::io::Read;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut s) = self.stdout.take() {
            s.read_to_end(&mut stdout).ok();
        }
        if let Some(mut s) = self.stderr.take() {
            s.read_to_end(&mut stderr).ok();
        }
        let status = self.wait().unwrap();
        Report::of(&Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Instance {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn release(mut self) -> Report {
        std::fs::write(&self.go, "").unwrap();
        self.child.wait_with_output_now()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A listener on an abstract unix socket (no file: reachable by name from the netns).
fn abstract_listener(name: &str) -> UnixListener {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    UnixListener::bind_addr(&addr).unwrap()
}

/// `xdpyinfo` on the host: Ok when it could open the display.
fn host_xdpyinfo(display: u32, xauthority: &Path) -> bool {
    Command::new("xdpyinfo")
        .args(["-display", &format!(":{display}")])
        .env("XAUTHORITY", xauthority)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn landlock_abi() -> i64 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute only queries the ABI.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    }
}

/// Landlock scoping (ABI ≥ 6) is what keeps host abstract sockets out in host-network mode.
fn landlock_scoping_or_skip() -> bool {
    let abi = landlock_abi();
    if abi >= 6 {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and this kernel has no Landlock scoping (ABI {abi} < 6)");
    }
    eprintln!("SKIPPED: Landlock ABI {abi} < 6: host-network sandboxes reach abstract sockets");
    false
}

fn host_ps_args() -> String {
    String::from_utf8_lossy(
        &Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

fn mountinfo_lines(pid: &str) -> usize {
    read(Path::new(&format!("/proc/{pid}/mountinfo")))
        .lines()
        .count()
}

// ---------------------------------------------------------------------------------------
// Filesystem
// ---------------------------------------------------------------------------------------

#[test]
fn fs_01_the_host_home_is_invisible() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs01");
    let r = s.launch(
        &[],
        "echo \"home=$(ls -A \"$HOME\" | tr '\\n' ' ')\"; echo \"code=$(ls -A \"$HOME/code\" | tr '\\n' ' ')\"",
    );
    let inside: Vec<&str> = r.get("home").split_whitespace().collect();
    let allowed = [
        ".claude",
        ".claude.json",
        ".config",
        ".local",
        ".ssh",
        ".gitconfig",
        "code",
    ];
    for entry in &inside {
        assert!(
            allowed.contains(entry),
            "{entry} visible in HOME: {inside:?}"
        );
    }
    assert_eq!(
        r.get("code").trim(),
        "fs01",
        "only the project of ~/code: {}",
        r.text
    );
    // Control: on the host, HOME holds the canaries.
    let host: Vec<String> = std::fs::read_dir(&s.world.home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for canary in ["canary.txt", ".aws", ".netrc", ".Xauthority"] {
        assert!(
            host.iter().any(|h| h == canary),
            "control: {canary} on host"
        );
        assert!(!inside.contains(&canary));
    }
    assert!(s.other_project.exists());
}

#[test]
fn fs_02_ssh_private_keys_cannot_be_read() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs02");
    let r = s.launch(
        &[],
        "try key cat \"$HOME/.ssh/id_ed25519\"; echo \"ssh=$(ls -A \"$HOME/.ssh\" | tr '\\n' ' ')\"; cat \"$HOME\"/.ssh/id_* 2>/dev/null",
    );
    r.refused("key");
    assert!(!r.stdout().contains(&s.tag), "{}", r.text);
    assert_eq!(
        r.get("ssh").trim(),
        "known_hosts",
        "only known_hosts crosses"
    );
    // Control: the key is readable on the host.
    assert!(read(&s.world.home.join(".ssh/id_ed25519")).contains(&s.tag));
}

#[test]
fn fs_03_other_credentials_do_not_exist_inside() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs03");
    let mut body = String::new();
    for (i, rel) in CREDENTIALS.iter().enumerate() {
        body.push_str(&format!("try cred{i} test -e \"$HOME/{rel}\"\n"));
    }
    body.push_str("cat \"$HOME/.config/gh/hosts.yml\" \"$HOME/.aws/credentials\" 2>/dev/null\n");
    let r = s.launch(&[], &body);
    for (i, rel) in CREDENTIALS.iter().enumerate() {
        assert_eq!(r.get(&format!("cred{i}")), "refused", "{rel} exists inside");
        // Control: each exists on the host.
        assert!(s.world.home.join(rel).exists(), "control: {rel}");
    }
    assert!(!r.stdout().contains(&s.tag), "{}", r.text);
}

#[test]
fn fs_04_host_files_outside_the_project_cannot_be_read() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs04");
    let r = s.launch(
        &[],
        &format!(
            "try home cat '{}'; try outside cat '{}'; try other cat '{}'; cat '{}' '{}' '{}' 2>/dev/null",
            s.canary.display(),
            s.outside.display(),
            s.other_project.display(),
            s.canary.display(),
            s.outside.display(),
            s.other_project.display(),
        ),
    );
    r.refused("home");
    r.refused("outside");
    r.refused("other");
    assert!(!r.stdout().contains(&s.tag), "{}", r.text);
    for f in [&s.canary, &s.outside, &s.other_project] {
        assert_eq!(
            read(f),
            s.tag,
            "control: {} readable on the host",
            f.display()
        );
    }
}

#[test]
fn fs_05_the_project_is_writable_and_the_host_sees_it() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs05");
    let r = s.launch(
        &[],
        "echo made-inside > kept; try write sh -c 'echo ok > t && rm t'",
    );
    r.expect("write", "ok");
    assert_eq!(read(&s.project.join("kept")).trim(), "made-inside");
    assert!(!s.project.join("t").exists());
}

#[test]
fn fs_06_writes_outside_the_project_do_not_reach_the_host() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs06");
    // A first run creates the project's transcript dir in ~/.claude/projects on the host (by
    // design, before the sandbox starts); the marker comes after it.
    s.launch(&[], "true");
    let marker = s.world.path("MARKER");
    std::fs::write(&marker, "").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let tmp_name = format!("sd-escape-{}", unique());
    let r = s.launch(
        &[],
        &format!(
            "echo x >> ~/.bashrc; mkdir -p ~/.ssh; touch ~/.ssh/authorized_keys /tmp/{tmp_name}; \
             echo evil >> '{canary}'; mkdir -p ~/code/other-project && echo evil > ~/code/other-project/planted; \
             echo x >> ~/.profile; touch ~/.config/autostart-evil; echo done=yes",
            canary = s.canary.display()
        ),
    );
    r.expect("done", "yes");
    let found = Command::new("find")
        .arg(&s.world.home)
        .arg("-newer")
        .arg(&marker)
        .args(["-not", "-path"])
        .arg(format!("{}*", s.p()))
        .output()
        .unwrap();
    let changed = String::from_utf8_lossy(&found.stdout);
    assert!(
        changed.trim().is_empty(),
        "host files changed outside the project:\n{changed}"
    );
    assert!(!Path::new("/tmp").join(&tmp_name).exists());
    assert_eq!(read(&s.canary), s.tag);
    // Control: a write to the project after the marker is found by the same search.
    std::fs::write(s.world.home.join("host-write"), "").unwrap();
    let control = Command::new("find")
        .arg(&s.world.home)
        .arg("-newer")
        .arg(&marker)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&control.stdout).contains("host-write"));
}

#[test]
fn fs_07_the_root_and_system_dirs_are_read_only() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs07");
    let r = s.launch(
        &[],
        "for p in /usr/x /etc/x /x /bin/x /lib/x; do n=$(echo $p | tr -d /); \
         if touch $p 2>/tmp/err; then echo $n=ok; else echo $n=$(grep -c 'Read-only' /tmp/err); fi; done; \
         try project touch ./written",
    );
    for n in ["usrx", "etcx", "x", "binx", "libx"] {
        assert_eq!(r.get(n), "1", "{n} must fail with EROFS:\n{}", r.text);
    }
    // Control: the same touch works where writing is allowed.
    r.expect("project", "ok");
    assert!(s.project.join("written").exists());
}

#[test]
fn fs_08_tool_paths_and_shared_config_are_read_only() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs08");
    let mut targets = vec!["/usr/bin/x", "/usr/local/bin/x", "/usr/lib/x"];
    for dir in ["/nix/store", "/opt"] {
        if Path::new(dir).is_dir() {
            targets.push(if dir == "/nix/store" {
                "/nix/store/x"
            } else {
                "/opt/x"
            });
        }
    }
    let mut body = String::new();
    for (i, t) in targets.iter().enumerate() {
        body.push_str(&format!("try tool{i} touch {t}\n"));
    }
    body.push_str(
        "try gitconfig sh -c 'echo x >> ~/.gitconfig'\ntry known sh -c 'echo x >> ~/.ssh/known_hosts'\n\
         echo \"gitcontent=$(cat ~/.gitconfig | head -1)\"\n",
    );
    let r = s.launch(&[], &body);
    for (i, t) in targets.iter().enumerate() {
        assert_eq!(r.get(&format!("tool{i}")), "refused", "{t} writable");
    }
    r.refused("gitconfig");
    r.refused("known");
    // Control: the config is there (read-only), and writable on the host.
    r.expect("gitcontent", "[user]");
    assert!(
        !std::fs::metadata(s.world.home.join(".gitconfig"))
            .unwrap()
            .permissions()
            .readonly()
    );
}

#[test]
fn fs_09_host_executed_project_files_and_claude_hooks_cannot_be_written() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs09");
    let mut body = String::new();
    for (i, rel) in BACK_CHANNELS.iter().enumerate() {
        body.push_str(&format!("try bc{i} sh -c 'echo evil >> {rel}'\n"));
    }
    body.push_str(
        "try newhook sh -c 'echo evil > .git/hooks/post-checkout'\n\
         try hookspath git config core.hooksPath /tmp\n\
         try fsmonitor git config core.fsmonitor 'touch /tmp/pwned'\n\
         try vscode sh -c 'echo {} > .vscode/settings.json'\n\
         try settings sh -c 'echo evil >> ~/.claude/settings.json'\n\
         try hooks touch ~/.claude/hooks/evil.sh\n\
         try other sh -c 'echo fine > notes.txt'\n",
    );
    let r = s.launch(&[], &body);
    for (i, rel) in BACK_CHANNELS.iter().enumerate() {
        assert_eq!(r.get(&format!("bc{i}")), "refused", "{rel} writable");
        assert_eq!(read(&s.project.join(rel)), "# original\n", "{rel} changed");
    }
    for key in [
        "newhook",
        "hookspath",
        "fsmonitor",
        "vscode",
        "settings",
        "hooks",
    ] {
        r.refused(key);
    }
    assert!(!s.project.join(".git/hooks/post-checkout").exists());
    assert!(!s.world.home.join(".claude/hooks/evil.sh").exists());
    // Control: the rest of the project is writable, and so are these files on the host.
    r.expect("other", "ok");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(s.project.join(".git/config"))
        .unwrap();
    f.write_all(b"").unwrap();
}

#[test]
fn fs_09_protected_files_cannot_be_swapped_by_renaming_their_parent() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs09b");
    let r = s.launch(
        &[],
        "try git mv .git .git-moved\n\
         try claude mv .claude .claude-moved\n\
         mkdir -p .git/hooks .claude 2>/dev/null\n\
         echo evil > .git/hooks/pre-commit 2>/dev/null\n\
         echo evil > .claude/settings.json 2>/dev/null\n\
         try control mv notes-a notes-b\n",
    );
    r.refused("git");
    r.refused("claude");
    assert_eq!(
        read(&s.project.join(".git/hooks/pre-commit")),
        "# original\n",
        "the hook was replaced through a renamed .git:\n{}",
        r.text
    );
    assert_eq!(
        read(&s.project.join(".claude/settings.json")),
        "# original\n"
    );
    assert!(!s.project.join(".git-moved").exists());
    // Control: renaming works in the project (notes-a does not exist: create and rename).
    let r = s.launch(&[], "touch notes-a; try control mv notes-a notes-b");
    r.expect("control", "ok");
    assert!(s.project.join("notes-b").exists());
}

#[test]
fn fs_10_a_symlink_to_a_host_file_cannot_be_read() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs10");
    let r = s.launch(
        &[],
        &format!(
            "ln -s '{}' link; ln -s '{}' link2; try link cat link; try link2 cat link2; cat link link2 2>/dev/null",
            s.canary.display(),
            s.other_project.display()
        ),
    );
    r.refused("link");
    r.refused("link2");
    assert!(!r.stdout().contains(&s.tag));
    // Control: the planted link does lead to the canary on the host.
    assert_eq!(read(&s.project.join("link")), s.tag);
}

#[test]
fn fs_11_a_hardlink_to_a_host_file_fails() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs11");
    let r = s.launch(
        &[],
        "try passwd ln /etc/passwd hard; try ld ln /usr/bin/env hard2; touch mine; try own ln mine mine2",
    );
    r.refused("passwd");
    r.refused("ld");
    assert!(!s.project.join("hard").exists());
    // Control: hard links work inside the project, and on the host a file of the same
    // filesystem outside the project can be linked in.
    r.expect("own", "ok");
    std::fs::hard_link(&s.canary, s.project.join("host-link")).unwrap();
    assert_eq!(read(&s.project.join("host-link")), s.tag);
}

#[test]
fn fs_12_no_device_nodes_and_no_setuid_or_setgid_files() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs12");
    let dir = s.project.join("plant");
    std::fs::create_dir_all(&dir).unwrap();
    let r = s.launch(
        &[],
        &format!(
            "probe in setuid '{d}'; try mknod mknod '{d}/null' c 1 3; cp /bin/sh '{d}/sh'; try chmod chmod 4755 '{d}/sh'",
            d = dir.display()
        ),
    );
    r.refused("mknod");
    r.refused("in.chardev");
    r.refused("chmod");
    r.refused("in.chmod-u");
    r.refused("in.chmod-g");
    // Creating the file with the bits already set, by every call that takes a mode.
    r.refused("in.creat");
    r.refused("in.mknod");
    r.refused("in.tmpfile");
    // openat2's mode is out of the filter's reach: it answers ENOSYS, and callers fall back.
    r.expect("in.openat2", "ENOSYS");
    let mut planted = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let mode = meta.permissions().mode();
        assert!(
            !std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()),
            "a device node was planted"
        );
        if mode & 0o6000 != 0 {
            planted.push(format!(
                "{} {:o}",
                entry.file_name().to_string_lossy(),
                mode
            ));
        }
    }
    assert!(
        planted.is_empty(),
        "setuid/setgid files planted from inside: {planted:?}\n{}",
        r.text
    );
    // Control: on the host the same probe does set the bits.
    let host_dir = s.world.path("host-plant");
    std::fs::create_dir_all(&host_dir).unwrap();
    let c = s.host_probe(&["host", "setuid", host_dir.to_str().unwrap()]);
    c.expect("host.chmod-u", "ok");
    let mode = std::fs::metadata(host_dir.join("chmod-s"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o4000, 0, "control: chmod 4755 works on the host");
}

/// FS-12, through a nested user namespace (a sandbox with the browser may create one). There
/// a process holds CAP_SETFCAP and may write `security.capability`; for a root caller's
/// sandbox the kernel tags it with host uid 0, so every host user who runs the file would get
/// its capabilities (measured by hand: `nobody` read /etc/shadow through a planted
/// `cap_dac_read_search` copy of `cat`). Every xattr write is refused (EOPNOTSUPP, so `cp -a`
/// still works), as root and as `nobody`.
#[test]
fn fs_12_no_file_capability_can_be_planted_through_a_nested_user_namespace() {
    if !prerequisites(TOOLS) || !prerequisites(&["unshare", "chromium", "setpriv"]) {
        return;
    }
    let s = Scene::new("fs12cap");
    let plant = |name: &str| {
        let file = s.project.join(name);
        std::fs::copy("/bin/true", &file).unwrap();
        file
    };
    let has_caps = |file: &Path| xattr_present(file, "security.capability");
    let body = |file: &Path| {
        format!(
            "unshare -Ur python3 \"$PROBE\" fcap fcap '{f}'; cp -a '{f}' '{f}.copy' && echo cp=ok",
            f = file.display()
        )
    };
    for nobody in [false, true] {
        let who = if nobody { "nobody" } else { "root" };
        // Both planted now: handing the world to nobody chowns them with it.
        let inside = plant(&format!("planted-{who}"));
        let control = plant(&format!("control-{who}"));
        let r = if nobody {
            s.launch_as_nobody(&body(&inside))
        } else {
            s.launch(&[], &body(&inside))
        };
        r.expect("fcap", "ENOTSUP");
        r.expect("cp", "ok");
        assert!(!has_caps(&inside), "a capability was written ({who})");
        // Control: the same plant on the host, in a user namespace of its own, succeeds.
        let c = s.on_host_as(&body(&control), nobody);
        c.expect("fcap", "ok");
        assert!(has_caps(&control), "control ({who}): no capability written");
    }
}

/// Whether `file` carries the extended attribute `name` (getxattr through libc).
fn xattr_present(file: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(file.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: two NUL-terminated strings; a null buffer of size 0 asks for the size only.
    unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

#[test]
fn fs_13_only_the_sandboxs_own_display_socket_and_no_runtime_dir() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("fs13");
    let x = HostX::start();
    let record = s.create(
        "echo \"x11=$(ls -A /tmp/.X11-unix | tr '\\n' ' ')\" > out-fs13\n\
         try runuser ls /run/user >> out-fs13\n\
         echo \"xdg=${XDG_RUNTIME_DIR:-unset}\" >> out-fs13\n\
         try hostx test -e /tmp/.X11-unix/X$HOSTX >> out-fs13\n"
            .replace("$HOSTX", &x.number.to_string())
            .as_str(),
    );
    let display = record["display"].as_u64().unwrap();
    let r = Report {
        text: read(&s.project.join("out-fs13")),
    };
    r.expect("x11", &format!("X{display} "));
    r.refused("runuser");
    r.expect("xdg", "unset");
    r.refused("hostx");
    // Control: on the host the directory holds other displays, and the runtime dir exists.
    assert!(Path::new(&format!("/tmp/.X11-unix/X{}", x.number)).exists());
    assert!(s.world.runtime.is_dir());
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

#[test]
fn pr_01_host_processes_are_invisible() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr01");
    let canary = CanaryProcess::start();
    // The marker is split so that this script's own command line does not contain it.
    let (m1, m2) = canary.marker.split_at(4);
    let r = s.launch(
        &[],
        &format!(
            "try pid test -e /proc/{pid}; echo \"count=$(ls /proc | grep -c '^[0-9]')\"; \
             a='{m1}'; b='{m2}'; \
             n=0; for f in /proc/[0-9]*/cmdline; do c=$(tr '\\0' ' ' < $f 2>/dev/null); \
             case \"$c\" in *\"$a$b\"*) n=$((n+1));; esac; done; echo found=$n",
            pid = canary.pid(),
        ),
    );
    r.refused("pid");
    r.expect("found", "0");
    let count: u32 = r.get("count").parse().unwrap();
    assert!(count <= 6, "saw {count} processes");
    // Control: the canary is visible on the host.
    assert!(Path::new(&format!("/proc/{}", canary.pid())).exists());
    assert!(with_marker(&canary.marker).contains(&canary.pid()));
}

#[test]
fn pr_02_host_processes_cannot_be_signalled() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr02");
    let canary = CanaryProcess::start();
    let pid = canary.pid().to_string();
    let r = s.launch(
        &[],
        &format!("try kill kill -0 {pid}; probe py kill0 {pid}; try term kill -TERM {pid}"),
    );
    r.refused("kill");
    r.refused("py");
    r.refused("term");
    assert!(
        is_running(canary.pid()),
        "the canary was killed from inside"
    );
    // Control: the host can signal it.
    s.host_probe(&["host", "kill0", &pid]).expect("host", "ok");
}

#[test]
fn pr_03_no_new_privileges_is_set() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr03");
    let r = s.launch(
        &[],
        "echo \"nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)\"",
    );
    r.expect("nnp", "1");
    // Control: the field reads 0 for a process without it (unless this test itself already
    // runs under no_new_privs, e.g. inside a sandbox).
    let host = status_field(&read(Path::new("/proc/self/status")), "NoNewPrivs");
    if host != "0" {
        eprintln!("note: the test runs under NoNewPrivs={host} already; control not conclusive");
    }
}

#[test]
fn pr_04_no_capabilities_effective_or_bounding() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr04");
    let r = s.launch(
        &[],
        "for f in CapInh CapPrm CapEff CapBnd CapAmb; do echo \"$f=$(grep \"^$f:\" /proc/self/status | cut -f2)\"; done",
    );
    for f in ["CapEff", "CapBnd", "CapPrm", "CapAmb"] {
        r.expect(f, "0000000000000000");
    }
    // Control: an ordinary host process has a full bounding set.
    let host = status_field(&read(Path::new("/proc/self/status")), "CapBnd");
    assert_ne!(host, "0000000000000000", "control: host CapBnd");
}

#[test]
fn pr_05_tiocsti_is_refused_on_a_tty_and_seccomp_is_on() {
    if !prerequisites(TOOLS) || !prerequisites(&["script"]) {
        return;
    }
    let s = Scene::new("pr05");
    let r = s.launch_on_a_tty(
        "probe in tiocsti stdin; echo \"seccomp=$(grep Seccomp: /proc/self/status | cut -f2)\"",
    );
    r.expect("in.tty", "yes");
    r.expect("in.plain", "EPERM");
    r.expect("in.high", "EPERM");
    r.expect("seccomp", "2");
    // Control: on the host, on the same kind of pty, both variants work.
    let out = s
        .on_a_tty("python3 \"$SD_PROBE\" host tiocsti stdin")
        .output()
        .unwrap();
    let c = Report::of(&out);
    c.expect("host.tty", "yes");
    if read(Path::new("/proc/sys/dev/tty/legacy_tiocsti")).trim() == "1" {
        c.expect("host.plain", "ok");
        c.expect("host.high", "ok");
    } else {
        eprintln!("note: dev.tty.legacy_tiocsti=0 here: the host control cannot inject either");
    }
}

#[test]
fn pr_06_no_new_session_by_design_so_seccomp_blocks_tiocsti_on_the_controlling_tty() {
    if !prerequisites(TOOLS) || !prerequisites(&["script"]) {
        return;
    }
    let s = Scene::new("pr06");
    // Without --new-session the payload keeps the caller's session and controlling terminal
    // (job control, SIGWINCH): /dev/tty opens. The seccomp filter is what stops TIOCSTI.
    let r = s.launch_on_a_tty(
        "probe in tiocsti /dev/tty; echo \"seccomp=$(grep Seccomp: /proc/self/status | cut -f2)\"; \
         echo \"filters=$(grep Seccomp_filters: /proc/self/status | cut -f2)\"",
    );
    r.expect("in.tty", "yes");
    r.expect("seccomp", "2");
    assert_ne!(r.get("filters"), "0");
    r.expect("in.plain", "EPERM");
    r.expect("in.high", "EPERM");
    // Control: the host process on the same kind of terminal can inject.
    let out = s
        .on_a_tty("python3 \"$SD_PROBE\" host tiocsti /dev/tty")
        .output()
        .unwrap();
    let c = Report::of(&out);
    c.expect("host.tty", "yes");
    if read(Path::new("/proc/sys/dev/tty/legacy_tiocsti")).trim() == "1" {
        c.expect("host.plain", "ok");
    }
}

/// What a process holding the capabilities of a fresh user and network namespace reaches:
/// netfilter, xfrm and packet sockets (`try` labels for the PRELUDE).
const NAMESPACE_PROBES: &str = "\
    try userns unshare -U true; \
    try usernet unshare -Urn true; \
    try mountns unshare -Urm true; \
    try utsns unshare -Uru true; \
    try ipcns unshare -Uri true; \
    try netfilter unshare -Urn python3 -c 'import socket; socket.socket(16, 3, 12)'; \
    try xfrm unshare -Urn python3 -c 'import socket; socket.socket(16, 3, 6)'; \
    try packet unshare -Urn python3 -c 'import socket; socket.socket(17, 3, 0)'";

/// PR-07. With the browser (the default when the host has Chromium), a process inside may
/// create the user, pid and network namespaces Chromium's sandbox needs, and nothing more:
/// no mount, UTS or IPC namespace, no netfilter, xfrm or packet socket in its own network
/// namespace. With `bubblewrap.browser = false`, no user namespace at all.
#[test]
fn pr_07_nested_user_namespaces_hold_only_what_chromium_needs() {
    if !prerequisites(TOOLS) || !prerequisites(&["unshare", "chromium"]) {
        return;
    }
    let s = Scene::new("pr07");
    let r = s.launch(&[], NAMESPACE_PROBES);
    r.expect("userns", "ok");
    r.expect("usernet", "ok");
    for label in ["mountns", "utsns", "ipcns", "netfilter", "xfrm", "packet"] {
        r.refused(label);
    }
    write(
        &s.world.path("config/sandbox-deck/config.toml"),
        "[bubblewrap]\nbrowser = false\n",
    );
    let r = s.launch(&[], NAMESPACE_PROBES);
    for label in ["userns", "usernet", "mountns", "netfilter"] {
        r.refused(label);
    }
    // Control: on the host every probe succeeds (bwrap itself needs user namespaces).
    let out = Command::new("sh")
        .args(["-c", &format!("{PRELUDE}{NAMESPACE_PROBES}")])
        .output()
        .unwrap();
    let c = Report::of(&out);
    for label in [
        "userns",
        "usernet",
        "mountns",
        "utsns",
        "ipcns",
        "netfilter",
        "xfrm",
        "packet",
    ] {
        c.expect(label, "ok");
    }
}

/// What a process in a fresh user and network namespace could reach around the netlink and
/// `AF_PACKET` rules: legacy netfilter through socket options on an IP socket, and a packet
/// socket spelled `socket(AF_INET, SOCK_PACKET)`. Printed as `LABEL=ok` or an errno name.
const NESTED_NETFILTER_PROBES: &str = "\
    unshare -Urn python3 \"$PROBE\" iptables netfilter-info 2 0 64; \
    unshare -Urn python3 \"$PROBE\" ip6tables netfilter-info 10 41 64; \
    unshare -Urn python3 \"$PROBE\" arptables netfilter-info 2 0 96; \
    unshare -Urn python3 \"$PROBE\" spkt socket 2 10 0; \
    python3 \"$PROBE\" tos-still-works sockopt-tos";

/// PR-07, the ways around it. In a nested user and network namespace a process holds
/// CAP_NET_ADMIN and CAP_NET_RAW there: ip_tables (CVE-2016-3134, CVE-2021-22555), ip6_tables
/// and arp_tables are configured through `getsockopt`/`setsockopt` on an ordinary socket, and
/// `socket(AF_INET, SOCK_PACKET)` becomes a packet socket in the kernel, after the filter has
/// seen `AF_INET`. Both are refused, as root (uid 1000 inside) and as `nobody`.
#[test]
fn pr_07_legacy_netfilter_and_obsolete_packet_sockets_are_refused_in_a_nested_namespace() {
    if !prerequisites(TOOLS) || !prerequisites(&["unshare", "chromium", "setpriv"]) {
        return;
    }
    let s = Scene::new("pr07nf");
    for nobody in [false, true] {
        let who = if nobody { "nobody" } else { "root" };
        let r = if nobody {
            s.launch_as_nobody(NESTED_NETFILTER_PROBES)
        } else {
            s.launch(&[], NESTED_NETFILTER_PROBES)
        };
        for label in ["iptables", "ip6tables", "arptables", "spkt"] {
            r.expect(label, "EPERM");
        }
        r.expect("tos-still-works", "ok");
        // Control: on the host the same probes reach the tables and open the socket.
        let c = s.on_host_as(NESTED_NETFILTER_PROBES, nobody);
        for label in ["iptables", "ip6tables", "spkt"] {
            assert_eq!(c.get(label), "ok", "control ({who}): {label}\n{}", c.text);
        }
        // The 84-byte request is not arp_tables' size: EINVAL, past the permission check.
        assert_ne!(c.get("arptables"), "EPERM", "control ({who})\n{}", c.text);
    }
}

#[test]
fn pr_08_pid1_environ_carries_no_secret() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr08");
    let instance = s.spawn(
        &[],
        "tr '\\0' '\\n' </proc/1/environ > pid1-env; echo \"pid1=$(cat /proc/1/comm)\" >> pid1-env",
    );
    // Control: the launcher holds every canary secret in its environment.
    let launcher_env = read(Path::new(&format!("/proc/{}/environ", instance.pid())));
    for key in SECRET_VARS {
        assert!(
            launcher_env.contains(&format!("{key}={}-{key}", s.tag)),
            "control: {key}"
        );
    }
    instance.release();
    let env = read(&s.project.join("pid1-env"));
    assert!(env.contains("pid1=bwrap"), "{env}");
    assert!(!env.contains(&s.tag), "pid 1 leaks:\n{env}");
    for key in SECRET_VARS {
        assert!(
            !env.contains(&format!("{key}=")),
            "{key} in /proc/1/environ"
        );
    }
}

#[test]
fn pr_09_risky_syscalls_are_refused() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr09");
    let calls = [
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("bpf", libc::SYS_bpf),
        ("userfaultfd", libc::SYS_userfaultfd),
    ];
    let specs: Vec<String> = calls.iter().map(|(n, nr)| format!("{n}={nr}")).collect();
    let r = s.launch(&[], &format!("probe in syscalls {}", specs.join(" ")));
    for (name, _) in &calls {
        r.expect(&format!("in.{name}"), "EPERM");
    }
    // Control: on the host the calls get past the permission check (bad arguments at most).
    let mut args = vec!["host", "syscalls"];
    args.extend(specs.iter().map(String::as_str));
    let c = s.host_probe(&args);
    for name in ["keyctl", "add_key", "perf_event_open"] {
        assert_ne!(c.get(&format!("host.{name}")), "EPERM", "control: {name}");
    }
}

/// PR-09, the other ABI. On x86_64 an x32 syscall carries the x86_64 audit arch, so the
/// filter's arch check lets it through, and its number matches none of the rules: on a kernel
/// with x32 enabled, `unshare`, `mount` or `ioctl(TIOCSTI)` in x32 would walk around all of
/// them. Every x32 call is refused. (i386 calls, `int 0x80`, have another audit arch and kill
/// the process.)
#[test]
#[cfg(target_arch = "x86_64")]
fn pr_09_x32_syscalls_are_refused_whatever_the_kernel() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("pr09x32");
    let r = s.launch(&[], "probe in x32");
    r.expect("in.getpid", "EPERM");
    r.expect("in.unshare", "EPERM");
    // Control: on the host the kernel answers (ENOSYS here, where x32 is not built in; a
    // result on a kernel with x32); the permission refusal is the filter's.
    let c = s.host_probe(&["host", "x32"]);
    for name in ["getpid", "unshare"] {
        assert_ne!(c.get(&format!("host.{name}")), "EPERM", "control: {name}");
    }
}

// ---------------------------------------------------------------------------------------
// Network off
// ---------------------------------------------------------------------------------------

const NO_NET: &[&str] = &["--network", "none"];
const HOST_NET: &[&str] = &["--network", "host"];

#[test]
fn net_01_only_loopback_and_no_route() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("net01");
    let r = s.launch(
        NO_NET,
        "echo \"routes=$(sed 1d /proc/net/route | wc -l)\"; \
         echo \"ifaces=$(sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')\"",
    );
    r.expect("routes", "0");
    assert_eq!(r.get("ifaces").trim(), "lo", "{}", r.text);
    // Control: the host has routes and another interface.
    let routes = read(Path::new("/proc/net/route"));
    assert!(routes.lines().count() > 1, "control: host routes");
}

#[test]
fn net_02_a_host_loopback_listener_is_unreachable() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("net02");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let r = s.launch(
        NO_NET,
        &format!(
            "probe py tcp 127.0.0.1 {port}; try bash bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'"
        ),
    );
    r.refused("py");
    r.refused("bash");
    // Control: the host connects.
    s.host_probe(&["host", "tcp", "127.0.0.1", &port])
        .expect("host", "ok");
}

#[test]
fn net_host_mode_loopback_tcp_stays_reachable_a_documented_residual_risk() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("nethost");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // With --network host the sandbox shares the host's loopback: this is the residual
    // risk docs/security.md names. If this starts failing, update the docs.
    let r = s.launch(HOST_NET, &format!("probe py tcp 127.0.0.1 {port}"));
    r.expect("py", "ok");
}

#[test]
fn net_03_dns_resolution_fails() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("net03");
    let r = s.launch(
        NO_NET,
        "try dns getent hosts example.com; try dns2 getent ahosts sandbox-deck-canary.example.org; \
         try local getent hosts localhost; try resolv test -e /etc/resolv.conf",
    );
    r.refused("dns");
    r.refused("dns2");
    // Control (no query leaves this machine): the resolver itself works inside and has its
    // config, so the failure is the missing network.
    r.expect("local", "ok");
    if Path::new("/etc/resolv.conf").exists() {
        r.expect("resolv", "ok");
    }
}

#[test]
fn net_04_external_tcp_is_unreachable() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("net04");
    // Inside, with no route, the connect fails before any packet is sent.
    let r = s.launch(NO_NET, "probe py tcp 1.1.1.1 80");
    assert!(
        r.get("py") == "ENETUNREACH" || r.get("py") == "EHOSTUNREACH",
        "{}",
        r.text
    );
    // Control without traffic: the host has a default route (never connect outside here).
    let has_default = read(Path::new("/proc/net/route"))
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"));
    if !has_default {
        eprintln!("note: this host has no default route; the control does not apply");
    }
}

#[test]
fn net_05_host_abstract_sockets_are_unreachable() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("net05");
    let x = HostX::start();
    let bus_name = format!("@sd-escape-bus-{}", unique());
    let bus = abstract_listener(&bus_name[1..]);
    let r = s.launch(
        NO_NET,
        &format!(
            "probe x uconnect {x}; probe bus uconnect {bus_name}; \
             echo \"listed=$(grep -c 'X{n}$' /proc/net/unix)\"",
            x = x.abstract_name(),
            n = x.number
        ),
    );
    r.refused("x");
    r.refused("bus");
    r.expect("listed", "0");
    // Control: the host reaches both.
    s.host_probe(&["host", "uconnect", &x.abstract_name()])
        .expect("host", "ok");
    s.host_probe(&["host", "uconnect", &bus_name])
        .expect("host", "ok");
    drop(bus);
}

// ---------------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------------

#[test]
fn dsp_01_the_host_display_is_unreachable_in_host_network_mode() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("dsp01");
    let x = HostX::start();
    if !landlock_scoping_or_skip() {
        return;
    }
    let r = s.launch(
        HOST_NET,
        &format!(
            "probe abstract uconnect {a}; try path test -e /tmp/.X11-unix/X{n}; \
             try xdpyinfo env DISPLAY=:{n} xdpyinfo",
            a = x.abstract_name(),
            n = x.number
        ),
    );
    r.expect("abstract", "EPERM");
    r.refused("path");
    r.refused("xdpyinfo");
    // Control: the host opens it.
    s.host_probe(&["host", "uconnect", &x.abstract_name()])
        .expect("host", "ok");
    assert!(host_xdpyinfo(x.number, Path::new("/nonexistent")));
}

#[test]
fn dsp_02_a_managed_sandbox_opens_its_own_display() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("dsp02");
    let record = s.create(
        "try xdpyinfo xdpyinfo > out-dsp02\n\
         echo \"display=$DISPLAY\" >> out-dsp02\n\
         echo \"hostcookie=$(grep -c '{tag}' ~/.Xauthority)\" >> out-dsp02\n"
            .replace("{tag}", &s.tag)
            .as_str(),
    );
    let display = record["display"].as_u64().unwrap();
    let r = Report {
        text: read(&s.project.join("out-dsp02")),
    };
    r.expect("xdpyinfo", "ok");
    r.expect("display", &format!(":{display}"));
    r.expect("hostcookie", "0");
    // Control: the host's cookie file holds the canary.
    assert!(read(&s.world.home.join(".Xauthority")).contains(&s.tag));
}

#[test]
fn dsp_03_the_sandbox_display_needs_its_cookie_and_has_no_abstract_socket() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("dsp03");
    let record = s.create("true");
    let display = record["display"].as_u64().unwrap() as u32;
    let id = record["id"].as_str().unwrap();
    let cookie = s
        .world
        .runtime
        .join("sandbox-deck/sandboxes")
        .join(id)
        .join("Xauthority");
    let unix = read(Path::new("/proc/net/unix"));
    assert!(
        !unix
            .lines()
            .any(|l| l.ends_with(&format!(" @/tmp/.X11-unix/X{display}"))),
        "the sandbox's Xvfb listens on an abstract socket"
    );
    assert!(
        unix.lines()
            .any(|l| l.ends_with(&format!(" /tmp/.X11-unix/X{display}"))),
        "control: its path socket is listed"
    );
    assert!(
        !host_xdpyinfo(display, Path::new("/nonexistent")),
        "opened without the cookie"
    );
    // Control: with the cookie it opens.
    assert!(host_xdpyinfo(display, &cookie), "control: with the cookie");
    // Another sandbox (same user, host network) cannot open it either.
    let other = Scene::new("dsp03-other");
    let r = other.launch(
        HOST_NET,
        &format!(
            "try path test -e /tmp/.X11-unix/X{display}; try open env DISPLAY=:{display} xdpyinfo"
        ),
    );
    r.refused("path");
    r.refused("open");
}

#[test]
fn dsp_04_no_host_display_or_x_credentials_cross() {
    if !prerequisites(TOOLS) {
        return;
    }
    let mut s = Scene::new("dsp04");
    let x = HostX::start();
    s.world
        .env
        .push(("DISPLAY".into(), format!(":{}", x.number)));
    let r = s.launch(
        &[],
        &format!(
            "echo \"display=${{DISPLAY:-unset}}\"; echo \"xauth=${{XAUTHORITY:-unset}}\"; \
             try cookie test -e ~/.Xauthority; try socket test -e /tmp/.X11-unix/X{}; \
             try open xdpyinfo -display :{}",
            x.number, x.number
        ),
    );
    r.expect("display", "unset");
    r.expect("xauth", "unset");
    r.refused("cookie");
    r.refused("socket");
    r.refused("open");
    // Control: the host's display and cookie are there.
    assert!(s.world.home.join(".Xauthority").exists());
    assert!(host_xdpyinfo(x.number, Path::new("/nonexistent")));
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

#[test]
fn sec_01_no_secret_of_the_launching_environment_crosses() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("sec01");
    let instance = s.spawn(&[], "env > env-dump");
    // Control: the launcher has them all.
    let launcher_env = read(Path::new(&format!("/proc/{}/environ", instance.pid())));
    assert!(launcher_env.contains(&s.tag));
    instance.release();
    let env = read(&s.project.join("env-dump"));
    assert!(env.contains("CLAUDE_SANDBOX=1"), "{env}");
    assert!(!env.contains(&s.tag), "secrets leaked:\n{env}");
    for key in SECRET_VARS {
        assert!(
            !env.lines().any(|l| l.starts_with(&format!("{key}="))),
            "{key}"
        );
    }
}

#[test]
fn sec_02_gh_token_only_with_gh_token_and_then_only_in_the_payload() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("sec02");
    let token = format!("{}-GH_TOKEN", s.tag);
    let body = "echo \"gh=${GH_TOKEN:-unset}\"; echo \"github=${GITHUB_TOKEN:-unset}\"; \
                echo \"pid1=$(tr '\\0' '\\n' </proc/1/environ | grep -c TOKEN)\"";
    let without = s.launch(&[], body);
    without.expect("gh", "unset");
    without.expect("github", "unset");
    let with = s.launch(&["--gh-token"], body);
    with.expect("gh", &token);
    with.expect("github", &token);
    with.expect("pid1", "0");
    // Not on any command line while it runs.
    let instance = s.spawn(&["--gh-token"], "echo \"$GH_TOKEN\" > token-seen");
    let ps = host_ps_args();
    instance.release();
    assert_eq!(read(&s.project.join("token-seen")).trim(), token);
    assert!(!ps.contains(&token), "the token is in host argv:\n{ps}");
}

#[test]
fn sec_03_no_ssh_agent_socket_is_reachable() {
    if !prerequisites(TOOLS) {
        return;
    }
    let mut s = Scene::new("sec03");
    let agent = s.world.path("agent.sock");
    let _listener = UnixListener::bind(&agent).unwrap();
    s.world
        .env
        .retain(|(k, _)| k != "SSH_AUTH_SOCK" && k != "SSH_AGENT_PID");
    s.world
        .env
        .push(("SSH_AUTH_SOCK".into(), agent.display().to_string()));
    let r = s.launch(
        &[],
        &format!(
            "echo \"sock=${{SSH_AUTH_SOCK:-unset}}\"; probe agent uconnect '{}'; \
             try sshadd env SSH_AUTH_SOCK='{}' ssh-add -l",
            agent.display(),
            agent.display()
        ),
    );
    r.expect("sock", "unset");
    r.refused("agent");
    r.refused("sshadd");
    // Control: the agent socket accepts on the host.
    s.host_probe(&["host", "uconnect", agent.to_str().unwrap()])
        .expect("host", "ok");
}

#[test]
fn sec_04_no_dbus_session_or_system_bus() {
    if !prerequisites(TOOLS) {
        return;
    }
    let mut s = Scene::new("sec04");
    let bus = s.world.path("bus");
    let _path_listener = UnixListener::bind(&bus).unwrap();
    let abstract_name = format!("sd-escape-dbus-{}", unique());
    let _abstract_listener = abstract_listener(&abstract_name);
    s.world.env.retain(|(k, _)| k != "DBUS_SESSION_BUS_ADDRESS");
    s.world.env.push((
        "DBUS_SESSION_BUS_ADDRESS".into(),
        format!("unix:path={};unix:abstract={abstract_name}", bus.display()),
    ));
    let landlock = landlock_abi() >= 6;
    let r = s.launch(
        &[],
        &format!(
            "echo \"addr=${{DBUS_SESSION_BUS_ADDRESS:-unset}}\"; probe path uconnect '{}'; \
             probe abs uconnect @{abstract_name}; try system test -e /run/dbus/system_bus_socket",
            bus.display()
        ),
    );
    r.expect("addr", "unset");
    r.refused("path");
    r.refused("system");
    if landlock {
        r.refused("abs");
    }
    // Control: both buses answer on the host.
    s.host_probe(&["host", "uconnect", bus.to_str().unwrap()])
        .expect("host", "ok");
    s.host_probe(&["host", "uconnect", &format!("@{abstract_name}")])
        .expect("host", "ok");
}

#[test]
fn sec_05_secrets_never_appear_in_host_argv() {
    if !prerequisites(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = "[bubblewrap]\nsecret_env = [\"ANTHROPIC_API_KEY\", \"AWS_SECRET_ACCESS_KEY\"]\n";
    let s = Scene::new("sec05");
    write(&s.world.path("config/sandbox-deck/config.toml"), config);
    let instance = s.spawn(
        &["--gh-token"],
        "echo \"$ANTHROPIC_API_KEY\" > seen-key; echo \"$GH_TOKEN\" > seen-gh",
    );
    let ps = host_ps_args();
    let cmdlines: String = descendants(instance.pid())
        .into_iter()
        .chain([instance.pid()])
        .map(|p| read(Path::new(&format!("/proc/{p}/cmdline"))))
        .collect();
    instance.release();
    assert_eq!(
        read(&s.project.join("seen-key")).trim(),
        format!("{}-ANTHROPIC_API_KEY", s.tag),
        "secret_env reaches the payload"
    );
    assert_eq!(
        read(&s.project.join("seen-gh")).trim(),
        format!("{}-GH_TOKEN", s.tag)
    );
    assert!(!ps.contains(&s.tag), "a secret is in host argv:\n{ps}");
    assert!(!cmdlines.contains(&s.tag));
    // Control: a host process with the secret in argv is seen by the same check.
    let marker = format!("{}-control", s.tag);
    let visible = Command::new("sh")
        .args(["-c", "sleep 30", &marker])
        .spawn_guarded();
    let seen = host_ps_args().contains(&marker);
    drop(visible);
    assert!(seen, "control: ps shows argv");
    drop(dir);
}

/// Every file below the host's `~/.claude` with its content, to compare before and after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            found.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    found.sort();
    found
}

/// What a sandbox plants in `~/.claude` for the host's Claude to run or load later. Each line
/// is `try LABEL …`; the same script, run on the host, is the negative control.
const CLAUDE_PLANTS: &str = r##"try config sh -c 'echo "{\"mcpServers\":{\"x\":{\"command\":\"touch\",\"args\":[\"/tmp/pwned\"]}}}" > ~/.claude/.config.json'
try local sh -c 'echo "#!/bin/sh" > ~/.claude/local/claude'
try snapshot sh -c 'mkdir -p ~/.claude/shell-snapshots && echo evil > ~/.claude/shell-snapshots/snapshot-bash-1.sh'
try sessionenv sh -c 'mkdir -p ~/.claude/session-env/s && echo evil > ~/.claude/session-env/s/hook-0.sh'
try ide sh -c 'mkdir -p ~/.claude/ide && echo evil > ~/.claude/ide/9999.lock'
try chrome sh -c 'mkdir -p ~/.claude/chrome && echo evil > ~/.claude/chrome/chrome-native-host'
try skill sh -c 'echo evil >> ~/.claude/skills/review/SKILL.md'
try newskill sh -c 'mkdir -p ~/.claude/skills/evil && echo evil > ~/.claude/skills/evil/SKILL.md'
try rule sh -c 'echo evil > ~/.claude/rules/evil.md'
try settings sh -c 'echo evil >> ~/.claude/settings.json'
try memory sh -c 'echo evil >> ~/.claude/CLAUDE.md'
try command sh -c 'echo evil > ~/.claude/commands/evil.md'
try agent sh -c 'echo evil > ~/.claude/agents/evil.md'
try hook sh -c 'echo evil > ~/.claude/hooks/evil.sh'
try movesettings mv ~/.claude/settings.json ~/.claude/moved.json
try moveskills mv ~/.claude/skills ~/.claude/skills-moved
"##;

#[test]
fn claude_01_nothing_the_hosts_claude_runs_or_loads_can_be_planted() {
    if !prerequisites(&["bwrap", "python3", "setpriv"]) {
        return;
    }
    for nobody in [false, true] {
        let s = Scene::new_as("claude01", nobody);
        let host_claude = s.world.home.join(".claude");
        let before = snapshot(&host_claude);
        let r = s.launch(
            &[],
            &format!(
                "{CLAUDE_PLANTS}echo \"uid=$(id -u)\"\necho \"prefs=$(cat ~/.claude/CLAUDE.md ~/.claude/skills/review/SKILL.md ~/.claude/rules/style.md | tr '\\n' ' ')\"\n"
            ),
        );
        // As root with a browser, the sandbox runs as ROOT_INSIDE_ID (Chromium refuses uid 0).
        let root_inside = if common::which("chromium").is_some() {
            sandbox_deck::backend::bubblewrap::ROOT_INSIDE_ID.to_string()
        } else {
            "0".to_string()
        };
        r.expect("uid", if nobody { "65534" } else { &root_inside });
        // The preferences are there to read, and not one of them could be written.
        let prefs = r.get("prefs");
        for part in ["memory", "skill", "rule"] {
            assert!(prefs.contains(&format!("{}-{part}", s.tag)), "{}", r.text);
        }
        for key in [
            "skill",
            "newskill",
            "rule",
            "settings",
            "memory",
            "command",
            "agent",
            "hook",
            "movesettings",
            "moveskills",
        ] {
            r.refused(key);
        }
        // Entries the host's Claude owns were written privately, if at all: the host's
        // ~/.claude is what it was, plus this project's (empty) transcript dir.
        let after = snapshot(&host_claude);
        let added: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
        let transcripts = host_claude.join("projects").join(encoded(&s.project));
        assert_eq!(
            added,
            [&(transcripts, vec![])],
            "as {}: the sandbox changed the host's ~/.claude",
            if nobody { "nobody" } else { "root" }
        );
        // Control: the same plants, run on the host, land and change what its Claude runs.
        let control = s.on_host(CLAUDE_PLANTS);
        for key in [
            "config",
            "local",
            "snapshot",
            "sessionenv",
            "ide",
            "skill",
            "rule",
            "hook",
        ] {
            control.expect(key, "ok");
        }
        assert!(host_claude.join(".config.json").exists());
        assert!(read(&host_claude.join("rules/evil.md")).contains("evil"));
        assert!(!read(&host_claude.join("local/claude")).contains("host-claude"));
    }
}

/// Claude's name for a project's transcript dir: every character outside [A-Za-z0-9] is `-`.
fn encoded(project: &Path) -> String {
    sandbox_deck::usage::encode_project_dir(project)
}

#[test]
fn claude_02_other_projects_and_the_hosts_sessions_are_invisible() {
    if !prerequisites(&["bwrap", "python3", "setpriv"]) {
        return;
    }
    for nobody in [false, true] {
        let s = Scene::new_as("claude02", nobody);
        let host_claude = s.world.home.join(".claude");
        let other = host_claude.join("projects/-elsewhere-other/s.jsonl");
        let body = "try transcript cat ~/.claude/projects/-elsewhere-other/s.jsonl\n\
             try history cat ~/.claude/history.jsonl\n\
             try todos cat ~/.claude/todos/t.json\n\
             try backups cat ~/.claude/backups/.claude.json.backup\n\
             try idelock cat ~/.claude/ide/1234.lock\n\
             echo \"projects=$(ls -A ~/.claude/projects | tr '\\n' ' ')\"\n\
             try writeother sh -c 'mkdir -p ~/.claude/projects/-elsewhere-other && echo evil > ~/.claude/projects/-elsewhere-other/s.jsonl'\n\
             try writehistory sh -c 'echo evil >> ~/.claude/history.jsonl'\n\
             echo \"json=$(tr -d ' \\n' < ~/.claude.json)\"\n\
             cat ~/.claude/projects/*/*.jsonl ~/.claude/history.jsonl ~/.claude/todos/* 2>/dev/null\n";
        let r = s.launch(&[], body);
        for key in ["transcript", "history", "todos", "backups", "idelock"] {
            r.refused(key);
        }
        assert_eq!(r.get("projects").trim(), encoded(&s.project), "{}", r.text);
        let json = r.get("json");
        for secret in ["other-mcp", "user-mcp", "/elsewhere/other"] {
            assert!(!json.contains(secret), "{secret} in the copy: {json}");
        }
        assert!(json.contains("\"theme\":\"light\""), "{json}");
        for leak in ["history", "other-transcript", "todo", "backup", "ide"] {
            assert!(
                !r.stdout().contains(&format!("{}-{leak}", s.tag)),
                "{leak} leaked:\n{}",
                r.text
            );
        }
        // Writes went to the sandbox's own ~/.claude, never to the host's files.
        assert!(read(&other).contains("other-transcript"));
        assert!(!read(&host_claude.join("history.jsonl")).contains("evil"));
        // Control: the host reads all of it.
        let control = s.on_host(body);
        for key in ["transcript", "history", "todos", "backups", "idelock"] {
            control.expect(key, "ok");
        }
        assert!(control.get("json").contains("other-mcp"));
        // A whole copy of ~/.claude.json left in the project state by an older version (other
        // projects' secrets in it) is deleted at the next launch.
        let states = s.world.path("state/sandbox-deck/projects");
        let state = std::fs::read_dir(&states)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let legacy = state.join("claude.json");
        std::fs::copy(s.world.home.join(".claude.json"), &legacy).unwrap();
        assert!(
            read(&legacy).contains("other-mcp"),
            "control: the old copy holds it"
        );
        s.launch(&[], "true");
        assert!(!legacy.exists(), "the old whole copy is still there");
    }
}

#[test]
fn claude_03_own_transcripts_and_the_login_are_shared_and_nothing_else_is() {
    if !prerequisites(&["bwrap", "python3", "setpriv"]) {
        return;
    }
    for nobody in [false, true] {
        let s = Scene::new_as("claude03", nobody);
        let host_claude = s.world.home.join(".claude");
        let credentials = host_claude.join(".credentials.json");
        let own = host_claude.join("projects").join(encoded(&s.project));
        // Claude's own token refresh: a temp file renamed over the credentials, and on
        // EBUSY (a mount point) its content copied in place.
        let body = "echo \"token=$(grep -c token ~/.claude/.credentials.json)\"\n\
             echo '{\"claudeAiOauth\":{\"accessToken\":\"refreshed\"}}' > ~/.claude/.credentials.json.tmp.1\n\
             try rename mv ~/.claude/.credentials.json.tmp.1 ~/.claude/.credentials.json\n\
             try copy cp ~/.claude/.credentials.json.tmp.1 ~/.claude/.credentials.json\n\
             try replace ln -sf /etc/passwd ~/.claude/.credentials.json\n\
             try remove rm -f ~/.claude/.credentials.json\n\
             try transcript sh -c \"echo '{\\\"type\\\":\\\"user\\\"}' > ~/.claude/projects/$(ls ~/.claude/projects)/inside.jsonl\"\n\
             try unknown sh -c 'mkdir -p ~/.claude/some-future-dir && echo x > ~/.claude/some-future-dir/f'\n\
             echo \"kept=$(cat ~/.claude/some-future-dir/f 2>/dev/null)\"\n";
        let r = s.launch(&[], body);
        r.expect("token", "1");
        r.refused("rename");
        r.expect("copy", "ok");
        r.refused("replace");
        r.refused("remove");
        r.expect("transcript", "ok");
        r.expect("unknown", "ok");
        assert!(
            read(&credentials).contains("refreshed"),
            "refresh reached the host"
        );
        assert!(
            std::fs::symlink_metadata(&credentials).unwrap().is_file(),
            "the credentials file is still a plain file"
        );
        assert!(
            read(&own.join("inside.jsonl")).contains("user"),
            "transcript at the host path"
        );
        assert!(
            !host_claude.join("some-future-dir").exists(),
            "unknown entries stay private"
        );
        // They persist for the project's next sandbox.
        let again = s.launch(&[], "echo \"kept=$(cat ~/.claude/some-future-dir/f)\"");
        again.expect("kept", "x");
        // Control: on the host the credentials can be replaced, and a new entry lands.
        let control = s.on_host(
            "try replace ln -sf /etc/passwd ~/.claude/.credentials.json\n\
             try unknown sh -c 'mkdir -p ~/.claude/some-future-dir && echo x > ~/.claude/some-future-dir/f'\n",
        );
        control.expect("replace", "ok");
        control.expect("unknown", "ok");
        assert!(host_claude.join("some-future-dir/f").exists());
    }
}

// ---------------------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------------------

#[test]
fn cln_01_killing_the_launcher_leaves_no_sandbox_process() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("cln01");
    let marker = format!("600.{}", unique());
    let mut instance = s.spawn(&[], &format!("sleep {marker} &"));
    let tree = descendants(instance.pid());
    assert!(!with_marker(&marker).is_empty(), "control: the marker runs");
    instance.child.kill().unwrap();
    instance.child.wait().unwrap();
    wait_for("the sandbox to die", Duration::from_secs(5), || {
        tree.iter().all(|p| !is_running(*p)) && with_marker(&marker).is_empty()
    });
}

#[test]
fn cln_02_killing_bwrap_leaves_no_payload() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("cln02");
    let marker = format!("600.{}", unique());
    let instance = s.spawn(&[], &format!("sleep {marker} &"));
    let tree = descendants(instance.pid());
    let bwrap = tree
        .iter()
        .copied()
        .find(|p| parent(*p) == Some(instance.pid()) && comm(*p) == "bwrap")
        .expect("the launcher's bwrap");
    assert!(!with_marker(&marker).is_empty(), "control: the marker runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bwrap as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the payload to die", Duration::from_secs(5), || {
        tree.iter().all(|p| !is_running(*p)) && with_marker(&marker).is_empty()
    });
    drop(instance);
}

#[test]
fn cln_03_stop_from_another_process_ends_every_process_of_the_sandbox() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("cln03");
    let marker = format!("600.{}", unique());
    let mut instance = s.spawn(
        &[],
        &format!("sleep {marker} & (sleep {marker} &) ; sh -c 'sleep {marker}' &"),
    );
    let tree = descendants(instance.pid());
    assert!(with_marker(&marker).len() >= 3, "control: the markers run");
    succeed(
        s.world
            .command()
            .args(["launch", "bubblewrap", s.p(), "--stop"]),
    );
    instance.child.wait().unwrap();
    wait_for("every process to end", Duration::from_secs(5), || {
        tree.iter().all(|p| !is_running(*p)) && with_marker(&marker).is_empty()
    });
    assert!(s.world.list().is_empty());
}

#[test]
fn cln_04_no_mount_is_left_on_the_host() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("cln04");
    let before = mountinfo_lines("self");
    let instance = s.spawn(&[], "true");
    let payload = descendants(instance.pid())
        .into_iter()
        .find(|p| comm(*p) != "bwrap")
        .expect("the payload");
    let inside = mountinfo_lines(&payload.to_string());
    let during = mountinfo_lines("self");
    instance.release();
    let after = mountinfo_lines("self");
    // Control: the sandbox has its own, different mount table while it runs.
    assert!(
        inside > 0 && inside != before,
        "control: {inside} vs {before}"
    );
    assert_eq!(
        during, before,
        "the host's mount table changed while it ran"
    );
    assert_eq!(after, before, "mounts left on the host");
}

#[test]
fn cln_05_stop_removes_the_display_lock_and_socket() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("cln05");
    let record = s.create("true");
    let display = record["display"].as_u64().unwrap();
    let name = record["name"].as_str().unwrap();
    let lock = PathBuf::from(format!("/tmp/.X{display}-lock"));
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
    // Control: both exist while it runs.
    assert!(lock.exists() && socket.exists());
    let xvfb = record["xvfb"]["pid"].as_u64().unwrap() as u32;
    s.world.json(&["stop", name]);
    assert!(!is_running(xvfb), "Xvfb survived stop");
    assert!(!lock.exists(), "{} left", lock.display());
    assert!(!socket.exists(), "{} left", socket.display());
}

#[test]
fn cln_06_the_launcher_leaves_no_zombie_while_it_runs() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("cln06");
    let instance = s.spawn(
        &[],
        "for i in 1 2 3 4; do sh -c 'exit 0' & done; (sh -c 'sleep 0.1' &); (true &); sleep 0.4",
    );
    std::thread::sleep(Duration::from_millis(100));
    let launcher_children = children(instance.pid());
    assert!(!launcher_children.is_empty());
    let zombies = zombies_under(instance.pid());
    assert!(
        zombies.is_empty(),
        "zombies under the launcher: {zombies:?}"
    );
    instance.release();
    // Control: the same search finds the zombie of a parent that never reaps.
    let careless = Command::new("sh")
        .args(["-c", "sleep 0 & exec sleep 30"])
        .spawn_guarded();
    let pid = careless.id();
    let mut found = Vec::new();
    wait_for("a zombie", Duration::from_secs(5), || {
        found = zombies_under(pid);
        !found.is_empty()
    });
}

// ---------------------------------------------------------------------------------------
// Join and enter
// ---------------------------------------------------------------------------------------

#[test]
fn join_runs_inside_the_running_instance() {
    if !prerequisites(TOOLS) || !prerequisites(&["nsenter"]) {
        return;
    }
    let s = Scene::new("joinme");
    let marker = unique();
    let instance = s.spawn(&[], &format!("echo {marker} > /tmp/join-marker"));
    let out = s
        .world
        .command()
        .args(["launch", "bubblewrap", s.p(), "--shell", "--", "sh", "-c"])
        .arg(
            "echo \"pid1=$(head -1 /proc/1/status | cut -f2)\"; echo \"host=$(hostname)\"; \
             echo \"pwd=$(pwd)\"; echo \"marker=$(cat /tmp/join-marker)\"",
        )
        .output()
        .unwrap();
    let r = Report::of(&out);
    let listed = s.world.list().len();
    instance.release();
    assert!(out.status.success(), "{}", r.text);
    assert!(r.text.contains("joining"), "{}", r.text);
    r.expect("pid1", "bwrap");
    r.expect("host", "joinme");
    r.expect("pwd", s.p());
    r.expect("marker", &marker);
    assert_eq!(listed, 1, "a join registers no second instance");
    // Control: the marker is not in the host's /tmp.
    assert!(!Path::new("/tmp/join-marker").exists());
}

#[test]
fn join_is_confined_like_the_instance() {
    if !prerequisites(TOOLS) || !prerequisites(&["nsenter"]) {
        return;
    }
    let s = Scene::new("joinconf");
    let canary = CanaryProcess::start();
    let instance = s.spawn(&[], "true");
    let script = s.script(&format!(
        "echo \"seccomp=$(grep Seccomp: /proc/self/status | cut -f2)\"; \
         echo \"nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)\"; \
         for f in CapInh CapPrm CapEff CapBnd CapAmb; do \
           echo \"$f=$(grep \"^$f:\" /proc/self/status | cut -f2)\"; done; \
         try canary cat '{}'; try pid test -e /proc/{pid}; try kill kill -0 {pid}; \
         echo \"leak=$(env | grep -c '{tag}')\"",
        s.canary.display(),
        pid = canary.pid(),
        tag = s.tag
    ));
    let out = s
        .world
        .command()
        .args(["launch", "bubblewrap", s.p(), "--shell", "--", "sh", "-c"])
        .arg(&script)
        .output()
        .unwrap();
    instance.release();
    let r = Report::of(&out);
    r.expect("seccomp", "2");
    r.expect("nnp", "1");
    // Joining the sandbox's user namespace grants every capability in it: all are dropped,
    // the bounding set and the ambient one too, so nothing can come back on exec.
    for f in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        r.expect(f, "0000000000000000");
    }
    r.refused("canary");
    r.refused("pid");
    r.refused("kill");
    r.expect("leak", "0");
    assert!(is_running(canary.pid()));
}

#[test]
fn enter_opens_a_shell_inside_the_running_instance() {
    if !prerequisites(TOOLS) || !prerequisites(&["nsenter"]) {
        return;
    }
    let s = Scene::new("enterme");
    let marker = unique();
    let instance = s.spawn(&[], &format!("echo {marker} > /tmp/enter-marker"));
    let mut enter = s
        .world
        .command()
        .args(["launch", "bubblewrap", s.p(), "--enter"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    enter
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "echo \"host=$(hostname)\"; echo \"pwd=$(pwd)\"; echo \"marker=$(cat /tmp/enter-marker)\"; \
                 echo \"seccomp=$(grep Seccomp: /proc/self/status | cut -f2)\"; \
                 cat '{}' >/dev/null 2>&1 && echo canary=ok || echo canary=refused\n",
                s.canary.display()
            )
            .as_bytes(),
        )
        .unwrap();
    let out = enter.wait_with_output().unwrap();
    let listed = s.world.list().len();
    instance.release();
    let r = Report::of(&out);
    assert!(out.status.success(), "{}", r.text);
    r.expect("host", "enterme");
    r.expect("pwd", s.p());
    r.expect("marker", &marker);
    r.expect("seccomp", "2");
    r.expect("canary", "refused");
    assert_eq!(listed, 1, "entering registers nothing");
}

// ---------------------------------------------------------------------------------------------
// The git dir by allowlist (docs/security.md, "The project's git dir"). Each attack plants
// something the host's git reads and then runs: `core.fsmonitor` (run by `git status`) or a
// hook (run by `git commit`), both touching a marker outside the project. Every case runs
// inside a sandbox (as ourselves and, when we are root, as `nobody`), then the host's git
// must not touch the marker; the control runs the same script on the host and it must.

/// Who runs the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum User {
    Me,
    Nobody,
}

/// Ourselves, and `nobody` too when we are root (CI): the unprivileged path real users take.
fn users() -> Vec<User> {
    if nix::unistd::geteuid().is_root() && which("setpriv").is_some() {
        vec![User::Me, User::Nobody]
    } else {
        vec![User::Me]
    }
}

const GIT_TOOLS: &[&str] = &["bwrap", "git"];

/// A world with a real repository as the project, and a marker the attacks try to touch.
struct GitLab {
    world: World,
    project: PathBuf,
    marker: PathBuf,
    user: User,
}

impl GitLab {
    /// A project `name` under the home, its repository made by `setup` (a host shell script
    /// run in the project's parent, `$P` the project).
    fn new(user: User, name: &str, setup: &str) -> GitLab {
        let world = World::new();
        let project = world.home.join("code").join(name);
        std::fs::create_dir_all(project.parent().unwrap()).unwrap();
        let marker = world.path(&format!("marker-{}", unique()));
        let lab = GitLab {
            world,
            project,
            marker,
            user,
        };
        let out = lab.host_sh(project_parent(&lab.project), setup);
        assert!(out.status.success(), "setup: {}", Report::of(&out).text);
        lab
    }

    fn p(&self) -> &str {
        self.project.to_str().unwrap()
    }

    /// The environment every script and git gets: `$P` the project, `$M` the marker, `$FSMON`
    /// a config line that runs the marker command, and a committer.
    fn env(&self, c: &mut Command) {
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.world.home)
            .env("P", &self.project)
            .env("M", &self.marker)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .env("GIT_CONFIG_COUNT", "2")
            // The world belongs to nobody in the unprivileged runs; we are its root.
            .env("GIT_CONFIG_KEY_0", "safe.directory")
            .env("GIT_CONFIG_VALUE_0", "*")
            .env("GIT_CONFIG_KEY_1", "protocol.file.allow")
            .env("GIT_CONFIG_VALUE_1", "always");
    }

    /// A shell script on the host, in `dir`.
    fn host_sh(&self, dir: &Path, script: &str) -> Output {
        let mut c = Command::new("sh");
        self.env(&mut c);
        c.current_dir(dir).args(["-c", script]).output().unwrap()
    }

    /// A host script's trimmed stdout, run in the project.
    fn host_stdout(&self, script: &str) -> String {
        let out = self.host_sh(&self.project, script);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The same script inside a sandbox of the project, to its end.
    fn inside(&self, script: &str) -> Report {
        let prelude = format!(
            "P='{}'; M='{}'; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org \
             GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org\n{PRELUDE}",
            self.p(),
            self.marker.display()
        );
        let out = self
            .launch_shell(&format!("{prelude}{script}"))
            .output()
            .unwrap();
        // The helper's last round follows the sandbox's end.
        std::thread::sleep(Duration::from_millis(600));
        Report::of(&out)
    }

    /// The deck run as this lab's user with `args`.
    /// A new bubblewrap sandbox of the lab's project, as the lab's user, running `script`.
    fn launch_shell(&self, script: &str) -> Command {
        self.inside_command(&[
            "launch",
            "bubblewrap",
            "--new",
            self.p(),
            "--shell",
            "--",
            "sh",
            "-c",
            script,
        ])
    }

    fn inside_command(&self, args: &[&str]) -> Command {
        match self.user {
            User::Me => {
                let mut c = self.world.command();
                c.args(args);
                c
            }
            User::Nobody => self.world.as_nobody()(args),
        }
    }

    /// Whether running `git ARGS` on the host in `dir` touched the marker.
    fn host_git_runs_marker(&self, dir: &Path, args: &[&str]) -> bool {
        let _ = std::fs::remove_file(&self.marker);
        let mut c = Command::new("git");
        self.env(&mut c);
        let _ = c.current_dir(dir).args(args).output().unwrap();
        self.marker.exists()
    }

    /// Runs `attack` inside (refused) and shows with the host's `git ARGS` in `dir` that
    /// nothing of it reached the host; then runs it on the host of `control` (a lab made the
    /// same way) and shows that it would have.
    fn attack(&self, control: &GitLab, case: &str, attack: &str, dir: &Path, git: &[&str]) {
        assert!(
            !self.host_git_runs_marker(dir, git),
            "{case}: the marker runs before any attack"
        );
        let r = self.inside(attack);
        assert!(
            !self.host_git_runs_marker(dir, git),
            "{case}: the host's git ran what the sandbox planted:\n{}",
            r.text
        );
        let out = control.host_sh(&control.project, attack);
        let control_dir = control
            .project
            .join(dir.strip_prefix(&self.project).unwrap());
        assert!(
            control.host_git_runs_marker(&control_dir, git),
            "{case}: control: the same attack on the host did not run the marker, so the test \
             proves nothing:\n{}",
            Report::of(&out).text
        );
    }
}

fn project_parent(project: &Path) -> &Path {
    project.parent().unwrap()
}

/// A repository with one commit at `$P`.
const ONE_COMMIT: &str = "git init -q -b main \"$P\" && cd \"$P\" && echo a > a && git add a && \
                          git commit -qm first";

/// A config that runs the marker on `git status`.
const FSMON_CONFIG: &str = "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = \
                            touch %s; false\\n' \"$M\"";

/// A `pre-commit` hook in `dir` that touches the marker.
fn hook_script(dir: &str) -> String {
    format!(
        "mkdir -p {dir} 2>/dev/null; printf '#!/bin/sh\\ntouch %s\\n' \"$M\" > \
         {dir}/pre-commit && chmod +x {dir}/pre-commit"
    )
}

fn git_lab_cases(name: &str, setup: &str, cases: &[(&str, &str)], git: &[&str]) {
    for user in users() {
        for (case, attack) in cases {
            let lab = GitLab::new(user, name, setup);
            let control = GitLab::new(User::Me, name, setup);
            lab.attack(
                &control,
                &format!("{user:?} {case}"),
                attack,
                &lab.project,
                git,
            );
        }
    }
}

#[test]
fn git_01_commondir_cannot_point_the_host_at_a_config_the_sandbox_wrote() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    let evil_common = format!(
        "mkdir -p \"$D\" && cp -r .git/objects .git/refs \"$D\"/ && {FSMON_CONFIG} > \"$D/config\""
    );
    git_lab_cases(
        "commondir",
        ONE_COMMIT,
        &[
            (
                "relative",
                &format!("D=\"$P/evil\"; {evil_common} && echo ../evil > .git/commondir"),
            ),
            (
                "absolute",
                &format!("D=\"$P/evil\"; {evil_common} && echo \"$D\" > .git/commondir"),
            ),
            (
                "inside .git",
                &format!("D=\"$P/.git/evil\"; {evil_common} && echo evil > .git/commondir"),
            ),
        ],
        &["status"],
    );
}

#[test]
fn git_02_config_worktree_is_read_only_with_worktree_config_on() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    let worktree_config = format!(
        "{ONE_COMMIT} && git config core.repositoryformatversion 1 && \
         git config extensions.worktreeConfig true"
    );
    let with_file = format!("{worktree_config} && git config --worktree core.sparseCheckout false");
    for (setup, what) in [(&worktree_config, "absent"), (&with_file, "present")] {
        git_lab_cases(
            &format!("wtconfig-{what}"),
            setup,
            &[
                ("written", &format!("{FSMON_CONFIG} > .git/config.worktree")),
                (
                    "git config --worktree",
                    "git config --worktree core.fsmonitor \"touch $M; false\"",
                ),
            ],
            &["status"],
        );
    }
}

#[test]
fn git_03_submodule_git_dirs_and_gitlinks_stay_the_hosts() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // A submodule at `sub` with a dirty file, so the host's `git status` looks into it.
    let setup = format!(
        "git init -q -b main lib && (cd lib && echo l > l && git add l && git commit -qm lib) && \
         {ONE_COMMIT} && git submodule add -q \"$P/../lib\" sub && git commit -qm sub && \
         echo dirty >> sub/l"
    );
    let evil_sub = "cp -r .git/modules/sub \"$P/evilsub\" && git config --file \"$P/evilsub/config\" \
         core.worktree ../sub && git config --file \"$P/evilsub/config\" core.fsmonitor \"touch $M; false\"";
    // A repository the sandbox made, then tied in with a gitlink of its own.
    let nested = "git init -q nested && (cd nested && echo n > n && git add n && git commit -qm n \
                  && git config core.fsmonitor \"touch $M; false\" && echo d >> n) && \
                  git update-index --add --cacheinfo 160000,$(git -C nested rev-parse HEAD),nested";
    git_lab_cases(
        "submodule",
        &setup,
        &[
            (
                "modules/sub/config",
                "git --git-dir=.git/modules/sub config core.fsmonitor \"touch $M; false\"",
            ),
            (
                "sub/.git rewritten",
                &format!("{evil_sub} && echo 'gitdir: ../evilsub' > sub/.git"),
            ),
            (
                "sub moved aside",
                &format!(
                    "{evil_sub} && mv sub sub-old && mkdir sub && cp sub-old/l sub/ && \
                     echo 'gitdir: ../evilsub' > sub/.git"
                ),
            ),
            ("a new gitlink in the index", nested),
        ],
        &["status"],
    );
}

#[test]
fn git_04_a_linked_worktree_keeps_its_git_file_gitdir_and_common_dir() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // The main repository outside the home (`$P` is <root>/home/code/NAME), the project a
    // linked worktree of it.
    let setup = "git init -q -b main ../../main && cd ../../main && echo a > a && \
                 git add a && git commit -qm first && git worktree add -q -b wt \"$P\"";
    let common = "$(git rev-parse --git-common-dir)";
    let gitdir = "$(git rev-parse --git-dir)";
    let evil_git = format!(
        "cp -r {common} \"$P/evilgit\" && rm -rf \"$P/evilgit/worktrees\" && \
         git config --file \"$P/evilgit/config\" core.worktree \"$P\" && \
         git config --file \"$P/evilgit/config\" core.fsmonitor \"touch $M; false\""
    );
    git_lab_cases(
        "linked",
        setup,
        &[
            (
                ".git file rewritten",
                &format!("{evil_git} && echo \"gitdir: $P/evilgit\" > .git"),
            ),
            (
                ".git file replaced",
                &format!("{evil_git} && mv .git .git-old && echo \"gitdir: $P/evilgit\" > .git"),
            ),
            (
                "the common config",
                "git config core.fsmonitor \"touch $M; false\"",
            ),
            (
                "the worktree's commondir",
                &format!("{evil_git} && echo \"$P/evilgit\" > {gitdir}/commondir"),
            ),
        ],
        &["status"],
    );
    // Everyday work in the worktree reaches the main repository.
    let lab = GitLab::new(User::Me, "linked-work", setup);
    let r = lab.inside(
        "echo b > b && git add b && git commit -qm from-the-sandbox && echo commit=ok\n\
         git switch -q -c wt2 && echo switch=ok\n",
    );
    r.expect("commit", "ok");
    r.expect("switch", "ok");
    let main = lab.world.path("main");
    let log = lab.host_sh(&main, "git log --format=%s wt2");
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("from-the-sandbox"),
        "{}",
        r.text
    );
    let head = lab.host_sh(&lab.project, "git symbolic-ref HEAD");
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        "refs/heads/wt2"
    );
}

#[test]
fn git_05_a_hooks_path_into_the_project_is_read_only() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    let commit = ["commit", "-q", "--allow-empty", "-m", "x"];
    // Hooks in the project root cannot be made read-only: the launch is refused.
    let lab = GitLab::new(
        User::Me,
        "hooksroot",
        &format!("{ONE_COMMIT} && git config core.hooksPath ."),
    );
    let r = lab.inside(&format!("{}\necho ran=yes", hook_script(".")));
    assert!(!r.stdout().contains("ran=yes"), "{}", r.text);
    assert!(r.text.contains("core.hooksPath"), "{}", r.text);
    assert!(!lab.host_git_runs_marker(&lab.project, &commit));
    for (setup_dir, dir) in [(".githooks", ".githooks"), ("", ".husky/_")] {
        let setup = format!(
            "{ONE_COMMIT} && {} git config core.hooksPath {dir}",
            if setup_dir.is_empty() {
                String::new()
            } else {
                format!("mkdir {setup_dir} &&")
            }
        );
        let top = dir.split('/').next().unwrap();
        for user in users() {
            for (case, attack) in [
                ("written", hook_script(dir)),
                (
                    "moved aside",
                    format!("mv {top} {top}-old 2>/dev/null; {}", hook_script(dir)),
                ),
            ] {
                let lab = GitLab::new(user, "hookspath", &setup);
                let control = GitLab::new(User::Me, "hookspath", &setup);
                lab.attack(
                    &control,
                    &format!("{user:?} {dir} {case}"),
                    &attack,
                    &lab.project,
                    &commit,
                );
            }
        }
    }
}

#[test]
fn git_06_git_at_the_root_cannot_be_replaced_renamed_or_created() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    let evil_repo = format!("git init -q . && {FSMON_CONFIG} >> .git/config");
    git_lab_cases(
        "root",
        ONE_COMMIT,
        &[
            ("renamed", &format!("mv .git .git-old && {evil_repo}")),
            ("removed", &format!("rm -rf .git; {evil_repo}")),
            (
                "replaced by a file",
                &format!(
                    "git init -q --bare \"$P/evil.git\" && {FSMON_CONFIG} >> \"$P/evil.git/config\" && \
                     git --git-dir=\"$P/evil.git\" config core.bare false && \
                     rm -rf .git; mv .git .git-old; echo \"gitdir: $P/evil.git\" > .git"
                ),
            ),
        ],
        &["status"],
    );
    // No repository at all: one made inside stays inside (and keeps working there).
    git_lab_cases(
        "norepo",
        "mkdir -p \"$P\" && echo a > \"$P/a\"",
        &[("created", &evil_repo)],
        &["status"],
    );
    for user in users() {
        let lab = GitLab::new(user, "private-repo", "mkdir -p \"$P\"");
        let first = lab.inside(
            "git init -q && echo a > a && git add a && git commit -qm inside && echo made=ok",
        );
        first.expect("made", "ok");
        let again = lab.inside("echo \"log=$(git log --format=%s)\"");
        again.expect("log", "inside");
        assert_eq!(
            std::fs::read_dir(lab.project.join(".git")).unwrap().count(),
            0,
            "{user:?}: the host's .git is the empty mount point"
        );
        let status = lab.host_sh(&lab.project, "git status");
        assert!(
            !status.status.success(),
            "{user:?}: the host sees no repository"
        );
    }
}

#[test]
fn git_07_hooks_and_info_stay_the_hosts_present_or_not() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    let commit = ["commit", "-q", "--allow-empty", "-m", "x"];
    for (what, setup, dir) in [
        ("present", ONE_COMMIT.to_owned(), ".git/hooks"),
        (
            "absent",
            format!("{ONE_COMMIT} && rm -rf .git/hooks"),
            ".git/hooks",
        ),
        // The host's hooks dir is a symlink into the project: its target is what git runs.
        (
            "a symlink into the project",
            format!(
                "{ONE_COMMIT} && rm -rf .git/hooks && mkdir .githooks && ln -s ../.githooks .git/hooks"
            ),
            ".githooks",
        ),
    ] {
        for user in users() {
            let lab = GitLab::new(user, "hooks", &setup);
            let control = GitLab::new(User::Me, "hooks", &setup);
            let case = format!("{user:?} hooks {what}");
            lab.attack(&control, &case, &hook_script(dir), &lab.project, &commit);
        }
    }
    // info/exclude hides what the sandbox planted from the host's `git status`.
    for (what, setup) in [
        ("present", ONE_COMMIT.to_owned()),
        ("absent", format!("{ONE_COMMIT} && rm -rf .git/info")),
    ] {
        for user in users() {
            let lab = GitLab::new(user, "info", &setup);
            let attack = "mkdir -p .git/info 2>/dev/null; echo planted.sh >> .git/info/exclude";
            let r = lab.inside(&format!("{attack}\necho x > planted.sh\n"));
            let status = lab.host_sh(&lab.project, "git status --porcelain");
            assert!(
                String::from_utf8_lossy(&status.stdout).contains("planted.sh"),
                "{user:?} info {what}: the planted file was hidden from the host:\n{}",
                r.text
            );
            lab.host_sh(&lab.project, attack);
            let status = lab.host_sh(&lab.project, "git status --porcelain");
            assert!(
                !String::from_utf8_lossy(&status.stdout).contains("planted.sh"),
                "{user:?} info {what}: control: the same exclude on the host hides it"
            );
        }
    }
}

#[test]
fn git_08_everyday_git_works_inside_and_the_host_sees_commits_head_and_index() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    for user in users() {
        let lab = GitLab::new(user, "everyday", ONE_COMMIT);
        let r = lab.inside(
            "try status git status\n\
             echo b >> a; try add git add a\n\
             try commit git commit -qm second\n\
             try switch git switch -q -c feature\n\
             echo f > f; git add f; try commit2 git commit -qm feature-work\n\
             try back git switch -q main\n\
             echo m > m; git add m; git commit -qm main-work\n\
             try merge git merge -q --no-edit feature\n\
             git switch -q -c topic; echo t > t; git add t; git commit -qm topic-work\n\
             try rebase git rebase -q main\n\
             echo s >> a; try stash git stash -q; try pop git stash pop -q\n\
             git commit -qam stashed-work\n\
             git branch gone; try branch-d git branch -d gone\n\
             try gc git gc -q\n\
             echo staged > staged; git add staged\n",
        );
        for key in [
            "status", "add", "commit", "switch", "commit2", "back", "merge", "rebase", "stash",
            "pop", "branch-d", "gc",
        ] {
            r.expect(key, "ok");
        }
        let host = |script: &str| lab.host_stdout(script);
        assert_eq!(
            host("git symbolic-ref HEAD"),
            "refs/heads/topic",
            "{user:?}: HEAD"
        );
        let log = host("git log --format=%s");
        for subject in [
            "stashed-work",
            "topic-work",
            "main-work",
            "feature-work",
            "second",
        ] {
            assert!(
                log.contains(subject),
                "{user:?}: {subject} missing from\n{log}"
            );
        }
        assert_eq!(
            host("git diff --cached --name-only"),
            "staged",
            "{user:?}: index"
        );
        assert_eq!(host("git branch --list gone"), "", "{user:?}: packed-refs");
        assert_eq!(
            host("git status --porcelain"),
            "A  staged",
            "{user:?}: status"
        );
    }
}

#[test]
fn git_09_a_managed_sandboxs_commits_head_and_index_reach_the_host_while_it_runs() {
    if !prerequisites(&["bwrap", "git", "tmux", "Xvfb"]) {
        return;
    }
    let lab = GitLab::new(User::Me, "live", ONE_COMMIT);
    let go = lab.project.join("go");
    let script = "git switch -q -c live && echo l > l && git add l && git commit -qm live-work \
                  && echo s > s && git add s && touch done; \
                  while [ ! -e go ]; do sleep 0.1; done";
    let created = lab.world.json(&[
        "create",
        lab.p(),
        "--shell",
        "--",
        "sh",
        "-c",
        &format!(
            "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t \
             GIT_COMMITTER_EMAIL=t@example.org; {script}"
        ),
    ]);
    let name = created["name"].as_str().unwrap().to_owned();
    wait_for("the sandbox's commit", Duration::from_secs(15), || {
        lab.project.join("done").exists()
    });
    let host = |script: &str| lab.host_stdout(script);
    // While it still runs: the helper carries HEAD and the index within a round or two.
    wait_for(
        "HEAD and the index on the host",
        Duration::from_secs(5),
        || {
            host("git symbolic-ref HEAD") == "refs/heads/live"
                && host("git diff --cached --name-only") == "s"
        },
    );
    assert_eq!(host("git log -1 --format=%s"), "live-work");
    assert_eq!(lab.world.show(&name)["state"], "running");
    std::fs::write(&go, "").unwrap();
    let _ = lab.world.run(&["rm", "--force", &name]);
}

#[test]
fn git_10_links_planted_in_refs_objects_or_logs_carry_no_host_write() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // `$T` is a host file the host's git would append a reflog line to, `$TD` a host dir it
    // would write a tag and packs into: both outside the project.
    let attack = "ln -sf \"$T\" .git/logs/HEAD; rm -rf .git/refs/tags && ln -s \"$TD\" .git/refs/tags; \
                  rm -rf .git/objects/pack && ln -s \"$TD\" .git/objects/pack";
    let host_work = "git commit -q --allow-empty -m host-commit; git tag host-tag; git gc -q";
    let targets = |lab: &GitLab| {
        let target = lab.world.path("bashrc");
        let target_dir = lab.world.path("elsewhere");
        std::fs::write(&target, "# rc\n").unwrap();
        std::fs::create_dir_all(&target_dir).unwrap();
        let vars = format!("T='{}'; TD='{}'; ", target.display(), target_dir.display());
        (target, target_dir, vars)
    };
    for user in users() {
        let lab = GitLab::new(user, "links", ONE_COMMIT);
        let (target, target_dir, vars) = targets(&lab);
        let r = lab.inside(&format!("{vars}{attack}"));
        let out = lab.host_sh(&lab.project, host_work);
        assert!(out.status.success(), "{user:?}: {}", Report::of(&out).text);
        assert_eq!(
            read(&target),
            "# rc\n",
            "{user:?}: a reflog line reached the host file:\n{}",
            r.text
        );
        let written = std::fs::read_dir(&target_dir).unwrap().count();
        assert_eq!(
            written, 0,
            "{user:?}: the host's git wrote through a link:\n{}",
            r.text
        );
        // objects/info/alternates: the host's git would read another repository's objects.
        let other = lab.world.path("other");
        let made = lab.host_sh(
            project_parent(&lab.project),
            &format!(
                "git init -q '{0}' && cd '{0}' && echo secret > s && git add s && \
                 git commit -qm secret && git rev-parse HEAD",
                other.display()
            ),
        );
        let secret = String::from_utf8_lossy(&made.stdout).trim().to_owned();
        let alternates = format!(
            "O='{}/.git/objects'; echo \"$O\" > .git/objects/info/alternates; \
             mv .git/objects/info .git/objects/info-old && mkdir .git/objects/info && \
             echo \"$O\" > .git/objects/info/alternates",
            other.display()
        );
        let r = lab.inside(&alternates);
        let seen = lab.host_sh(&lab.project, &format!("git cat-file -e {secret}"));
        assert!(
            !seen.status.success(),
            "{user:?}: alternates reached the host:\n{}",
            r.text
        );
        lab.host_sh(&lab.project, &alternates);
        let seen = lab.host_sh(&lab.project, &format!("git cat-file -e {secret}"));
        assert!(seen.status.success(), "control: alternates on the host");
        // Control: the same links made on the host carry the host's git writes out.
        let control = GitLab::new(User::Me, "links", ONE_COMMIT);
        let (target, target_dir, vars) = targets(&control);
        control.host_sh(&control.project, &format!("{vars}{attack}"));
        control.host_sh(&control.project, host_work);
        assert!(
            read(&target).contains("host-commit"),
            "control: no reflog line"
        );
        assert!(
            std::fs::read_dir(&target_dir).unwrap().count() > 0,
            "control: nothing written through the links"
        );
    }
}

#[test]
fn git_12_links_replanted_in_refs_while_the_sandbox_runs_carry_no_host_write() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // The helper's sweep removes links from `refs/` every round, but a sandbox that plants
    // them again at once wins the race: the host's `git tag` while it runs writes through.
    let replant = "end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do \
                   [ -L .git/refs/tags ] || { rm -rf .git/refs/tags; ln -s \"$TD\" .git/refs/tags; }; \
                   done 2>/dev/null; echo replanted=done";
    for user in users() {
        let lab = GitLab::new(user, "relinks", ONE_COMMIT);
        let target_dir = lab.world.path("elsewhere");
        std::fs::create_dir_all(&target_dir).unwrap();
        let script = format!("TD='{}'; P='{}'\n{replant}", target_dir.display(), lab.p());
        let mut sandbox = lab
            .launch_shell(&script)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn_guarded();
        std::thread::sleep(Duration::from_millis(1500));
        for i in 0..10 {
            lab.host_sh(&lab.project, &format!("git tag -f host-tag-{i}"));
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = sandbox.wait();
        let written: Vec<_> = std::fs::read_dir(&target_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            written.is_empty(),
            "{user:?}: the host's git wrote through a link the sandbox re-planted: {written:?}"
        );
    }
    // Control: the same link on the host carries the host's tag out of the repository.
    let control = GitLab::new(User::Me, "relinks", ONE_COMMIT);
    let target_dir = control.world.path("elsewhere");
    std::fs::create_dir_all(&target_dir).unwrap();
    control.host_sh(
        &control.project,
        &format!(
            "rm -rf .git/refs/tags && ln -s '{}' .git/refs/tags && git tag host-tag",
            target_dir.display()
        ),
    );
    assert!(
        target_dir.join("host-tag").exists(),
        "control: the tag did not go through the link"
    );
}

#[test]
fn git_13_the_synced_index_cannot_stage_a_hook_the_host_then_writes_out() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // Hooks in the project (`core.hooksPath = .githooks`, one tracked hook). The hooks dir is
    // read-only inside, but a hook staged in the index reaches the host's worktree on its
    // `git restore .` (or `checkout -- .`), and its next commit runs it.
    let setup = format!(
        "{ONE_COMMIT} && git config core.hooksPath .githooks && mkdir .githooks && \
         printf '#!/bin/sh\\ntrue\\n' > .githooks/post-commit && chmod +x .githooks/post-commit && \
         git add .githooks && git commit -qm hooks"
    );
    let attack = "B=$(printf '#!/bin/sh\\ntouch %s\\n' \"$M\" | git hash-object -w --stdin) && \
                  git update-index --add --cacheinfo 100755,$B,.githooks/pre-commit && echo staged=ok";
    let host_work = "git restore . ; git commit -q --allow-empty -m host-commit";
    for user in users() {
        let lab = GitLab::new(user, "staged-hook", &setup);
        let r = lab.inside(&format!(
            "{attack}\necho more > a && git add a && echo add=ok"
        ));
        r.expect("staged", "ok");
        let _ = std::fs::remove_file(&lab.marker);
        let out = lab.host_sh(&lab.project, host_work);
        assert!(
            !lab.marker.exists(),
            "{user:?}: the host ran a hook the sandbox staged:\n{}\n{}",
            r.text,
            Report::of(&out).text
        );
        // The whole index holding the hook is refused: the host keeps its own.
        assert!(
            lab.host_stdout("git ls-files .githooks") == ".githooks/post-commit",
            "{user:?}: the host's index changed under .githooks"
        );
    }
    // Everyday work in a project with tracked hooks still syncs the index.
    let lab = GitLab::new(User::Me, "staged-hook-ok", &setup);
    let r = lab.inside("echo b > b && git add b && echo add=ok");
    r.expect("add", "ok");
    assert_eq!(lab.host_stdout("git ls-files b"), "b", "the index crossed");
    // Control: the same staging on the host runs the hook on the next commit.
    let control = GitLab::new(User::Me, "staged-hook", &setup);
    control.host_sh(&control.project, attack);
    control.host_sh(&control.project, host_work);
    assert!(
        control.marker.exists(),
        "control: the staged hook did not run"
    );

    // The same for the `bubblewrap.protect` paths (read-only inside): a tracked
    // `.vscode/tasks.json` (tasks VS Code runs) staged with new content.
    let setup = format!(
        "{ONE_COMMIT} && mkdir .vscode && echo '{{}}' > .vscode/tasks.json && \
         git add .vscode && git commit -qm vscode"
    );
    let attack = "B=$(echo EVIL | git hash-object -w --stdin) && \
                  git update-index --cacheinfo 100644,$B,.vscode/tasks.json && echo staged=ok";
    for user in users() {
        let lab = GitLab::new(user, "staged-tasks", &setup);
        lab.inside(attack).expect("staged", "ok");
        lab.host_sh(&lab.project, "git restore .");
        assert_eq!(
            read(&lab.project.join(".vscode/tasks.json")),
            "{}\n",
            "{user:?}: the host wrote out what the sandbox staged"
        );
    }
    let control = GitLab::new(User::Me, "staged-tasks", &setup);
    control.host_sh(&control.project, &format!("{attack} && git restore ."));
    assert_eq!(
        read(&control.project.join(".vscode/tasks.json")),
        "EVIL\n",
        "control: git restore did not write the staged content"
    );
}

#[test]
fn git_14_a_fifo_planted_as_a_ref_does_not_hang_the_hosts_git() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // `refs/` is shared: a FIFO as the current branch's loose ref blocks the host's
    // `git status` in open() for good, and removing the name does not wake it. The sandbox
    // tries to plant it again and again for 8 s; the seccomp filter refuses every FIFO, so
    // none appears and the host's git is done at once.
    let replant = "end=$(( $(date +%s) + 8 )); while [ $(date +%s) -lt $end ]; do \
                   [ -p .git/refs/heads/main ] || { rm -f .git/refs/heads/main; \
                   mkfifo .git/refs/heads/main; }; done 2>/dev/null";
    for user in users() {
        let lab = GitLab::new(user, "fifo-ref", ONE_COMMIT);
        // Not in the shared dirs, not in the sandbox's own /tmp either: a filter sees no path.
        let r = lab.inside(
            "mkfifo .git/refs/heads/x 2>/dev/null; echo ref=$?; \
             mkfifo /tmp/f 2>/dev/null; echo tmp=$?; mkfifo -m 0600 p 2>/dev/null; echo project=$?",
        );
        r.expect("ref", "1");
        r.expect("tmp", "1");
        r.expect("project", "1");
        let script = format!("cd '{}'\n{replant}", lab.p());
        let mut sandbox = lab
            .launch_shell(&script)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn_guarded();
        std::thread::sleep(Duration::from_millis(2000));
        let planted = lab.project.join(".git/refs/heads/main");
        let was_fifo = std::fs::symlink_metadata(&planted)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
        let started = Instant::now();
        let out = lab.host_sh(&lab.project, "timeout 20 git status; echo rc=$?");
        let took = started.elapsed();
        let _ = sandbox.wait();
        assert!(!was_fifo, "{user:?}: the sandbox planted a FIFO as a ref");
        assert!(
            took < Duration::from_secs(5),
            "{user:?}: the host's git status hung {took:?} on a planted FIFO ref: {}",
            Report::of(&out).text
        );
    }
    // Control: the same FIFO on the host hangs `git status` until it is killed.
    let control = GitLab::new(User::Me, "fifo-ref", ONE_COMMIT);
    let out = control.host_sh(
        &control.project,
        "rm .git/refs/heads/main && mkfifo .git/refs/heads/main && timeout 3 git status; echo rc=$?",
    );
    Report::of(&out).expect("rc", "124");
}

#[test]
fn git_11_an_unpopulated_submodule_cannot_be_filled_with_a_repository_the_host_runs() {
    if !prerequisites(GIT_TOOLS) {
        return;
    }
    // A gitlink whose checkout is absent, as after `git clone` without `--recurse-submodules`
    // (`sub` an empty dir) or after the user removed it: the host's `git status` runs
    // `git status` in any `sub/.git` it finds there, with that repository's config.
    let with_submodule = format!(
        "git init -q -b main lib && (cd lib && echo l > l && git add l && git commit -qm lib) && \
         {ONE_COMMIT} && git submodule add -q \"$P/../lib\" sub && git commit -qm sub && \
         git submodule deinit -q -f sub && rm -rf .git/modules/sub"
    );
    let removed = format!("{with_submodule} && rmdir sub");
    let plant = "mkdir -p sub && git init -q sub && \
                 git -C sub config core.fsmonitor \"touch $M; false\"";
    for (name, setup) in [("unpopulated", &with_submodule), ("removed", &removed)] {
        git_lab_cases(name, setup, &[("sub/.git made", plant)], &["status"]);
    }
    // One level down: `mid` is checked out (and dirty, so the host's git looks into it), its
    // own submodule `mid/inner` is not.
    let nested = format!(
        "R=$PWD && git init -q -b main inner && \
         (cd inner && echo i > i && git add i && git commit -qm i) && \
         git init -q -b main mid && (cd mid && echo m > m && git add m && git commit -qm m && \
         git submodule add -q \"$R/inner\" inner && git commit -qm inner) && \
         {ONE_COMMIT} && git submodule add -q \"$R/mid\" mid && git commit -qm mid && \
         echo dirty >> mid/m"
    );
    let plant_nested = "git init -q mid/inner && \
                        git -C mid/inner config core.fsmonitor \"touch $M; false\"";
    git_lab_cases(
        "nested",
        &nested,
        &[("mid/inner/.git made", plant_nested)],
        &["status"],
    );
}

// ---------------------------------------------------------------------------------------
// A quiet tmux (issue 9 point 3): nothing a pane writes reaches the attached terminal or
// another pane through our server. The outer terminal is a pty whose every byte is kept.

/// A terminal the test owns: `tmux attach` runs on its slave side, every byte tmux sends
/// to the "user's terminal" is recorded from the master side.
struct RecordedTerminal {
    child: Child,
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl RecordedTerminal {
    fn attach(mut command: Command) -> RecordedTerminal {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        // SAFETY: plain libc pty calls; every descriptor is owned right after.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0, "posix_openpt");
        // SAFETY: `master` is a descriptor just opened and owned by nobody else.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        // SAFETY: grantpt and unlockpt only read the descriptor, which `master` keeps open.
        assert_eq!(unsafe { libc::grantpt(master.as_raw_fd()) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::unlockpt(master.as_raw_fd()) }, 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            // SAFETY: ptsname_r writes at most `name.len()` bytes, NUL included, into `name`.
            unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) },
            0
        );
        // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
        let slave_path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let size = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize`, which `size` is, on an open pty.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave_path)
            .unwrap();
        command
            .env("TERM", "xterm-256color")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("tmux attach on a pty");
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = bytes.clone();
        let mut reader = std::fs::File::from(master);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        RecordedTerminal { child, bytes }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().unwrap()).into_owned()
    }

    fn end(mut self) -> String {
        self.stop();
        self.text()
    }

    /// Ends the attached client by pid (once: a second call finds it reaped).
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

/// A failed assertion never leaves the attached client running.
impl Drop for RecordedTerminal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the pane probes saw and what the user's terminal got.
struct ClipboardProbe {
    terminal: String,
    buffers: String,
    /// What the second sandbox read back after its OSC 52 query.
    reply_b: Vec<u8>,
    /// What the writing sandbox read back after querying its own write.
    reply_a: Vec<u8>,
}

/// Two sandboxes (the second without network) on our tmux server, the user attached to the
/// first. The first writes the clipboard (OSC 52), sets titles, renames its window, passes a
/// DCS sequence through and queries the buffer back; the second queries the buffer. With
/// `loud`, the server first gets the settings it had before issue 9 (plus titles on).
fn clipboard_probe(loud: bool, secret: &str, nobody: bool) -> ClipboardProbe {
    let world = World::new();
    let encoded = base64(secret.as_bytes());
    let a = world.project("osc-a");
    let b = world.project("osc-b");
    write(
        &a.join("probe.sh"),
        &format!(
            "while [ ! -e go ]; do sleep 0.05; done\n\
             printf '\\033]52;c;{encoded}\\007'\n\
             printf '\\033Ptmux;\\033\\033]2;PASSTHRU-TITLE\\007\\033\\\\'\n\
             printf '\\033]2;PANE-TITLE\\007\\033]0;ICON-TITLE\\007'\n\
             printf '\\033kRENAMED-WINDOW\\033\\\\'\n\
             stty -icanon -echo min 0 time 15\n\
             printf '\\033]52;c;?\\007'\n\
             cat > reply.bin\n\
             echo ok > done\n\
             exec sleep 600\n"
        ),
    );
    write(
        &b.join("probe.sh"),
        "while [ ! -e go ]; do sleep 0.05; done\n\
         stty -icanon -echo min 0 time 15\n\
         printf '\\033]52;c;?\\007'\n\
         cat > reply.bin\n\
         echo ok > done\n\
         exec sleep 600\n",
    );
    let as_nobody = nobody.then(|| world.as_nobody());
    for (dir, extra) in [(&a, None), (&b, Some("--no-network"))] {
        let mut args = vec!["create", dir.to_str().unwrap()];
        args.extend(extra);
        let probe = dir.join("probe.sh");
        args.extend(["--shell", "--", "sh", probe.to_str().unwrap()]);
        match &as_nobody {
            Some(as_nobody) => drop(succeed(&mut as_nobody(&args))),
            None => drop(world.json(&args)),
        }
    }
    if loud {
        for option in [
            "set-clipboard",
            "allow-passthrough",
            "set-titles",
            "allow-rename",
        ] {
            let out = world.tmux(&["set", "-g", option, "on"]);
            assert!(out.status.success(), "{out:?}");
        }
    }
    let shown = match &as_nobody {
        Some(as_nobody) => {
            serde_json::from_slice(&succeed(&mut as_nobody(&["--json", "show", "osc-a"])).stdout)
                .unwrap()
        }
        None => world.show("osc-a"),
    };
    let session_a = shown["tmux_session"].as_str().unwrap().to_owned();
    // The user attaches as themselves: nobody in the unprivileged run.
    let mut attach = if nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "tmux",
        ]);
        c
    } else {
        Command::new("tmux")
    };
    attach
        .arg("-S")
        .arg(world.tmux_socket())
        .args(["attach-session", "-t", &format!("={session_a}")])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &world.home)
        .env("LANG", "C.UTF-8");
    let terminal = RecordedTerminal::attach(attach);
    wait_for("the attached client draws", Duration::from_secs(10), || {
        terminal.text().contains("C-q")
    });
    write(&a.join("go"), "");
    wait_for("sandbox a's probe", Duration::from_secs(15), || {
        a.join("done").exists()
    });
    write(&b.join("go"), "");
    wait_for("sandbox b's probe", Duration::from_secs(15), || {
        b.join("done").exists()
    });
    // Let the client draw whatever the server still has for it.
    std::thread::sleep(Duration::from_millis(500));
    let buffers = String::from_utf8_lossy(&world.tmux(&["list-buffers"]).stdout).into_owned();
    let terminal = terminal.end();
    ClipboardProbe {
        terminal,
        buffers,
        reply_a: std::fs::read(a.join("reply.bin")).unwrap_or_default(),
        reply_b: std::fs::read(b.join("reply.bin")).unwrap_or_default(),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn tmux_01_panes_reach_neither_the_attached_terminal_nor_each_other() {
    if prerequisites(TOOLS) {
        panes_reach_neither_the_terminal_nor_each_other(false);
    }
}

#[test]
fn tmux_01_as_nobody_panes_reach_neither_the_attached_terminal_nor_each_other() {
    if !prerequisites(TOOLS) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    panes_reach_neither_the_terminal_nor_each_other(true);
}

fn panes_reach_neither_the_terminal_nor_each_other(nobody: bool) {
    let secret = format!("clip-{}", unique());
    let encoded = base64(secret.as_bytes());
    let quiet = clipboard_probe(false, &secret, nobody);
    let shown = |p: &ClipboardProbe| {
        format!(
            "terminal: {:?}\nbuffers: {:?}\nreply a: {:?}\nreply b: {:?}",
            p.terminal,
            p.buffers,
            String::from_utf8_lossy(&p.reply_a),
            String::from_utf8_lossy(&p.reply_b)
        )
    };
    let q = shown(&quiet);
    assert!(quiet.terminal.contains("C-q"), "the recording works: {q}");
    for leak in [
        "\x1b]52;",
        &encoded,
        "PASSTHRU-TITLE",
        "PANE-TITLE",
        "ICON-TITLE",
        "RENAMED-WINDOW",
        "\x1b]0;",
        "\x1b]2;",
        "\x1bP",
    ] {
        assert!(
            !quiet.terminal.contains(leak),
            "{leak:?} reached the terminal: {q}"
        );
    }
    assert!(quiet.buffers.trim().is_empty(), "a pane made a buffer: {q}");
    for reply in [&quiet.reply_a, &quiet.reply_b] {
        let reply = String::from_utf8_lossy(reply);
        assert!(!reply.contains("52;"), "an OSC 52 query was answered: {q}");
        assert!(!reply.contains(&encoded), "the secret crossed: {q}");
    }

    // Negative control: the settings the server had before, and titles on.
    let loud = clipboard_probe(true, &secret, nobody);
    let l = shown(&loud);
    assert!(
        loud.terminal.contains(&format!("\x1b]52;;{encoded}")),
        "{l}"
    );
    assert!(loud.terminal.contains("PASSTHRU-TITLE"), "{l}");
    assert!(loud.terminal.contains("ICON-TITLE"), "{l}");
    assert!(loud.terminal.contains("RENAMED-WINDOW"), "{l}");
    assert!(loud.buffers.contains(&secret), "{l}");
    assert!(
        String::from_utf8_lossy(&loud.reply_b).contains(&encoded),
        "the no-network sandbox read the other's buffer: {l}"
    );
}

/// The NUL-separated environment of `pid`, as `KEY=value` strings.
fn environ_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

#[test]
fn env_01_xvfb_and_the_tmux_server_get_an_allowlisted_environment() {
    if prerequisites(TOOLS) {
        host_helpers_get_an_allowlisted_environment(false);
    }
}

#[test]
fn env_01_as_nobody_xvfb_and_the_tmux_server_get_an_allowlisted_environment() {
    if !prerequisites(TOOLS) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    host_helpers_get_an_allowlisted_environment(true);
}

fn host_helpers_get_an_allowlisted_environment(nobody: bool) {
    let world = World::new();
    let token = format!("ghp_canary{}", unique());
    let project = world.project("envtest");
    let args = [
        "--json",
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sleep",
        "600",
    ];
    let mut create = if nobody {
        world.as_nobody()(&args)
    } else {
        let mut c = world.command();
        c.args(args);
        c
    };
    let out = succeed(
        create
            .env("GH_TOKEN", &token)
            .env("SSH_AUTH_SOCK", "/tmp/agent-canary.sock"),
    );
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let xvfb = record["xvfb"]["pid"].as_u64().expect("an Xvfb pid") as u32;
    let server = String::from_utf8_lossy(&world.tmux(&["display-message", "-p", "#{pid}"]).stdout)
        .trim()
        .parse::<u32>()
        .expect("the tmux server's pid");
    let allowed = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
    ];
    for (what, pid) in [("Xvfb", xvfb), ("the tmux server", server)] {
        let env = environ_of(pid);
        assert!(!env.is_empty(), "{what}'s environ was read");
        for var in &env {
            let key = var.split('=').next().unwrap_or_default();
            // tmux adds its own variables after start.
            let own = what.contains("tmux") && key.starts_with("TMUX");
            assert!(allowed.contains(&key) || own, "{what} has {var:?}");
        }
        assert!(!env.iter().any(|v| v.contains(&token)), "{what}: {env:?}");
    }
    // Negative control: a process started from the same environment without the allowlist
    // carries the token, and reading it this way finds it.
    let plain = Command::new("sleep")
        .arg("30")
        .env("GH_TOKEN", &token)
        .spawn_guarded();
    // comm changes before the new environ is in place: poll until exec is complete.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut leaked = false;
    while !leaked && Instant::now() < deadline {
        leaked = environ_of(plain.id()).iter().any(|v| v.contains(&token));
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(plain);
    assert!(leaked, "the probe finds a token a process inherited");
}

/// Run inside a sandbox: a raw X11 client (no Xlib) that connects with the sandbox's own
/// cookie, sends GrabServer and holds it until the file `release` appears.
const GRAB_SERVER_PY: &str = r#"
import os, socket, struct, time
n = os.environ["DISPLAY"].split(":")[1].split(".")[0]
auth = open(os.environ.get("XAUTHORITY") or os.path.expanduser("~/.Xauthority"), "rb").read()
def field(b, i):
    l = struct.unpack(">H", b[i:i + 2])[0]
    return b[i + 2:i + 2 + l], i + 2 + l
i = 2
_, i = field(auth, i)
_, i = field(auth, i)
name, i = field(auth, i)
cookie, i = field(auth, i)
pad = lambda b: b + b"\0" * ((4 - len(b) % 4) % 4)
s = socket.socket(socket.AF_UNIX)
s.connect("/tmp/.X11-unix/X" + n)
s.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, len(name), len(cookie)) + pad(name) + pad(cookie))
head = s.recv(8)
rest = struct.unpack("<H", head[6:8])[0] * 4
got = b""
while len(got) < rest:
    got += s.recv(rest - len(got))
s.sendall(struct.pack("<BxH", 36, 1))
open("grabbed", "w").write("ok" if head[0] == 1 else "refused")
while not os.path.exists("release"):
    time.sleep(0.05)
s.close()
open("released", "w").write("ok")
time.sleep(600)
"#;

#[test]
fn x11_01_a_grabbed_display_reads_screen_busy_within_a_second_or_two() {
    if prerequisites(TOOLS) {
        grabbed_display_reads_screen_busy(false);
    }
}

#[test]
fn x11_01_as_nobody_a_grabbed_display_reads_screen_busy_within_a_second_or_two() {
    if !prerequisites(TOOLS) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    grabbed_display_reads_screen_busy(true);
}

/// Builds a sandbox-deck command from its arguments.
type DeckRunner<'a> = Box<dyn Fn(&[&str]) -> Command + 'a>;

/// sandbox-deck as root, or as nobody (the world handed over to it first).
fn deck_runner(world: &World, nobody: bool) -> DeckRunner<'_> {
    if nobody {
        Box::new(world.as_nobody())
    } else {
        Box::new(move |args: &[&str]| {
            let mut c = world.command();
            c.args(args);
            c
        })
    }
}

fn grabbed_display_reads_screen_busy(nobody: bool) {
    let world = World::new();
    let project = world.project("grab");
    write(&project.join("grab.py"), GRAB_SERVER_PY);
    let script = project.join("grab.py");
    let deck = deck_runner(&world, nobody);
    succeed(&mut deck(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "python3",
        script.to_str().unwrap(),
    ]));
    wait_for("the grab inside", Duration::from_secs(10), || {
        project.join("grabbed").exists()
    });
    assert_eq!(
        read(&project.join("grabbed")),
        "ok",
        "the X server took the cookie"
    );
    let shot = project.join("shot.png");
    let started = Instant::now();
    let out = deck(&[
        "--json",
        "screenshot",
        "grab",
        "--output",
        shot.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a grabbed display cannot be captured"
    );
    assert!(err.contains("screen busy"), "{err}");
    eprintln!("screenshot of a grabbed display answered in {took:?}");
    assert!(took < Duration::from_secs(4), "answered in {took:?}");

    // The Screen tab's path: the capturer the TUI's feed keeps, then its capture.
    if !nobody {
        let paths = sandbox_deck::paths::Paths {
            state_dir: world.path("state/sandbox-deck"),
            config_dir: world.path("config/sandbox-deck"),
            runtime_dir: world.runtime.join("sandbox-deck"),
        };
        let config = sandbox_deck::config::Config::load(&paths.config_file()).unwrap();
        let deck = sandbox_deck::engine::Deck::with(paths, config).unwrap();
        let started = Instant::now();
        let error = match deck.screen_capturer("grab") {
            Err(e) => e.to_string(),
            Ok(mut capturer) => capturer
                .capture_if_changed()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        };
        let took = started.elapsed();
        eprintln!("the Screen tab's capturer answered in {took:?}: {error}");
        assert!(error.contains("screen busy"), "{error}");
        assert!(took < Duration::from_secs(4), "answered in {took:?}");
    }
    // Negative control: a client with no time limit (xdpyinfo) hangs on the grabbed display.
    let record: serde_json::Value =
        serde_json::from_slice(&succeed(&mut deck(&["--json", "show", "grab"])).stdout).unwrap();
    let display = record["display"].as_u64().unwrap();
    let cookie = world
        .runtime
        .join("sandbox-deck/sandboxes")
        .join(record["id"].as_str().unwrap())
        .join("Xauthority");
    let mut plain = Command::new("xdpyinfo")
        .env("DISPLAY", format!(":{display}"))
        .env("XAUTHORITY", &cookie)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    std::thread::sleep(Duration::from_secs(3));
    let hung = plain.try_wait().unwrap().is_none();
    drop(plain);
    assert!(
        hung,
        "xdpyinfo finished on a grabbed display: the grab did not hold"
    );

    // Released, the same command captures again.
    write(&project.join("release"), "");
    wait_for("the release", Duration::from_secs(5), || {
        project.join("released").exists()
    });
    let out = deck(&["screenshot", "grab", "--output", shot.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.exists());
}

#[test]
fn out_01_escape_sequences_a_sandbox_wrote_never_reach_the_terminal_raw() {
    if prerequisites(TOOLS) {
        escape_sequences_never_reach_the_terminal(false);
    }
}

#[test]
fn out_01_as_nobody_escape_sequences_a_sandbox_wrote_never_reach_the_terminal_raw() {
    if !prerequisites(TOOLS) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    escape_sequences_never_reach_the_terminal(true);
}

fn escape_sequences_never_reach_the_terminal(nobody: bool) {
    let mut world = World::new();
    let claude = world.path("claude");
    world.env.push((
        "CLAUDE_CONFIG_DIR".into(),
        claude.to_str().unwrap().to_owned(),
    ));
    // From inside: a hook line whose message sets the clipboard, clears the screen and
    // starts a fake row, in JSON escapes as a real hook input would carry them.
    let evil = r"\u001b]52;c;cHduZWQ=\u0007\u001b[2J\u009b31mfake\nrow\u001b]0;title\u001b\\";
    let project = world.project("esc");
    let line =
        format!(r#"{{"event":"Notification","input":{{"message":"Claude needs you {evil}"}}}}"#);
    write(&project.join("hook.line"), &format!("{line}\n"));
    // Both files in place before the world may be handed to nobody.
    let transcript_at = claude.join("projects/-srv-x/t.jsonl");
    std::fs::create_dir_all(transcript_at.parent().unwrap()).unwrap();
    // An agent sandbox (a shell one has no agent state to show): a stand-in for claude that
    // appends the planted line to its events file, as a hook would.
    let agent = world.path("agent-bin/claude");
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    write(
        &agent,
        "#!/bin/sh\ncat hook.line >> /run/sandbox-deck/status/events.jsonl\nexec sleep 600\n",
    );
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = world.path("config/sandbox-deck");
    std::fs::create_dir_all(&config).unwrap();
    write(
        &config.join("config.toml"),
        &format!("[sandbox]\nagent = \"{}\"\n", agent.display()),
    );
    let deck = deck_runner(&world, nobody);
    succeed(&mut deck(&["--json", "create", project.to_str().unwrap()]));
    // And a transcript whose cwd, session and model carry the same.
    let transcript = format!(
        r#"{{"type":"assistant","timestamp":"2025-06-01T10:00:00.000Z","sessionId":"s{evil}","cwd":"/srv/{evil}","message":{{"id":"m1","model":"claude-x{evil}","usage":{{"input_tokens":1,"output_tokens":2}}}}}}"#
    );
    write(&transcript_at, &format!("{transcript}\n"));
    wait_for("the hook line read", Duration::from_secs(10), || {
        let out = deck(&["--json", "status", "esc"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|v| v["sandboxes"][0]["state"] == "waiting")
    });
    let raw = |c: char| c == '\x1b' || c == '\x07' || ('\u{80}'..='\u{9f}').contains(&c);
    let mut human = String::new();
    for args in [
        &["status"][..],
        &["status", "esc"],
        &["usage"],
        &["usage", "--by", "session"],
        &["usage", "--by", "model"],
    ] {
        let out = succeed(&mut deck(args));
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !text.chars().any(raw),
            "{args:?} printed a control: {text:?}"
        );
        human.push_str(&text);
    }
    assert!(
        human.contains("Claude needs you"),
        "the message itself is shown: {human}"
    );
    assert!(!human.contains("fake\nrow"), "a value cannot start a line");
    // --json: the same values, escaped (serde for C0, ours for DEL and C1).
    for args in [
        &["--json", "status"][..],
        &["--json", "usage", "--by", "session"],
    ] {
        let out = succeed(&mut deck(args));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.chars().any(raw), "{args:?}: {text:?}");
        // Negative control: decoded, the escape sequences are really there.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(value.to_string().contains("\\u001b]52;"), "{value}");
        let decoded = format!("{value:?}");
        assert!(
            decoded.contains('\x1b') || decoded.contains("\\u{1b}"),
            "{decoded}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Join and enter, trusting nothing of the sandbox (issue: join takes the sandbox's word)
// ---------------------------------------------------------------------------------------

/// Makes Landlock unavailable to `command` and everything it starts, as on a kernel without
/// it (Debian 12's 6.1 and Ubuntu 24.04's 6.8 have no scoping): a seccomp filter, installed
/// before exec, answers ENOSYS to landlock_create_ruleset, landlock_add_rule and
/// landlock_restrict_self.
fn without_landlock(command: &mut Command) -> &mut Command {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
    use std::os::unix::process::CommandExt;
    let rules = [
        libc::SYS_landlock_create_ruleset,
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_restrict_self,
    ]
    .into_iter()
    .map(|nr| (nr, vec![]))
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap();
    let program: BpfProgram = filter.try_into().unwrap();
    // SAFETY: prctl and seccomp only, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            seccompiler::apply_filter(&program).map_err(|e| std::io::Error::other(e.to_string()))
        });
    }
    command
}

/// sandbox-deck as root, or (`nobody`) as an unprivileged user through setpriv.
type Deck<'a> = dyn Fn(&[&str]) -> Command + 'a;

fn as_root(world: &World) -> Box<Deck<'_>> {
    Box::new(move |args: &[&str]| {
        let mut c = world.command();
        c.args(args);
        c
    })
}

/// The first process of the sandbox under `launcher`: the first in another pid namespace.
fn sandbox_init_of(launcher: u32) -> u32 {
    let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let ours = ns(launcher);
    *descendants(launcher)
        .iter()
        .filter(|p| ns(**p).is_some() && ns(**p) != ours)
        .min()
        .expect("the sandbox's init")
}

/// Starts `launch --new DIR --shell -- sh -c SCRIPT` (without Landlock when asked) and waits
/// for the file `up` the script touches.
fn start_instance(deck: &Deck<'_>, project: &Path, script: &str, landlock: bool) -> Reaped {
    let up = project.join("up");
    let mut command = deck(&[
        "launch",
        "bubblewrap",
        "--new",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        script,
    ]);
    if !landlock {
        without_landlock(&mut command);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !up.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output_now();
            panic!("the instance ended early ({status}):\n{}", out.text);
        }
        assert!(Instant::now() < deadline, "the instance never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    Reaped(child)
}

/// A child killed by pid when it goes out of scope, a failed assertion included (a canary
/// left behind would hold the test's output open).
struct Reaped(Child);

impl Reaped {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The files a hostile sandbox plants and names in its payload's environment: a preload
/// library, a `bash` first on PATH, a BASH_ENV script. Each appends its name to `ran` when it
/// runs. Returns the variables to plant.
fn plant_environment(project: &Path) -> Vec<(String, String)> {
    let evil = project.join(".evil");
    let ran = evil.join("ran");
    std::fs::create_dir_all(evil.join("bin")).unwrap();
    let source = evil.join("preload.c");
    write(
        &source,
        &format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void planted(void) {{\n\
             FILE *f = fopen(\"{}\", \"a\"); if (f) {{ fputs(\"preload\\n\", f); fclose(f); }} }}\n",
            ran.display()
        ),
    );
    let library = evil.join("preload.so");
    succeed(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source),
    );
    let fake = |name: &str| {
        let path = evil.join("bin").join(name);
        write(
            &path,
            &format!(
                "#!/bin/sh\necho path >> '{}'\nexec /bin/{name} \"$@\"\n",
                ran.display()
            ),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    fake("bash");
    fake("sh");
    let bash_env = evil.join("bashenv");
    write(&bash_env, &format!("echo bashenv >> '{}'\n", ran.display()));
    let world_writable = |p: &Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    };
    world_writable(&evil);
    vec![
        ("LD_PRELOAD".into(), library.display().to_string()),
        (
            "PATH".into(),
            format!("{}:/usr/bin:/bin", evil.join("bin").display()),
        ),
        ("BASH_ENV".into(), bash_env.display().to_string()),
    ]
}

fn planted_environment_is_ignored(s: &Scene, deck: &Deck<'_>) {
    let planted = plant_environment(&s.project);
    let ran = s.project.join(".evil/ran");
    let assignments: Vec<String> = planted.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
    // The payload itself runs with the planted environment (so /proc/<payload>/environ
    // holds it) and proves the preload works: `ran` gets its first line from inside.
    let instance = start_instance(
        deck,
        &s.project,
        &format!("touch up; exec env {} sleep 600", assignments.join(" ")),
        true,
    );
    wait_for(
        "the preload inside the payload",
        Duration::from_secs(10),
        || read(&ran) == "preload\n",
    );
    let p = s.p();
    let runs: [(&str, Vec<&str>, Option<&str>); 4] = [
        (
            "join",
            vec![
                "launch",
                "bubblewrap",
                p,
                "--shell",
                "--",
                "bash",
                "-c",
                "env",
            ],
            None,
        ),
        (
            "enter",
            vec![
                "launch",
                "bubblewrap",
                p,
                "--enter",
                "--",
                "bash",
                "-c",
                "env",
            ],
            None,
        ),
        (
            "enter-shell",
            vec!["launch", "bubblewrap", p, "--enter"],
            Some("env\n"),
        ),
        (
            "join-sh",
            vec![
                "launch",
                "bubblewrap",
                p,
                "--shell",
                "--",
                "sh",
                "-c",
                "env",
            ],
            None,
        ),
    ];
    for (label, args, stdin) in runs {
        let mut child = deck(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let r = child.wait_with_output_now();
        let env = r.stdout();
        assert!(
            env.contains("CLAUDE_SANDBOX=1"),
            "{label}: it ran inside:\n{}",
            r.text
        );
        for (key, value) in &planted {
            assert!(
                !env.contains(value.as_str()),
                "{label}: {key} crossed:\n{}",
                r.text
            );
        }
        assert_eq!(
            read(&ran),
            "preload\n",
            "{label}: planted code ran:\n{}",
            r.text
        );
    }
    // Control: the payload's /proc environ (what the join used to copy) does carry the
    // planted variables, and a process started with it runs all three.
    let payload = descendants(sandbox_init_of(instance.id()))
        .into_iter()
        .find(|pid| comm(*pid) == "sleep")
        .expect("the payload");
    let environ = std::fs::read(format!("/proc/{payload}/environ")).unwrap();
    let environ: Vec<(String, String)> = String::from_utf8_lossy(&environ)
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (key, value) in &planted {
        assert!(
            environ.contains(&(key.clone(), value.clone())),
            "{key} not planted"
        );
    }
    let control = Command::new("bash")
        .env_clear()
        .envs(environ)
        .args(["-c", "true"])
        .output()
        .unwrap();
    assert!(control.status.success());
    let lines = read(&ran);
    for what in ["path", "bashenv"] {
        assert!(lines.contains(what), "control: {what} did not run: {lines}");
    }
    assert!(
        lines.matches("preload").count() > 1,
        "control: the preload did not run: {lines}"
    );
    drop(instance);
}

#[test]
fn join_and_enter_ignore_an_environment_planted_in_the_payload() {
    if !prerequisites(TOOLS) || !prerequisites(&["cc"]) {
        return;
    }
    let s = Scene::new("planted");
    planted_environment_is_ignored(&s, &*as_root(&s.world));
}

#[test]
fn join_and_enter_ignore_an_environment_planted_in_the_payload_unprivileged() {
    if !prerequisites(TOOLS) || !prerequisites(&["cc"]) || !can_drop_to_nobody() {
        return;
    }
    let s = Scene::new("planted-nobody");
    let as_nobody = s.world.as_nobody();
    planted_environment_is_ignored(&s, &as_nobody);
}

/// A host process owned by the user under test (root, or nobody), killed by pid at the end.
fn canary_of(unprivileged: bool) -> Reaped {
    let marker = format!("600.{}", unique());
    let mut command = if unprivileged {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "sleep",
        ]);
        c
    } else {
        Command::new("sleep")
    };
    Reaped(command.arg(marker).stdout(Stdio::null()).spawn().unwrap())
}

fn joined_processes_cannot_reach_the_host(s: &Scene, deck: &Deck<'_>, unprivileged: bool) {
    let canary = canary_of(unprivileged);
    let instance = start_instance(deck, &s.project, "touch up; exec sleep 600", false);
    let launcher = instance.id();
    let probe = format!(
        "echo \"pid1=$(head -1 /proc/1/status | cut -f2)\"; probe landlock landlock; \
         echo \"count=$(ls /proc | grep -c '^[0-9]')\"; \
         try see test -e /proc/{c}; try kill kill -9 {c}; try launcher kill -9 {launcher}; \
         probe py kill0 {c}; try ptrace python3 -c 'import ctypes,sys; \
         sys.exit(ctypes.CDLL(None).ptrace(16, {c}, 0, 0) != 0)'",
        c = canary.id()
    );
    let script = s.script(&probe);
    let p = s.p();
    for mode in ["--shell", "--enter"] {
        let mut command = deck(&["launch", "bubblewrap", p, mode, "--", "sh", "-c", &script]);
        let out = without_landlock(&mut command)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let r = Report::of(&out);
        assert!(out.status.success(), "{mode}:\n{}", r.text);
        r.expect("pid1", "bwrap");
        r.expect("landlock", "ENOSYS");
        r.refused("see");
        r.refused("kill");
        r.refused("launcher");
        r.refused("py");
        r.refused("ptrace");
        let count: u32 = r.get("count").parse().unwrap();
        assert!(count <= 8, "{mode}: saw {count} processes:\n{}", r.text);
        assert!(is_running(canary.id()), "{mode}: the canary was killed");
        assert!(is_running(launcher), "{mode}: the launcher was killed");
    }
    // `kill(0, …)` signals the caller's whole process group, across pid namespaces: the
    // joined process has a group of its own, so it ends itself and nothing on the host.
    // (sandbox-deck gets a group of its own here, so that a failure kills it, not the tests.)
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut command = deck(&[
        "launch",
        "bubblewrap",
        p,
        "--enter",
        "--",
        "sh",
        "-c",
        "kill -KILL 0",
    ]);
    let out = without_landlock(&mut command)
        .process_group(0)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), None, "the host-side joiner was killed");
    assert_eq!(
        out.status.code(),
        Some(128 + 9),
        "{}",
        Report::of(&out).text
    );
    assert!(is_running(canary.id()) && is_running(launcher));
    // Controls: the host can signal the canary; and a process in the sandbox's user
    // namespace but left in the host's pid namespace (what the joiner was) could too.
    let init = sandbox_init_of(launcher).to_string();
    let canary_pid = canary.id().to_string();
    let mut control = Command::new("nsenter");
    control.args([
        "-t",
        &init,
        "-U",
        "--preserve-credentials",
        "kill",
        "-0",
        &canary_pid,
    ]);
    if unprivileged {
        control = Command::new("setpriv");
        control.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "nsenter",
        ]);
        control.args([
            "-t",
            &init,
            "-U",
            "--preserve-credentials",
            "kill",
            "-0",
            &canary_pid,
        ]);
    }
    let control = without_landlock(&mut control).output().unwrap();
    assert!(
        control.status.success(),
        "control: {}",
        String::from_utf8_lossy(&control.stderr)
    );
    s.host_probe(&["host", "kill0", &canary_pid])
        .expect("host", "ok");
    drop(instance);
}

#[test]
fn joined_processes_cannot_reach_host_processes_without_landlock() {
    if !prerequisites(TOOLS) || !prerequisites(&["nsenter"]) {
        return;
    }
    let s = Scene::new("nolandlock");
    joined_processes_cannot_reach_the_host(&s, &*as_root(&s.world), false);
}

#[test]
fn joined_processes_cannot_reach_host_processes_without_landlock_unprivileged() {
    if !prerequisites(TOOLS) || !prerequisites(&["nsenter"]) || !can_drop_to_nobody() {
        return;
    }
    let s = Scene::new("nolandlock-nobody");
    let as_nobody = s.world.as_nobody();
    joined_processes_cannot_reach_the_host(&s, &as_nobody, true);
}

/// A join gets the secrets the launch passed (`--gh-token`) from the host's record of the
/// launch: a 0600 file in the sandbox's runtime dir, which the sandbox cannot see.
#[test]
fn join_gets_the_launchs_secrets_from_a_record_the_sandbox_cannot_see() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("joinsecret");
    let deck = as_root(&s.world);
    let instance = {
        let up = s.project.join("up");
        let child = deck(&[
            "launch",
            "bubblewrap",
            "--new",
            s.p(),
            "--gh-token",
            "--shell",
        ])
        .args(["--", "sh", "-c", "touch up; exec sleep 600"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        wait_for("the instance", Duration::from_secs(10), || up.exists());
        Reaped(child)
    };
    let records: Vec<PathBuf> = std::fs::read_dir(s.world.runtime.join("sandbox-deck/sandboxes"))
        .unwrap()
        .map(|e| e.unwrap().path().join("join-env.json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let mode = std::fs::metadata(&records[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = deck(&["launch", "bubblewrap", s.p(), "--shell", "--", "sh", "-c"])
        .arg(format!(
            "echo \"tok=$GH_TOKEN\"; echo \"key=$ANTHROPIC_API_KEY\"; \
             test -e '{}' && echo record=seen || echo record=absent",
            records[0].display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = Report::of(&out);
    r.expect("tok", &format!("{}-GH_TOKEN", s.tag));
    r.expect("key", "");
    r.expect("record", "absent");
    // Control: the record holds the token on the host.
    assert!(read(&records[0]).contains(&format!("{}-GH_TOKEN", s.tag)));
    drop(instance);
}

/// Without Landlock scoping, `kill(0, …)` inside a hand-launched sandbox signals its whole
/// process group, across pid namespaces: the sandbox leads a group of its own, so that is
/// itself, never its launcher or the rest of the caller's terminal job.
#[test]
fn a_launched_sandbox_cannot_kill_its_terminal_job_without_landlock() {
    if !prerequisites(TOOLS) {
        return;
    }
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let s = Scene::new("killzero");
    // A member of the launcher's process group, as a pipeline's `tee` would be.
    let mut job = Command::new("sh");
    job.args([
        "-c",
        "sleep 600 >/dev/null 2>&1 & echo $!; exec \"$@\"",
        "sh",
    ])
    .arg(BIN)
    .args([
        "launch",
        "bubblewrap",
        "--new",
        s.p(),
        "--shell",
        "--",
        "sh",
        "-c",
    ])
    .arg(format!(
        "echo \"landlock=$(python3 '{}' x landlock | cut -d= -f2)\"; kill -KILL 0",
        s.probe.display()
    ))
    .env_clear()
    .envs(
        s.world
            .command()
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
    )
    .stdin(Stdio::null())
    // Its own group here, so that a failure kills it and not the test runner.
    .process_group(0);
    let out = without_landlock(&mut job).output().unwrap();
    let r = Report::of(&out);
    let sibling: u32 = r.stdout().lines().next().unwrap().parse().unwrap();
    let sibling_alive = is_running(sibling);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sibling as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    r.expect("landlock", "ENOSYS");
    assert_eq!(
        out.status.signal(),
        None,
        "the launcher was killed:\n{}",
        r.text
    );
    assert!(
        sibling_alive,
        "the job's other process was killed:\n{}",
        r.text
    );
}

/// A process inside may ptrace the sandbox's pid 1 (same user, same namespace) and make it
/// `unshare` into a user and a network namespace of its own making (the only kinds the
/// seccomp filter lets anything create, for Chromium). A later join finds pid 1 by its
/// namespaces and would land in those: the deck records where pid 1 started and refuses.
#[test]
fn join_refuses_an_instance_whose_init_was_moved() {
    // Chromium on the host means nested user namespaces inside (`bubblewrap.browser`), the
    // only setting in which pid 1 can be moved at all.
    if !prerequisites(TOOLS) || !prerequisites(&["gdb", "chromium"]) {
        return;
    }
    let s = Scene::new("moved");
    let attack = s.project.join("attack");
    let attacked = s.project.join("attacked");
    // The attack waits until the test says go: a prompt-injected agent acts long after its
    // sandbox started.
    let body = format!(
        "readlink /proc/1/ns/net > before\n\
         ( while [ ! -e '{attack}' ]; do sleep 0.05; done\n\
           gdb -p 1 -batch -ex 'call (int)unshare(0x10000000)' \
             -ex 'call (int)unshare(0x40000000)' > gdb.log 2>&1\n\
           readlink /proc/1/ns/net > after; touch '{attacked}' ) &",
        attack = attack.display(),
        attacked = attacked.display(),
    );
    let instance = s.spawn(&[], &body);
    let pinned = || {
        std::fs::read_dir(s.world.runtime.join("sandbox-deck/sandboxes"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("init-namespaces.json").exists())
    };
    wait_for(
        "the instance's namespaces recorded",
        Duration::from_secs(10),
        pinned,
    );
    std::fs::write(&attack, "").unwrap();
    wait_for("the attack", Duration::from_secs(30), || attacked.exists());
    // Control: the attack worked, pid 1 now lives in a network namespace the agent made.
    let before = read(&s.project.join("before"));
    let after = read(&s.project.join("after"));
    assert!(
        !before.trim().is_empty() && before != after,
        "pid 1 was not moved (before {before:?}, after {after:?}):\n{}",
        read(&s.project.join("gdb.log"))
    );
    let out = s
        .world
        .command()
        .args(["launch", "bubblewrap", s.p(), "--enter", "--", "id"])
        .output()
        .unwrap();
    instance.release();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the join went through: {text}");
    assert!(text.contains("has left the"), "{text}");
}
