//! Egress by allowlist (`--network proxy`): the sandbox has its own network namespace with
//! only `lo`, and a proxy of the host's, one per sandbox, listening inside it at
//! 127.0.0.1:3128 and [::1]:3128 (see `plant`), lets through what its allowlist names.
//!
//! The proxy is its own process (`sandbox-deck egress-proxy`), started detached by the
//! launch like the git sync helper: it never depends on the TUI or the engine, and it ends
//! when the sandbox's first process does. Its listener is the sandbox's identity: no
//! password, and one sandbox can never use another's policy.

pub mod address;
pub mod credential;
pub mod decisions;
pub mod held;
pub mod inject;
pub mod plant;
pub mod proxy;
pub mod resolve;
pub mod rules;
mod spawn;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use spawn::{BwrapFds, detach as spawn_detached, run_proxy, start_proxy};

use crate::error::{DeckError, IoContext, Result};
use crate::sandbox::SandboxName;
use rules::Allowlist;

/// `[egress]` in the config: what a `--network proxy` sandbox may reach. Defined here, read
/// by `config`: the settings of a module belong to it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Whether the shipped allowlist (`assets/egress-allowlist.txt`) applies.
    pub defaults: bool,
    /// The user's own rules, added to the defaults.
    pub allow: Vec<String>,
    /// A DNS server (`IP:PORT`) the proxies ask instead of the host's resolver; "" for the
    /// host's.
    pub resolver: String,
    /// Internal addresses an allowed name may still resolve to (a mirror on the LAN).
    pub internal_allowed: Vec<std::net::IpAddr>,
    /// The size a sandbox's decision log may reach before it is rotated; 0 turns it off.
    pub log_max_bytes: u64,
    /// Where the agent's API requests go, with the real credential, over TLS (`HOST:PORT`,
    /// verified for HOST).
    pub api_upstream: String,
    /// A PEM file of extra certificate authorities trusted for that ("" for none).
    pub extra_ca: String,
    /// How long a connection to an unlisted host waits for the user's answer (see `held`);
    /// 0 refuses it at once.
    pub hold_seconds: u64,
    /// How many connections of one sandbox may wait at once; more are refused at once.
    pub hold_max: usize,
}

/// The shipped allowlist: every rule with a comment saying why.
pub const DEFAULT_ALLOWLIST: &str = include_str!("../../assets/egress-allowlist.txt");

/// What one sandbox's proxy enforces, written by the launch for the proxy to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub sandbox: SandboxName,
    /// Every rule: the defaults, the user's, the sandbox's own.
    pub rules: Vec<String>,
    pub resolver: Option<SocketAddr>,
    pub internal_allowed: Vec<IpAddr>,
    pub log: PathBuf,
    pub log_max_bytes: u64,
    /// The credential injection, when the user handed a credential over.
    #[serde(default)]
    pub api: Option<ApiSpec>,
    /// Where and how long connections to unlisted hosts wait for an answer; `None`: refused
    /// at once.
    #[serde(default)]
    pub hold: Option<HoldSpec>,
}

/// The holding of connections to unlisted hosts (see `held`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSpec {
    /// The sandbox's `egress-held` dir.
    pub dir: PathBuf,
    pub seconds: u64,
    pub max: usize,
}

/// Where the proxy finds the real credential, the placeholder it stands for, and where the
/// agent's API requests go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSpec {
    pub credential_file: PathBuf,
    pub placeholder: String,
    /// `host:port`, reached over TLS and verified for `host`.
    pub upstream: String,
    /// A PEM file of extra trusted authorities.
    pub extra_ca: Option<PathBuf>,
}

impl Spec {
    /// The spec of a sandbox from the config and its own `--allow` rules; a bad rule is an
    /// error that says where it came from.
    pub fn build(
        sandbox: &SandboxName,
        config: &EgressConfig,
        own: &[String],
        log: PathBuf,
    ) -> Result<Spec> {
        let bad = |message: String| DeckError::Config {
            path: "egress".into(),
            message,
        };
        let mut list = if config.defaults {
            Allowlist::parse_lines(DEFAULT_ALLOWLIST, "the shipped allowlist").map_err(bad)?
        } else {
            Allowlist::default()
        };
        list.extend_from(config.allow.iter().map(String::as_str))
            .map_err(|e| bad(format!("egress.allow: {e}")))?;
        list.extend_from(own.iter().map(String::as_str))
            .map_err(|e| bad(format!("--allow: {e}")))?;
        let resolver = match config.resolver.trim() {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| bad(format!("egress.resolver {text:?}: expected IP:PORT")))?,
            ),
        };
        Ok(Spec {
            sandbox: sandbox.clone(),
            rules: list.rules().iter().map(ToString::to_string).collect(),
            resolver,
            internal_allowed: config.internal_allowed.clone(),
            log,
            log_max_bytes: config.log_max_bytes,
            api: None,
            hold: None,
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| DeckError::json("writing the egress spec", e))?;
        crate::host::fs::write_private(path, &text)
    }

    pub fn read(path: &Path) -> Result<Spec> {
        let text = std::fs::read(path).context_io(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| DeckError::json(format!("reading {}", path.display()), e))
    }

    fn policy(&self, path: &Path) -> Result<proxy::Policy> {
        let mut allowlist = Allowlist::default();
        allowlist
            .extend_from(self.rules.iter().map(String::as_str))
            .map_err(|e| DeckError::host("reading the egress spec", e))?;
        let injection = match &self.api {
            Some(api) => Some(api.injection()?),
            None => None,
        };
        let seen = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let holds = match &self.hold {
            Some(hold) if hold.seconds > 0 && hold.max > 0 => Some(held::Holds::new(
                hold.dir.clone(),
                std::time::Duration::from_secs(hold.seconds),
                hold.max,
            )?),
            _ => None,
        };
        Ok(proxy::Policy {
            injection,
            holds,
            allowlist: std::sync::RwLock::new(allowlist),
            reload: Some(proxy::Reload {
                spec: path.to_owned(),
                seen: std::sync::Mutex::new(seen),
            }),
            resolver: self
                .resolver
                .map_or(resolve::Resolver::System, resolve::Resolver::Server),
            internal_allowed: self.internal_allowed.clone(),
            log: decisions::DecisionLog::new(self.log.clone(), self.log_max_bytes),
        })
    }
}

