//! What the egress proxy costs (issue 16): `cargo bench --bench egress [-- --rounds N]`.
//!
//! In one run, against a local upstream on 127.0.0.2 (let through by `internal_allowed`, as
//! a public server would be):
//! - a small request (connect, GET, read the answer): direct, through the proxy as plain
//!   HTTP, and through a CONNECT tunnel; median of N rounds each;
//! - a 100 MB download, direct and through a CONNECT tunnel;
//! - the memory of a real sandbox's proxy process (`launch --network proxy` running `sleep`),
//!   idle and after the download went through it.
//!
//! The proxy of the first two runs in this process (`egress::proxy::serve` on a host
//! listener: the same code as in a sandbox, without the namespace).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox_deck::egress::decisions::DecisionLog;
use sandbox_deck::egress::proxy::{Policy, serve};
use sandbox_deck::egress::resolve::Resolver;
use sandbox_deck::egress::rules::Allowlist;

const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");
const DOWNLOAD: usize = 100 * 1024 * 1024;

fn main() {
    let rounds = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200usize);
    let upstream = start_upstream();
    let proxy = start_proxy(upstream);
    let small = |via: Via| median(rounds, || request(via, upstream, proxy, "/small", 5));
    let direct = small(Via::Direct);
    let plain = small(Via::Plain);
    let tunnel = small(Via::Connect);
    println!(
        "request (median of {rounds}): direct {direct:?}, proxy plain HTTP {plain:?} ({:.2}x), CONNECT {tunnel:?} ({:.2}x)",
        ratio(plain, direct),
        ratio(tunnel, direct)
    );
    let big = |via: Via| {
        let start = Instant::now();
        request(via, upstream, proxy, "/big", DOWNLOAD);
        start.elapsed()
    };
    let direct = big(Via::Direct);
    let tunnel = big(Via::Connect);
    let mbps = |d: Duration| DOWNLOAD as f64 / 1e6 / d.as_secs_f64();
    println!(
        "100 MB download: direct {direct:?} ({:.0} MB/s), CONNECT {tunnel:?} ({:.0} MB/s, {:.2}x)",
        mbps(direct),
        mbps(tunnel),
        ratio(tunnel, direct)
    );
    match sandbox_proxy_memory(upstream) {
        Ok((idle, after)) => println!(
            "a sandbox's proxy process: {idle} kB resident idle, {after} kB after 100 MB through it"
        ),
        Err(e) => println!("a sandbox's proxy process: not measured ({e})"),
    }
}

#[derive(Clone, Copy)]
enum Via {
    Direct,
    Plain,
    Connect,
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Answers `GET /small` with 5 bytes and `GET /big` with 100 MB, then closes.
fn start_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0").expect("127.0.0.2 (loopback)");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let size = if head.starts_with(b"GET /big") {
        DOWNLOAD
    } else {
        5
    };
    let _ = stream.set_nodelay(true);
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        if stream.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n;
    }
}

fn start_proxy(upstream: u16) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut allowlist = Allowlist::default();
    allowlist
        .extend_from([format!("127.0.0.2:{upstream}").as_str()])
        .unwrap();
    let log = std::env::temp_dir().join(format!("sd-bench-egress-{}.log", std::process::id()));
    let policy = Arc::new(Policy {
        allowlist: std::sync::RwLock::new(allowlist),
        reload: None,
        resolver: Resolver::System,
        internal_allowed: vec!["127.0.0.2".parse().unwrap()],
        log: DecisionLog::new(log, 0),
        injection: None,
        holds: None,
    });
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = runtime.block_on(serve(vec![listener], policy));
    });
    port
}

/// One GET, its whole answer read; panics unless `size` body bytes came.
fn request(via: Via, upstream: u16, proxy: u16, path: &str, size: usize) {
    let target = format!("127.0.0.2:{upstream}");
    let (mut stream, line) = match via {
        Via::Direct => (
            TcpStream::connect(&target).unwrap(),
            format!("GET {path} HTTP/1.1"),
        ),
        Via::Plain => (
            TcpStream::connect(("127.0.0.1", proxy)).unwrap(),
            format!("GET http://{target}{path} HTTP/1.1"),
        ),
        Via::Connect => {
            let mut s = TcpStream::connect(("127.0.0.1", proxy)).unwrap();
            let connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            s.write_all(connect.as_bytes()).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            assert!(
                head.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&head)
            );
            (s, format!("GET {path} HTTP/1.1"))
        }
    };
    // One write, no Nagle: as curl and the agent's HTTP clients do.
    stream.set_nodelay(true).unwrap();
    let head = format!("{line}\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total > size, "only {total} bytes");
}

/// The resident memory (kB) of a real sandbox's proxy, idle and after 100 MB through it.
fn sandbox_proxy_memory(upstream: u16) -> Result<(u64, u64), String> {
    let root = tempfile::Builder::new()
        .prefix("sde-")
        .tempdir_in("/tmp")
        .map_err(|e| e.to_string())?;
    let base = root.path();
    let project = base.join("project");
    let config = base.join("config/sandbox-deck");
    std::fs::create_dir_all(&project).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(base.join("run")).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(base.join("run"), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    std::fs::write(
        config.join("config.toml"),
        format!("[egress]\ndefaults = false\nallow = [\"127.0.0.2:{upstream}\"]\ninternal_allowed = [\"127.0.0.2\"]\n"),
    )
    .map_err(|e| e.to_string())?;
    let done = project.join("done");
    let script = format!(
        "sleep 1; cat /proc/self/status >/dev/null; touch {p}/idle; while [ ! -e {p}/go ]; do sleep 0.05; done; \
         curl -s -o /dev/null --proxytunnel -x http://127.0.0.1:3128 http://127.0.0.2:{upstream}/big; touch {d}; sleep 30",
        p = project.display(),
        d = done.display()
    );
    let mut child = std::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", base)
        .env("XDG_STATE_HOME", base.join("state"))
        .env("XDG_CONFIG_HOME", base.join("config"))
        .env("XDG_RUNTIME_DIR", base.join("run"))
        .args(["launch", "bubblewrap", "--new"])
        .arg(&project)
        .args(["--shell", "--network", "proxy", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let wait = |path: &std::path::Path| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        path.exists()
    };
    let result = (|| {
        if !wait(&project.join("idle")) {
            return Err("the sandbox did not start".to_string());
        }
        let pid = proxy_pid(base).ok_or("no proxy process found")?;
        let idle = rss_kb(pid).ok_or("no VmRSS")?;
        std::fs::write(project.join("go"), "").map_err(|e| e.to_string())?;
        if !wait(&done) {
            return Err("the download did not end".to_string());
        }
        let after = rss_kb(pid).ok_or("no VmRSS")?;
        Ok((idle, after))
    })();
    let _ = child.kill();
    let _ = child.wait();
    // Anything still naming our temp dir (the sandbox, its proxy) is ended by pid.
    for pid in processes_naming(base) {
        // SAFETY: kill with a pid of a process whose command line names our temp dir.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    result
}

fn proxy_pid(base: &std::path::Path) -> Option<u32> {
    processes_naming(base).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("egress-proxy"))
            .unwrap_or(false)
    })
}

fn processes_naming(base: &std::path::Path) -> Vec<u32> {
    let marker = base.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                .unwrap_or(false)
        })
        .collect()
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
