//! The forward proxy itself: HTTP CONNECT (for HTTPS and anything tunnelled) and
//! absolute-form plain HTTP, judged against the allowlist before any DNS query, resolved on
//! the host, every address checked, then connected to exactly.
//!
//! Plain HTTP is rebuilt, never passed through: the request line from the parsed URL, `Host`
//! from the URL (a different or a second `Host` header is refused), hop-by-hop headers
//! dropped, `Connection: close` added.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::address::internal_reason;
use super::credential::API_HOST;
use super::decisions::{Decision, DecisionLog};
use super::held::{Holds, Outcome};
use super::inject::Injection;
use super::resolve::Resolver;
use super::rules::{Allowlist, Host, Target, parse_target};

/// A request head larger than this is refused (431).
const MAX_HEAD: usize = 32 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RELAY_BUFFER: usize = 64 * 1024;
/// Connections served at once; more wait for a slot (a flood stays bounded).
const MAX_CONNECTIONS: usize = 256;

/// What one sandbox's proxy enforces.
#[derive(Debug)]
pub struct Policy {
    pub allowlist: std::sync::RwLock<Allowlist>,
    /// The spec file to take new rules from when it changes (`sandbox-deck net NAME allow`).
    pub reload: Option<Reload>,
    pub resolver: Resolver,
    /// Addresses that may be connected to although internal (`egress.internal_allowed`):
    /// a registry mirror on the LAN, a test's local upstream.
    pub internal_allowed: Vec<IpAddr>,
    pub log: DecisionLog,
    /// The credential to put in the agent's API requests, when the user handed one over.
    pub injection: Option<Injection>,
    /// Where connections to unlisted hosts wait for the user; `None`: refused at once.
    pub holds: Option<Holds>,
}

/// Where a running proxy's rules come from, and when it last read them.
#[derive(Debug)]
pub struct Reload {
    pub spec: std::path::PathBuf,
    pub seen: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl Policy {
    /// Whether the allowlist lets `target` through, its rules re-read first when the spec
    /// file changed. A spec that no longer reads keeps the rules in force.
    fn allows(&self, target: &Target) -> bool {
        if let Some(reload) = &self.reload {
            let modified = std::fs::metadata(&reload.spec)
                .and_then(|m| m.modified())
                .ok();
            let mut seen = reload.seen.lock().unwrap_or_else(|p| p.into_inner());
            if modified.is_some() && modified != *seen {
                *seen = modified;
                if let Ok(spec) = super::Spec::read(&reload.spec) {
                    let mut fresh = Allowlist::default();
                    if fresh
                        .extend_from(spec.rules.iter().map(String::as_str))
                        .is_ok()
                    {
                        *self.allowlist.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                    }
                }
            }
        }
        self.allowlist
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .allows(target)
            || self
                .holds
                .as_ref()
                .is_some_and(|h| h.session_allows(target))
    }
}

/// Serves every listener until the process ends.
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    policy: Arc<Policy>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = Vec::new();
    for listener in listeners {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let (policy, slots) = (policy.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // A relay adds a hop: without this, Nagle on one side and delayed ACKs on the
                // other cost 40 ms on small exchanges.
                let _ = stream.set_nodelay(true);
                let policy = policy.clone();
                tokio::spawn(async move {
                    handle(stream, &policy).await;
                    drop(permit);
                });
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await {
            tracing::warn!("a listener of the egress proxy ended: {e}");
        }
    }
    Ok(())
}

/// What a client asked for, once its head was read and judged well-formed.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Connect(Target),
    Http(HttpRequest),
}

/// A plain-HTTP request, parsed: what its rebuilt head is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpRequest {
    target: Target,
    method: String,
    path: String,
    /// The URL's authority, as the `Host` the upstream gets.
    authority: String,
    /// The client's headers, hop-by-hop ones already dropped.
    headers: Vec<(String, Vec<u8>)>,
}

/// A refusal: the status and the one line that says why.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: u16,
    why: String,
}

fn refuse(status: u16, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
    }
}

mod api;

async fn handle(mut client: TcpStream, policy: &Policy) {
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        Ok(Err(refusal)) => return answer(&mut client, &refusal).await,
        Err(_) => return answer(&mut client, &refuse(408, "the request head took too long")).await,
    };
    let request = match parse_request(&head) {
        Ok(request) => request,
        Err(refusal) => return answer(&mut client, &refusal).await,
    };
    if let (Request::Http(http), Some(injection)) = (&request, &policy.injection)
        && http.target.port == 80
        && http.target.host == Host::Name(API_HOST.into())
    {
        return api::forward(client, http, rest, injection, policy).await;
    }
    let (kind, target) = match &request {
        Request::Connect(target) => ("connect", target.clone()),
        Request::Http(http) => ("http", http.target.clone()),
    };
    let mut decision = Decision::new(kind, &target);
    let judged = tokio::select! {
        // The judgement first: one the allowlist settles is never taken for a departure.
        biased;
        judged = judge(kind, &target, policy, &mut decision) => judged,
        // A client that gives up while held frees its place at once.
        () = gone(&client) => Err(refuse(403, format!("{target}: the client left while held"))),
    };
    if let Err(refusal) = judged {
        decision.reason = Some(refusal.why.clone());
        policy.log.record(&decision);
        return answer(&mut client, &refusal).await;
    }
    let upstream = match open_upstream(&target, policy).await {
        Ok((upstream, address)) => {
            decision.allowed = true;
            decision.address = Some(address.to_string());
            upstream
        }
        Err(refusal) => {
            decision.allowed = refusal.status == 502;
            decision.reason = Some(refusal.why.clone());
            policy.log.record(&decision);
            return answer(&mut client, &refusal).await;
        }
    };
    let first = match request {
        Request::Connect(_) => {
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            rest
        }
        Request::Http(http) => [rebuilt_head(&http, &[], &[]), rest].concat(),
    };
    let (up, down) = relay(client, upstream, &first).await;
    decision.bytes_up = up;
    decision.bytes_down = down;
    policy.log.record(&decision);
}