impl ApiSpec {
    /// The injector, the real credential read from its file.
    fn injection(&self) -> Result<inject::Injection> {
        let credential = credential::Credential::load(&self.credential_file)?.ok_or_else(|| {
            DeckError::host(
                "starting the credential injection",
                format!("{} is gone", self.credential_file.display()),
            )
        })?;
        let (host, port) = self
            .upstream
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
            .ok_or_else(|| DeckError::host("egress.api_upstream", "expected HOST:PORT"))?;
        let tls = inject::tls_config(self.extra_ca.as_deref())?;
        Ok(inject::Injection {
            placeholder: self.placeholder.clone(),
            credential,
            host,
            port,
            tls: std::sync::Arc::new(tls),
        })
    }
}

/// The proxy's address inside, as clients are told it.
pub fn proxy_url() -> String {
    format!("http://127.0.0.1:{}", plant::PROXY_PORT)
}

/// The environment that points everything inside at the proxy. Both cases: curl reads only
/// `http_proxy` in lower case, others only upper. `NO_PROXY` keeps loopback direct (the
/// sandbox's own services), nothing else.
pub fn proxy_env() -> Vec<(String, String)> {
    let url = proxy_url();
    let mut env = Vec::new();
    for key in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY"] {
        env.push((key.to_string(), url.clone()));
        env.push((key.to_ascii_lowercase(), url.clone()));
    }
    let direct = "localhost,127.0.0.1,::1".to_string();
    // Claude Code's telemetry and update checks would only meet the allowlist's 403s.
    env.push((
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
        "1".into(),
    ));
    // The browser's wrapper passes it as --proxy-server (assets/chromium-wrapper.sh).
    env.push(("SANDBOX_DECK_PROXY".into(), url.clone()));
    env.push(("NO_PROXY".into(), direct.clone()));
    env.push(("no_proxy".into(), direct));
    // git over ssh: the CONNECT goes through the proxy (bash's /dev/tcp, no tool needed).
    env.push((
        "GIT_SSH_COMMAND".into(),
        format!("ssh -o ProxyCommand='{CONNECT_SCRIPT} %h %p'"),
    ));
    env
}

/// Where the CONNECT helper for ssh's ProxyCommand is inside.
pub const CONNECT_SCRIPT: &str = "/run/sandbox-deck/proxy-connect";

/// The helper itself: a CONNECT through the proxy, then the tunnel on stdin/stdout. Its
/// arguments come from ssh (`%h %p`); they are checked to be a host and a port first.
pub const CONNECT_SCRIPT_TEXT: &str = r#"#!/bin/bash
# sandbox-deck: ssh's ProxyCommand through the sandbox's egress proxy.
set -eu
host=$1 port=$2
[[ $host =~ ^[A-Za-z0-9.-]+$ && $port =~ ^[0-9]+$ ]] || { echo "bad host or port" >&2; exit 2; }
exec 3<>/dev/tcp/127.0.0.1/3128
printf 'CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n' "$host" "$port" "$host" "$port" >&3
IFS= read -r status <&3
case $status in "HTTP/1."?" 200"*) ;; *) echo "proxy: $status" >&2; exit 1;; esac
while IFS= read -r line <&3; do [[ $line == $'\r' || -z $line ]] && break; done
cat <&3 & cat >&3
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec file names its sandbox; a file naming something that is not a sandbox name
    /// (written by hand, or damaged) is refused when read, not carried into the proxy.
    #[test]
    fn a_spec_round_trips_and_a_bad_sandbox_name_in_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let name = SandboxName::parse("web-1").unwrap();
        let spec = Spec::build(
            &name,
            &crate::config::Config::defaults().egress,
            &[],
            dir.path().join("log"),
        )
        .unwrap();
        let path = dir.path().join("spec.json");
        spec.write(&path).unwrap();
        assert_eq!(Spec::read(&path).unwrap(), spec);
        let text = std::fs::read_to_string(&path).unwrap();
        let bad = text.replace("\"web-1\"", "\"../web\"");
        assert_ne!(bad, text, "the name is in the file");
        std::fs::write(&path, bad).unwrap();
        let err = Spec::read(&path).unwrap_err().to_string();
        assert!(err.contains("reading"), "{err}");
    }
}
