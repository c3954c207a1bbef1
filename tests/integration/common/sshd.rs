//! A real OpenSSH server standing for another machine: `sshd` on a free loopback port with
//! its own host key, `authorized_keys` and config (no system file read or changed), whose
//! sessions live in a [`World`]'s HOME and XDG dirs, so each server is a "host" with its
//! own registry and engine. [`SshClient`] is the laptop's side: its own config, key and
//! known_hosts, BatchMode (a test never waits on a prompt).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{BIN, Guarded, SpawnGuarded, World, is_running, prerequisites, succeed, which};

/// What `sandbox-deck` a session of the server finds on its PATH.
pub enum RemoteDeck {
    /// The sandbox-deck under test.
    Real,
    /// None at all (a host where it is not installed).
    Missing,
    /// A script standing in for it (a bridge that prints garbage, an old engine).
    StandIn(String),
}

/// One `sshd`, ended by pid when dropped, with whatever engine its sessions started.
pub struct Sshd {
    /// The name the laptop's ssh config knows this host by.
    pub alias: String,
    pub port: u16,
    program: PathBuf,
    dir: PathBuf,
    /// The host world's runtime dir: an engine started through a session names it.
    runtime: PathBuf,
    process: Option<Guarded>,
}

/// The OpenSSH programs, or false (having said why; a failure under CI=true).
pub fn ssh_prerequisites() -> bool {
    prerequisites(&["ssh", "ssh-keygen"]) && sshd_program().is_some()
}

/// sshd wants to be started by its absolute path; it lives in an sbin dir that a user's
/// PATH may lack.
fn sshd_program() -> Option<PathBuf> {
    let found = which("sshd").or_else(|| {
        let usual = PathBuf::from("/usr/sbin/sshd");
        usual.is_file().then_some(usual)
    });
    if found.is_none() {
        prerequisites(&["sshd"]);
    }
    found
}

fn keygen(path: &Path) {
    succeed(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "sandbox-deck-test",
                "-f",
            ])
            .arg(path),
    );
}

impl Sshd {
    /// Starts a server for `host` known as `alias`. Sessions get `host`'s environment (as
    /// [`World::command`] sets it) with `deck` first on PATH. None when OpenSSH is missing.
    pub fn start(host: &World, alias: &str, deck: RemoteDeck) -> Option<Sshd> {
        if !ssh_prerequisites() {
            return None;
        }
        let program = sshd_program()?;
        let dir = host.path(&format!("sshd-{alias}"));
        std::fs::create_dir_all(&dir).unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let path = remote_path(&bin, deck);
        // Privilege separation needs its empty dir when sshd runs as root.
        if nix::unistd::geteuid().is_root() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let mut sshd = Sshd {
            alias: alias.to_owned(),
            port: 0,
            program,
            runtime: host.runtime.clone(),
            dir,
            process: None,
        };
        // A free port can be taken between our probe and sshd's bind: try a few.
        for _ in 0..5 {
            sshd.port = free_port();
            std::fs::write(sshd.config_path(), sshd.config(host, &path)).unwrap();
            if sshd.launch() {
                std::fs::write(sshd.dir.join("known_hosts"), sshd.known_hosts_line()).unwrap();
                return Some(sshd);
            }
        }
        panic!(
            "sshd did not start: {}",
            super::read(&sshd.dir.join("sshd.log"))
        );
    }