/// Whether the policy, or else the user asked while the connection is held, lets `target`
/// through (403 if not). Before any DNS query: a denied name is never resolved.
async fn judge(
    kind: &str,
    target: &Target,
    policy: &Policy,
    decision: &mut Decision,
) -> Result<(), Refusal> {
    if policy.allows(target) {
        return Ok(());
    }
    let Some(holds) = &policy.holds else {
        return Err(refuse(
            403,
            format!("{target} is not on this sandbox's allowlist"),
        ));
    };
    match holds.hold(kind, target, || policy.allows(target)).await {
        Outcome::Allowed(scope) => {
            decision.approved = scope;
            Ok(())
        }
        Outcome::Denied(why) => Err(refuse(403, why)),
    }
}

/// Resolves when the client has closed its side (or failed) without sending anything more;
/// never once it sent data (a request body waiting behind its head).
async fn gone(client: &TcpStream) {
    let mut byte = [0u8; 1];
    match client.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// The judged destination connected, or why not. 403: an internal address; 502: allowed
/// but unreachable.
async fn open_upstream(
    target: &Target,
    policy: &Policy,
) -> Result<(TcpStream, SocketAddr), Refusal> {
    let mut last = String::from("no address");
    for address in checked_addresses(target, policy).await? {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // Only the latency of small exchanges (see `serve`): not a reason to refuse.
                let _ = stream.set_nodelay(true);
                return Ok((stream, address));
            }
            Ok(Err(e)) => last = format!("{address}: {e}"),
            Err(_) => last = format!("{address}: timed out"),
        }
    }
    Err(refuse(502, format!("connecting to {target}: {last}")))
}

/// The addresses of a target, resolved on the host, every one checked: a name that resolves
/// to an internal address at all is not a public service (403, unless `internal_allowed`
/// lets that address through).
async fn checked_addresses(target: &Target, policy: &Policy) -> Result<Vec<SocketAddr>, Refusal> {
    let addresses = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => policy
            .resolver
            .lookup(name)
            .await
            .map_err(|e| refuse(502, format!("resolving {name}: {e}")))?,
    };
    for ip in &addresses {
        if let Some(why) = internal_reason(*ip).filter(|_| !policy.internal_allowed.contains(ip)) {
            return Err(refuse(403, format!("{target} resolves to {ip}: {why}")));
        }
    }
    Ok(addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, target.port))
        .collect())
}

/// Copies both ways until both sides are done; the bytes sent up and down.
async fn relay<U: AsyncRead + AsyncWrite + Unpin>(
    mut client: TcpStream,
    mut upstream: U,
    first: &[u8],
) -> (u64, u64) {
    if upstream.write_all(first).await.is_err() {
        return (0, 0);
    }
    // 64 KiB each way (tokio's default is 8): a bulk download then costs a few syscalls per
    // 64 KiB, not per 8 KiB; only while the connection copies.
    match tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut upstream,
        RELAY_BUFFER,
        RELAY_BUFFER,
    )
    .await
    {
        Ok((up, down)) => (up + first.len() as u64, down),
        Err(_) => (first.len() as u64, 0),
    }
}

