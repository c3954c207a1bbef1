//! The allowlist: which destinations a sandbox's proxy lets through. Data, not code: the
//! shipped defaults (`assets/egress-allowlist.txt`), the user's `egress.allow`, and the
//! sandbox's own `--allow`, one rule each.
//!
//! A rule is an exact host (`github.com`), a suffix (`*.githubusercontent.com`, which does
//! not match the bare suffix), or an IP address, each with an optional port (`host:8443`,
//! `[::1]:80`). Without a port a rule allows 443 and 80.
//!
//! What a client asks for is judged as a [`Target`]: a name is kept to the shape DNS names
//! have (letters, digits, `-`, dots, no trailing dot), lower-cased; anything that reads as a
//! number (`127.1`, `2130706433`, `0x7f.1`) is an IP literal, taken only in its canonical
//! spelling and allowed only when a rule names that address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The ports a rule without one allows.
pub const DEFAULT_PORTS: [u16; 2] = [443, 80];

/// The host part of a destination, as a client spelled it and we accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower case, no trailing dot.
    Name(String),
    /// An IP address (IPv4-mapped IPv6 addresses are kept as they are: a rule must name
    /// them so to match).
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Where a client wants to go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix`, never `suffix` itself.
    Suffix(String),
    Ip(IpAddr),
}

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pattern: Pattern,
    port: Option<u16>,
}

impl Rule {
    /// Parses `HOST`, `HOST:PORT`, `*.SUFFIX[:PORT]`, `IP`, `[IPV6][:PORT]`.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let (host, port) = split_host_port(text)?;
        let pattern = if let Some(suffix) = host.strip_prefix("*.") {
            match parse_host(suffix)? {
                Host::Name(name) => Pattern::Suffix(name),
                Host::Ip(_) => return Err(format!("{text:?}: a wildcard needs a name")),
            }
        } else {
            match parse_host(host)? {
                Host::Name(name) => Pattern::Exact(name),
                Host::Ip(ip) => Pattern::Ip(ip),
            }
        };
        Ok(Rule { pattern, port })
    }

    pub fn allows(&self, target: &Target) -> bool {
        let port_ok = match self.port {
            Some(port) => port == target.port,
            None => DEFAULT_PORTS.contains(&target.port),
        };
        port_ok
            && match (&self.pattern, &target.host) {
                (Pattern::Exact(rule), Host::Name(name)) => rule == name,
                (Pattern::Suffix(suffix), Host::Name(name)) => name
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                (Pattern::Ip(rule), Host::Ip(ip)) => rule == ip,
                _ => false,
            }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Exact(name) => f.write_str(name)?,
            Pattern::Suffix(suffix) => write!(f, "*.{suffix}")?,
            Pattern::Ip(ip) => write!(f, "{}", Host::Ip(*ip))?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// The rules of one sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    rules: Vec<Rule>,
}

impl Allowlist {
    /// Rules from lines of text: `#` starts a comment, blank lines are skipped. A bad line is
    /// an error naming it, never skipped in silence.
    pub fn parse_lines(text: &str, origin: &str) -> Result<Allowlist, String> {
        let mut rules = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let rule =
                Rule::parse(line).map_err(|e| format!("{origin} line {}: {e}", number + 1))?;
            rules.push(rule);
        }
        Ok(Allowlist { rules })
    }

    /// Adds rules given one per string (config entries, `--allow`).
    pub fn extend_from<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        for entry in entries {
            self.rules.push(Rule::parse(entry)?);
        }
        Ok(())
    }

    pub fn allows(&self, target: &Target) -> bool {
        self.rules.iter().any(|rule| rule.allows(target))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Reads `host:port` as a client sent it (a CONNECT authority, a URL's authority, a Host
/// header), with `default_port` when it has none.
pub fn parse_target(authority: &str, default_port: u16) -> Result<Target, String> {
    let (host, port) = split_host_port(authority)?;
    Ok(Target {
        host: parse_host(host)?,
        port: port.unwrap_or(default_port),
    })
}

/// Splits `host[:port]` or `[v6][:port]`. A port is digits only, 1 to 65535.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: unclosed ["))?;
        match after {
            "" => (v6, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (v6, Some(port)),
                None => return Err(format!("{text:?}: junk after ]")),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((_, _)) if text.matches(':').count() > 1 => {
                return Err(format!("{text:?}: an IPv6 address goes in brackets"));
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => Some(parse_port(digits).ok_or_else(|| format!("{text:?}: bad port"))?),
    };
    if text.starts_with('[') && !host.contains(':') {
        return Err(format!("{text:?}: only IPv6 addresses go in brackets"));
    }
    Ok((host, port))
}

fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|p| *p != 0)
}

/// A host as we accept it: an IPv6 address (bracketless here), a canonical dotted-quad
/// IPv4, or a DNS name of letters, digits and `-`. Anything else that a resolver would read
/// as a number (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`) is refused: only the
/// canonical spelling of an address can be named, so a rule and a request agree on it.
fn parse_host(host: &str) -> Result<Host, String> {
    if host.contains(':') {
        return host
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("{host:?}: bad IPv6 address"));
    }
    let lower = host.to_ascii_lowercase();
    if lower.is_empty() || lower.len() > 253 {
        return Err(format!("{host:?}: not a host name"));
    }
    if lower.ends_with('.') {
        return Err(format!(
            "{host:?}: a trailing dot is not accepted; name it without"
        ));
    }
    let labels: Vec<&str> = lower.split('.').collect();
    let last = labels.last().copied().unwrap_or_default();
    // No top-level domain starts with a digit; resolvers read such a "name" as an address.
    if last.starts_with(|c: char| c.is_ascii_digit()) {
        return match lower.parse::<Ipv4Addr>() {
            Ok(ip) if ip.to_string() == lower => Ok(Host::Ip(IpAddr::V4(ip))),
            _ => Err(format!("{host:?}: an address in a non-canonical spelling")),
        };
    }
    for label in &labels {
        let good = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !good {
            return Err(format!("{host:?}: not a host name"));
        }
    }
    Ok(Host::Name(lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        parse_target(text, 443).unwrap()
    }

    fn list(rules: &[&str]) -> Allowlist {
        let mut list = Allowlist::default();
        list.extend_from(rules.iter().copied()).unwrap();
        list
    }

    #[test]
    fn exact_hosts_match_on_the_default_ports_only() {
        let list = list(&["github.com"]);
        assert!(list.allows(&target("github.com:443")));
        assert!(list.allows(&target("GitHub.COM:80")));
        assert!(!list.allows(&target("github.com:22")));
        assert!(!list.allows(&target("api.github.com:443")));
        assert!(!list.allows(&target("evilgithub.com:443")));
    }

    #[test]
    fn a_suffix_matches_subdomains_never_the_bare_suffix_nor_lookalikes() {
        let list = list(&["*.example.org"]);
        assert!(list.allows(&target("a.example.org")));
        assert!(list.allows(&target("a.b.example.org")));
        assert!(!list.allows(&target("example.org")));
        assert!(!list.allows(&target("badexample.org")));
        assert!(!list.allows(&target("example.org.evil.net")));
    }

    #[test]
    fn a_rule_port_replaces_the_defaults() {
        let list = list(&["registry.local:8443", "[2001:db8::1]:80"]);
        assert!(list.allows(&target("registry.local:8443")));
        assert!(!list.allows(&target("registry.local:443")));
        assert!(list.allows(&target("[2001:db8::1]:80")));
        assert!(!list.allows(&target("[2001:db8::1]:443")));
    }

    #[test]
    fn ip_literals_pass_only_when_listed_in_their_canonical_spelling() {
        let list = list(&["github.com", "203.0.113.7"]);
        assert!(list.allows(&target("203.0.113.7:443")));
        assert!(!list.allows(&target("203.0.113.8:443")));
        for odd in [
            "127.1",
            "2130706433",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "127.0.0.01",
            "1.2.3",
        ] {
            assert!(parse_target(odd, 443).is_err(), "{odd} must be refused");
        }
        let mapped = target("[::ffff:203.0.113.7]:443");
        assert!(
            !list.allows(&mapped),
            "a mapped spelling is another address"
        );
    }

    #[test]
    fn names_keep_to_the_dns_shape() {
        for bad in [
            "github.com.",
            "",
            "a..b",
            "-a.com",
            "a_b.com",
            "allowed.com@evil.net",
            "ex ample.com",
            "exämple.com",
            "github.com:0",
            "github.com:65536",
            "github.com:+443",
            "::1",
            "[::1",
        ] {
            assert!(parse_target(bad, 443).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            target("xn--bcher-kva.example").host,
            Host::Name("xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn allowlist_files_skip_comments_and_name_a_bad_line() {
        let list = Allowlist::parse_lines("# c\n\napi.anthropic.com # the API\n*.npmjs.org\n", "f")
            .unwrap();
        assert_eq!(list.rules().len(), 2);
        let err = Allowlist::parse_lines("ok.com\nbad host\n", "defaults").unwrap_err();
        assert!(err.contains("defaults line 2"), "{err}");
    }

    #[test]
    fn the_shipped_defaults_parse() {
        let list = Allowlist::parse_lines(super::super::DEFAULT_ALLOWLIST, "defaults").unwrap();
        assert!(list.allows(&target("api.anthropic.com:443")));
        assert!(!list.allows(&target("example.com:443")));
    }
}