    /// Starts the server on its port; false when it ended first (the port was taken).
    fn launch(&mut self) -> bool {
        let process = Command::new(&self.program)
            .args(["-D", "-e", "-f"])
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("sshd.log")).unwrap())
            .spawn_guarded();
        self.process = wait_listening(process, self.port);
        self.process.is_some()
    }

    /// The host back after [`Sshd::stop`]: the same port, keys and world.
    pub fn restart(&mut self) {
        assert!(
            self.launch(),
            "sshd did not come back on {}: {}",
            self.port,
            super::read(&self.dir.join("sshd.log"))
        );
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    fn config(&self, host: &World, path: &str) -> String {
        let user = current_user();
        let mut env = Vec::new();
        for (key, value) in host.command().get_envs() {
            let (key, value) = (key.to_string_lossy(), value.unwrap_or_default());
            let value = if key == "PATH" {
                path.to_owned()
            } else {
                value.to_string_lossy().into_owned()
            };
            assert!(
                !value.contains(['"', '\\', ' ']),
                "a value SetEnv cannot carry: {value}"
            );
            env.push(format!("{key}={value}"));
        }
        env.push(self.marker());
        let dir = self.dir.display();
        format!(
            "Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
PidFile none
AuthorizedKeysFile {dir}/authorized_keys
AllowUsers {user}
# The keys live in a temp dir under a world-writable /tmp.
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
PrintMotd no
PrintLastLog no
LogLevel ERROR
SetEnv {env}
",
            port = self.port,
            env = env.join(" ")
        )
    }

    fn known_hosts_line(&self) -> String {
        let key = super::read(&self.dir.join("host_key.pub"));
        let mut fields = key.split_whitespace();
        let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)
    }

    /// This host's block of a client config.
    fn client_block(&self) -> String {
        let dir = self.dir.display();
        format!(
            "Host {alias}
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {dir}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {dir}/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR
",
            alias = self.alias,
            port = self.port,
            user = current_user()
        )
    }

    /// Ends the server, its sessions and the engines they started: a host that goes away.
    pub fn stop(&mut self) {
        self.end_engines();
        self.end_server();
    }

    /// The sessions first (they outlive their listener), then the listener, by pid.
    fn end_server(&mut self) {
        let Some(process) = self.process.take() else {
            return;
        };
        for pid in super::descendants(process.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        drop(process);
    }

    /// What a session started can outlive it and the server: a command (found by the
    /// marker every session carries) and an engine (`bridge` found none; its environment
    /// is rebuilt without the marker, so found by its runtime dir).
    fn end_engines(&self) {
        let marker = self.marker();
        let runtime = format!("XDG_RUNTIME_DIR={}", self.runtime.display());
        for pid in super::all_pids() {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let has = |wanted: &str| environ.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes());
            let is_engine = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"serve"));
            let ours = has(&marker) || (has(&runtime) && is_engine);
            if ours && pid != std::process::id() && is_running(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// The variable every session of this server has.
    fn marker(&self) -> String {
        format!("SANDBOX_DECK_TEST_SSHD={}", self.dir.display())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PATH of a session: a dir with `deck` as `sandbox-deck` (or nothing), then ours.
fn remote_path(bin: &Path, deck: RemoteDeck) -> String {
    let program = bin.join("sandbox-deck");
    match deck {
        RemoteDeck::Real => std::os::unix::fs::symlink(BIN, &program).unwrap(),
        RemoteDeck::Missing => {}
        RemoteDeck::StandIn(script) => {
            std::fs::write(&program, script).unwrap();
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let ours = std::env::var("PATH").unwrap_or_default();
    // Whatever sandbox-deck our own PATH has must not stand in for the missing one.
    let rest: Vec<&str> = ours
        .split(':')
        .filter(|d| !Path::new(d).join("sandbox-deck").exists())
        .collect();
    format!("{}:{}", bin.display(), rest.join(":"))
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The server once it greets on `port`; None when it ended first (the port was taken).
fn wait_listening(mut process: Guarded, port: u16) -> Option<Guarded> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if process.try_wait().ok().flatten().is_some() {
            return None;
        }
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Some(process);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user's name")
}

/// The laptop's ssh: a config with one block per host, used as `ssh -F CONFIG`.
pub struct SshClient {
    pub config: PathBuf,
}

impl SshClient {
    /// Writes the config into `laptop` for `hosts`.
    pub fn new(laptop: &World, hosts: &[&Sshd]) -> SshClient {
        let config = laptop.path("ssh_config");
        let text: String = hosts.iter().map(|h| h.client_block()).collect();
        std::fs::write(&config, text).unwrap();
        SshClient { config }
    }

    /// The command line `--ssh` and `mirror.ssh_command` take.
    pub fn command_line(&self) -> String {
        format!("ssh -F {}", self.config.display())
    }

    /// Makes it `laptop`'s `mirror.ssh_command`.
    pub fn configure(&self, laptop: &World) {
        let dir = laptop.path("config/sandbox-deck");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        let mut text = super::read(&file);
        text.push_str(&format!(
            "\n[mirror]\nssh_command = {:?}\n",
            self.command_line()
        ));
        std::fs::write(file, text).unwrap();
    }

    /// `ssh -T ALIAS ARGS...` through this config, for checks of the fixture itself.
    pub fn run(&self, alias: &str, args: &[&str]) -> std::process::Output {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .args(["-T", alias])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }
}