/// Reads up to the end of the head; returns it and whatever came after it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(refuse(431, "the request head is too large"));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| refuse(400, e.to_string()))?;
        if n == 0 {
            return Err(refuse(
                400,
                "the connection closed before the request head ended",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Headers that belong to one hop, never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "host",
];

fn parse_request(head: &[u8]) -> Result<Request, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(refuse(400, "an incomplete request head")),
        Err(e) => return Err(refuse(400, format!("a malformed request: {e}"))),
    }
    let method = parsed.method.unwrap_or_default();
    let uri = parsed.path.unwrap_or_default();
    let hosts: Vec<&[u8]> = header_values(parsed.headers, "host");
    if hosts.len() > 1 {
        return Err(refuse(400, "more than one Host header"));
    }
    let host_header = match hosts.first() {
        Some(value) => Some(
            std::str::from_utf8(value)
                .map_err(|_| refuse(400, "a Host header that is not text"))?
                .trim(),
        ),
        None => None,
    };
    if method == "CONNECT" {
        let target = parse_target(uri, 443).map_err(|e| refuse(400, e))?;
        if let Some(host) = host_header {
            let named = parse_target(host, target.port).map_err(|e| refuse(400, e))?;
            if named != target {
                return Err(refuse(400, "the Host header names another destination"));
            }
        }
        return Ok(Request::Connect(target));
    }
    let (authority, path) = split_http_url(uri)?;
    let target = parse_target(authority, 80).map_err(|e| refuse(400, e))?;
    if let Some(host) = host_header
        && parse_target(host, 80).map_err(|e| refuse(400, e))? != target
    {
        return Err(refuse(
            400,
            "the Host header names another destination than the URL",
        ));
    }
    let lengths = header_values(parsed.headers, "content-length");
    let chunked = !header_values(parsed.headers, "transfer-encoding").is_empty();
    if lengths.len() > 1 || (chunked && !lengths.is_empty()) {
        return Err(refuse(400, "an ambiguous body length"));
    }
    Ok(Request::Http(HttpRequest {
        target,
        method: method.to_string(),
        path: path.to_string(),
        authority: authority.to_string(),
        headers: end_to_end_headers(parsed.headers),
    }))
}

/// `http://authority/path` split; anything else (origin-form, `https://`, userinfo) refused.
fn split_http_url(uri: &str) -> Result<(&str, &str), Refusal> {
    let Some(rest) = uri
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .map(|_| &uri[7..])
    else {
        return Err(refuse(
            400,
            "this proxy takes CONNECT, or plain HTTP with a full http:// URL",
        ));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(refuse(400, "a URL with user information"));
    }
    let path = match path {
        "" => "/",
        p if p.starts_with('/') => p,
        p => {
            return Err(refuse(
                400,
                format!("a URL path {p:?} that does not start with /"),
            ));
        }
    };
    if path.contains('#') {
        return Err(refuse(400, "a fragment in a request URL"));
    }
    Ok((authority, path))
}

fn header_values<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

/// The client's headers without those of one hop (and those its `Connection` named).
fn end_to_end_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    let named_by_connection: Vec<String> = header_values(headers, "connection")
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    headers
        .iter()
        .filter(|h| {
            let name = h.name.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&name.as_str()) && !named_by_connection.contains(&name)
        })
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// The request as the upstream server gets it: origin-form, `Host` from the URL, the
/// client's end-to-end headers less `drop`, then `add`, and `Connection: close`.
fn rebuilt_head(http: &HttpRequest, drop: &[&str], add: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        http.method, http.path, http.authority
    )
    .into_bytes();
    let kept = http
        .headers
        .iter()
        .filter(|(name, _)| !drop.iter().any(|d| name.eq_ignore_ascii_case(d)));
    for (name, value) in kept.chain(add) {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    head
}

async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, refusal: &Refusal) {
    let reason = match refusal.status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Bad Gateway",
    };
    let body = format!("sandbox-deck egress: {}\n", refusal.why);
    let text = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        refusal.status,
        body.len()
    );
    // The refusal is in the decision log already; a client that left does not read it.
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, Refusal> {
        parse_request(text.as_bytes())
    }

    fn status(text: &str) -> u16 {
        parse(text).err().map_or(200, |r| r.status)
    }

    #[test]
    fn connect_takes_an_authority_and_a_matching_host() {
        let Request::Connect(target) =
            parse("CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n").unwrap()
        else {
            panic!("not a connect");
        };
        assert_eq!(target.to_string(), "github.com:443");
        assert_eq!(
            status("CONNECT github.com:443 HTTP/1.1\r\nHost: evil.net:443\r\n\r\n"),
            400
        );
        assert_eq!(status("CONNECT 127.1:443 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("CONNECT github.com.:443 HTTP/1.1\r\n\r\n"), 400);
    }

    #[test]
    fn plain_http_is_rebuilt_from_the_url() {
        let request = parse(
            "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        let Request::Http(http) = request else {
            panic!("not http");
        };
        assert_eq!(http.target.to_string(), "example.com:80");
        let head = String::from_utf8(rebuilt_head(&http, &[], &[])).unwrap();
        assert_eq!(
            head,
            "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn parser_differentials_are_refused() {
        for bad in [
            "GET http://allowed.com/ HTTP/1.1\r\nHost: evil.net\r\n\r\n",
            "GET http://allowed.com/ HTTP/1.1\r\nHost: allowed.com\r\nHost: evil.net\r\n\r\n",
            "GET http://allowed.com@evil.net/ HTTP/1.1\r\n\r\n",
            "GET http://allowed.com./ HTTP/1.1\r\n\r\n",
            "GET /relative HTTP/1.1\r\nHost: allowed.com\r\n\r\n",
            "GET https://allowed.com/ HTTP/1.1\r\n\r\n",
            "POST http://allowed.com/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST http://allowed.com/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET http://2130706433/ HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status(bad), 400, "{bad:?}");
        }
        assert_eq!(
            status("GET http://allowed.com:80/ HTTP/1.1\r\nHost: ALLOWED.com\r\n\r\n"),
            200
        );
    }
}
