//! The escape test suite: one test per threat of the escape checklist (docs/security.md,
//! SECURITY.md section 2), each run through the real binary in a real bwrap sandbox, each with
//! a negative control that shows the canary *is* reachable outside the sandbox.
//!
//! Canaries: files in a fake HOME (credentials, another project, a file outside HOME), a host
//! process, a 127.0.0.1 listener, secrets in the launcher's environment, unix sockets standing
//! for the SSH agent and the D-Bus session bus, and a second Xvfb with an abstract socket
//! standing for the host desktop's X server. Everything a test starts is killed by pid.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

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

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}{nanos}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
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
        write(
            &home.join(".claude.json"),
            &format!("{{\"seeded\": \"{tag}-claude-json\"}}\n"),
        );
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
            tag,
            project,
            canary,
            outside,
            other_project,
            probe,
        }
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
            .world
            .command()
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
    fn on_host(&self, body: &str, nobody: bool) -> Report {
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

/// A host process of the same user (PR-01, PR-02), killed by pid at the end.
struct CanaryProcess {
    child: Child,
    /// Its unique argument, to find it by command line.
    marker: String,
}

impl CanaryProcess {
    fn start() -> CanaryProcess {
        let marker = format!("600.{}", unique());
        let child = Command::new("sleep").arg(&marker).spawn().unwrap();
        CanaryProcess { child, marker }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CanaryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second X server standing for the host desktop's: started WITHOUT `-nolisten local`, so
/// it has an abstract socket, on a free display number ≥ 100. Killed by pid at the end.
struct HostX {
    number: u32,
    child: Child,
}

impl HostX {
    fn start() -> HostX {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = 100 + (std::process::id() % 200) * 4;
        for _ in 0..60 {
            let n = base + NEXT.fetch_add(1, Ordering::SeqCst);
            let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            if lock.exists() || socket.exists() {
                continue;
            }
            let mut child = Command::new("Xvfb")
                .args([
                    &format!(":{n}"),
                    "-nolisten",
                    "tcp",
                    "-screen",
                    "0",
                    "64x64x8",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if abstract_x_socket_listed(n) && socket.exists() {
                    return HostX { number: n, child };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free display number for the host X canary");
    }

    fn abstract_name(&self) -> String {
        format!("@/tmp/.X11-unix/X{}", self.number)
    }
}

impl Drop for HostX {
    /// SIGTERM first: Xvfb then removes its lock file and socket (SIGKILL would leave both).
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listener on an abstract unix socket (no file: reachable by name from the netns).
fn abstract_listener(name: &str) -> UnixListener {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    UnixListener::bind_addr(&addr).unwrap()
}

fn abstract_x_socket_listed(n: u32) -> bool {
    let wanted = format!(" @/tmp/.X11-unix/X{n}");
    read(Path::new("/proc/net/unix"))
        .lines()
        .any(|l| l.ends_with(&wanted))
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

fn status_field(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn parent(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn comm(pid: u32) -> String {
    read(Path::new(&format!("/proc/{pid}/comm")))
        .trim_end()
        .to_owned()
}

/// Direct children of `pid` from `/proc/PID/task/*/children`, zombies included.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            for c in read(&task.path().join("children")).split_whitespace() {
                if let Ok(c) = c.parse() {
                    found.push(c);
                }
            }
        }
    }
    found
}

/// Every zombie in the tree under `pid`.
fn zombies_under(pid: u32) -> Vec<u32> {
    let mut zombies = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in children(p) {
            if state(c) == Some('Z') {
                zombies.push(c);
            }
            frontier.push(c);
        }
    }
    zombies
}

/// Pids of running processes whose command line contains `marker`.
fn with_marker(marker: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| is_running(*p))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
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
    // A first run creates the ~/.claude placeholders on the host (by design, before the
    // sandbox starts); the marker comes after it.
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
        let c = s.on_host(&body(&control), nobody);
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
        let c = s.on_host(NESTED_NETFILTER_PROBES, nobody);
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
    // With --network host (the default) the sandbox shares the host's loopback: this is
    // the residual risk docs/security.md names. If this starts failing, update the docs.
    let r = s.launch(&[], &format!("probe py tcp 127.0.0.1 {port}"));
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
        &[],
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
        &[],
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
    let mut visible = Command::new("sh")
        .args(["-c", "sleep 30", &marker])
        .spawn()
        .unwrap();
    let seen = host_ps_args().contains(&marker);
    visible.kill().unwrap();
    visible.wait().unwrap();
    assert!(seen, "control: ps shows argv");
    drop(dir);
}

#[test]
fn sec_06_claude_code_running_files_are_read_only_and_claude_json_is_a_copy() {
    if !prerequisites(TOOLS) {
        return;
    }
    let s = Scene::new("sec06");
    let r = s.launch(
        &[],
        "for f in settings.json settings.local.json CLAUDE.md; do try \"f_$f\" sh -c \"echo evil >> ~/.claude/$f\"; done\n\
         for d in hooks commands agents plugins; do try \"d_$d\" touch ~/.claude/$d/evil; done\n\
         try mv mv ~/.claude/settings.json ~/.claude/moved.json\n\
         try mvdir mv ~/.claude ~/.claude-moved\n\
         echo \"seeded=$(grep -c claude-json ~/.claude.json)\"\n\
         try copy sh -c 'echo {\\\"evil\\\": 1} > ~/.claude.json'\n\
         try shared touch ~/.claude/session-note\n",
    );
    for f in ["settings.json", "settings.local.json", "CLAUDE.md"] {
        r.expect(&format!("f_{f}"), "refused");
    }
    for d in ["hooks", "commands", "agents", "plugins"] {
        r.expect(&format!("d_{d}"), "refused");
    }
    r.refused("mv");
    r.refused("mvdir");
    r.expect("seeded", "1");
    r.expect("copy", "ok");
    assert!(
        read(&s.world.home.join(".claude.json")).contains("claude-json"),
        "the host's ~/.claude.json was changed from inside"
    );
    assert_eq!(read(&s.world.home.join(".claude/settings.json")), "{}\n");
    // Control: ~/.claude itself is shared read-write by design (login, sessions).
    r.expect("shared", "ok");
    assert!(s.world.home.join(".claude/session-note").exists());
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
    let mut careless = Command::new("sh")
        .args(["-c", "sleep 0 & exec sleep 30"])
        .spawn()
        .unwrap();
    let pid = careless.id();
    let mut found = Vec::new();
    wait_for("a zombie", Duration::from_secs(5), || {
        found = zombies_under(pid);
        !found.is_empty()
    });
    careless.kill().unwrap();
    careless.wait().unwrap();
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
         echo \"capeff=$(grep CapEff /proc/self/status | cut -f2)\"; \
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
    r.expect("capeff", "0000000000000000");
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
