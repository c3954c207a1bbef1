//! `serve --listen`: the optional loopback TCP listener for explicit tunnels. Unlike the unix
//! socket, any local user (and any web page, through the browser) can reach a TCP port, so
//! a handshake must prove itself: the `Host` is one of ours (DNS rebinding), no `Origin`
//! (browsers), and the token from the owner's private file in `Authorization: Bearer`,
//! never in the URL. We read and judge the request head ourselves rather than in
//! tungstenite's callback: tungstenite refuses a plain GET, a wrong `Sec-WebSocket-Version`
//! or a missing key before it calls the callback, and then writes no answer at all, while
//! RFC 6455 wants a 400 or 426 naming the version we speak. Once a request passes, we write
//! the 101 and hand the stream to tungstenite as it is.

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::{DeckError, Result};

/// The shortest token accepted, in hex digits (128 bits).
pub const MIN_TOKEN_HEX: usize = 32;
const MAX_TOKEN_HEX: usize = 1024;
/// A token file larger than this is not a token file.
const MAX_TOKEN_FILE: u64 = 4096;
/// The longest request head read before answering 431.
const MAX_HEAD: usize = 8 << 10;
/// Handshakes not yet judged at once; more are closed unanswered, so nobody without the
/// token can hold many sockets open (each is also bounded by the handshake timeout).
pub const MAX_PENDING: usize = 32;

/// The `--listen` value: an IP literal and port on loopback, refused otherwise (before
/// anything is bound).
pub fn loopback(arg: &str) -> std::result::Result<SocketAddr, String> {
    let address: SocketAddr = arg
        .parse()
        .map_err(|_| format!("{arg:?} is not an address: use 127.0.0.1:PORT or [::1]:PORT"))?;
    if !address.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: the API listens on 127.0.0.1 or [::1] only; reach \
             it from another machine through an SSH tunnel",
            address.ip()
        ));
    }
    Ok(address)
}

/// The shared secret of the TCP listener. Never printed.
pub struct Token(Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// Reads the token from `path`, which must be a regular file of this user with no access
    /// for group or others (SECURITY.md W18): anyone who can read it can drive the engine.
    pub fn read(path: &Path) -> Result<Token> {
        let refuse = |why: String| DeckError::InvalidArgument {
            what: format!("the token file {}", path.display()),
            why,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| DeckError::io(format!("opening the token file {}", path.display()), e))?;
        // Checked on the open descriptor: what we read is what we checked.
        let meta = file
            .metadata()
            .map_err(|e| DeckError::io(format!("reading {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(refuse("it is not a regular file".into()));
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(refuse(format!(
                "it is owned by uid {}, not by you (uid {me}); make your own token file",
                meta.uid()
            )));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!(
                "its mode is {mode:04o}, so others may read it; run `chmod 600 {}`",
                path.display()
            )));
        }
        if meta.len() > MAX_TOKEN_FILE {
            return Err(refuse(format!("it is over {MAX_TOKEN_FILE} bytes")));
        }
        let mut text = String::new();
        file.by_ref()
            .take(MAX_TOKEN_FILE)
            .read_to_string(&mut text)
            .map_err(|e| DeckError::io(format!("reading {}", path.display()), e))?;
        Token::parse(&text).map_err(refuse)
    }

    /// The `Authorization` header's value a client sends with it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", String::from_utf8_lossy(&self.0))
    }

    /// The file's text without surrounding whitespace: 32 to 1024 hex digits.
    fn parse(text: &str) -> std::result::Result<Token, String> {
        let token = text.trim_ascii();
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a token is hex digits only (0-9, a-f), on one line".into());
        }
        if token.len() < MIN_TOKEN_HEX {
            return Err(format!(
                "the token has {} hex digits, fewer than {MIN_TOKEN_HEX} (128 bits)",
                token.len()
            ));
        }
        if token.len() > MAX_TOKEN_HEX {
            return Err(format!("the token has over {MAX_TOKEN_HEX} hex digits"));
        }
        Ok(Token(token.as_bytes().to_vec()))
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ
    /// (only on the lengths, which say nothing about the secret digits).
    fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(presented))
    }
}

/// What a handshake on the TCP listener must show.
pub struct Gate {
    token: Token,
    /// The `Host` values accepted, lowercase: `127.0.0.1:<port>`, `[::1]:<port>`,
    /// `localhost:<port>`, and the listening address itself.
    hosts: Vec<String>,
}

impl Gate {
    pub fn new(token: Token, local: SocketAddr) -> Gate {
        let port = local.port();
        let mut hosts = vec![
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            format!("localhost:{port}"),
        ];
        let own = local.to_string();
        if !hosts.contains(&own) {
            hosts.push(own);
        }
        Gate { token, hosts }
    }
}

/// The TCP listener with what its handshakes must show.
pub struct Listener {
    pub listener: TcpListener,
    pub gate: Arc<Gate>,
    pub pending: Arc<Semaphore>,
}

impl Listener {
    /// Binds `address` (already checked to be loopback). Port 0 takes a free port; `local`
    /// says which.
    pub async fn bind(address: SocketAddr, token: Token) -> Result<Listener> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| DeckError::io(format!("listening on {address}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| DeckError::io(format!("reading the address of {address}"), e))?;
        Ok(Listener {
            listener,
            gate: Arc::new(Gate::new(token, local)),
            pending: Arc::new(Semaphore::new(MAX_PENDING)),
        })
    }

    pub fn local(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// An HTTP answer that ends a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    reason: &'static str,
    headers: &'static str,
    /// The body, for people trying with curl.
    message: &'static str,
}

/// Every answer a refused handshake gets.
mod refusals {
    use super::Refusal;

    const fn refusal(
        status: u16,
        reason: &'static str,
        headers: &'static str,
        message: &'static str,
    ) -> Refusal {
        Refusal {
            status,
            reason,
            headers,
            message,
        }
    }

    const VERSION: &str = "Sec-WebSocket-Version: 13\r\n";
    pub const MALFORMED: Refusal = refusal(400, "Bad Request", "", "not an HTTP/1.1 request head");
    pub const EARLY_DATA: Refusal = refusal(
        400,
        "Bad Request",
        "",
        "send nothing after the request until the 101 has arrived",
    );
    pub const TOO_LARGE: Refusal = refusal(
        431,
        "Request Header Fields Too Large",
        "",
        "the request head is over 8 KiB",
    );
    pub const HOST: Refusal = refusal(
        403,
        "Forbidden",
        "",
        "Host must be 127.0.0.1:PORT, [::1]:PORT or localhost:PORT",
    );
    pub const BROWSER: Refusal = refusal(403, "Forbidden", "", "browser origins are refused");
    pub const QUERY: Refusal = refusal(
        401,
        "Unauthorized",
        "WWW-Authenticate: Bearer\r\n",
        "no query string: the token goes in the Authorization header, never in the URL",
    );
    pub const TOKEN: Refusal = refusal(
        401,
        "Unauthorized",
        "WWW-Authenticate: Bearer\r\n",
        "a missing or wrong token (Authorization: Bearer <token>)",
    );
    pub const METHOD: Refusal = refusal(
        405,
        "Method Not Allowed",
        "Allow: GET\r\n",
        "a WebSocket upgrade is a GET",
    );
    pub const NOT_UPGRADE: Refusal = refusal(
        426,
        "Upgrade Required",
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        "this is a WebSocket endpoint (docs/protocol.md)",
    );
    pub const VERSION_13: Refusal = refusal(
        426,
        "Upgrade Required",
        VERSION,
        "only WebSocket version 13 is spoken",
    );
    pub const KEY: Refusal = refusal(
        400,
        "Bad Request",
        VERSION,
        "a missing or malformed Sec-WebSocket-Key",
    );
}

impl Refusal {
    fn response(&self) -> Vec<u8> {
        let body = format!("{}\n", self.message);
        // An `Upgrade` header is named in `Connection` too (RFC 9110 7.8).
        let connection = if self.headers.starts_with("Upgrade:") {
            "Upgrade, close"
        } else {
            "close"
        };
        format!(
            "HTTP/1.1 {} {}\r\n{}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
            self.status,
            self.reason,
            self.headers,
            body.len()
        )
        .into_bytes()
    }
}

/// A request head judged.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Upgrade, answering with this `Sec-WebSocket-Accept`.
    Upgrade {
        accept: String,
    },
    Refuse(Refusal),
}

/// The one value of header `name`; a header given twice is as bad as a missing one.
fn single<'h>(headers: &[httparse::Header<'h>], name: &str) -> Option<Option<&'h [u8]>> {
    let mut found = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
    let first = found.next();
    if found.next().is_some() {
        return None;
    }
    Some(first.map(|h| h.value))
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn lists(value: Option<&[u8]>, token: &str) -> bool {
    value.is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// A `Sec-WebSocket-Key`: 16 bytes in base64, so 22 characters and `==`, the last character
/// carrying only 4 bits (one of `A Q g w`).
fn valid_key(key: &[u8]) -> bool {
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24
        && key[..22].iter().all(base64)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

/// Judges a complete request head (ending with an empty line). Order: the request must be
/// HTTP; then who may talk (Host, Origin, token), so nobody without the token learns more
/// than that it was refused; then whether it is a WebSocket upgrade we speak.
pub fn judge(head: &[u8], gate: &Gate) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) if request.version == Some(1) => {}
        _ => return Verdict::Refuse(refusals::MALFORMED),
    }
    match who_may_talk(&request, gate) {
        Ok(()) => upgrade(&request),
        Err(refusal) => Verdict::Refuse(refusal),
    }
}

fn who_may_talk(
    request: &httparse::Request<'_, '_>,
    gate: &Gate,
) -> std::result::Result<(), Refusal> {
    let headers = &*request.headers;
    let host = single(headers, "host").ok_or(refusals::MALFORMED)?;
    let known = host.is_some_and(|h| {
        gate.hosts
            .iter()
            .any(|ours| h.eq_ignore_ascii_case(ours.as_bytes()))
    });
    if !known {
        return Err(refusals::HOST);
    }
    // Any Origin, even `null` or empty, is a browser (old ones sent Sec-WebSocket-Origin).
    if headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("origin") || h.name.eq_ignore_ascii_case("sec-websocket-origin")
    }) {
        return Err(refusals::BROWSER);
    }
    if request.path.is_none_or(|p| p.contains('?')) {
        return Err(refusals::QUERY);
    }
    let presented = single(headers, "authorization")
        .flatten()
        .and_then(|v| v.trim_ascii().split_at_checked(7))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|(_, token)| token.trim_ascii());
    match presented {
        Some(token) if gate.token.matches(token) => Ok(()),
        _ => Err(refusals::TOKEN),
    }
}

fn upgrade(request: &httparse::Request<'_, '_>) -> Verdict {
    let headers = &*request.headers;
    if request.method != Some("GET") {
        return Verdict::Refuse(refusals::METHOD);
    }
    let upgrade = single(headers, "upgrade").flatten();
    let connection = single(headers, "connection").flatten();
    if !lists(upgrade, "websocket") || !lists(connection, "upgrade") {
        return Verdict::Refuse(refusals::NOT_UPGRADE);
    }
    if single(headers, "sec-websocket-version").flatten() != Some(b"13".as_slice()) {
        return Verdict::Refuse(refusals::VERSION_13);
    }
    match single(headers, "sec-websocket-key").flatten() {
        Some(key) if valid_key(key) => Verdict::Upgrade {
            accept: derive_accept_key(key),
        },
        _ => Verdict::Refuse(refusals::KEY),
    }
}

/// Reads a request head, to its empty line and not a byte further; a client that sends
/// more before the 101, or more than 8 KiB, is refused. `Err(None)`: it went away.
async fn read_head(stream: &mut TcpStream) -> std::result::Result<Vec<u8>, Option<Refusal>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| None)?;
        if n == 0 {
            return Err(None);
        }
        // Search from a little before the new bytes: the empty line may straddle reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(at) = memchr::memmem::find(&head[from..], b"\r\n\r\n") {
            return if from + at + 4 == head.len() {
                Ok(head)
            } else {
                Err(Some(refusals::EARLY_DATA))
            };
        }
        if head.len() >= MAX_HEAD {
            return Err(Some(refusals::TOO_LARGE));
        }
    }
}

/// The handshake of one TCP connection: the websocket, or None when it was refused (and
/// answered) or the peer went away. The caller bounds it with the handshake timeout.
pub async fn handshake(
    mut stream: TcpStream,
    from: SocketAddr,
    gate: &Gate,
    config: WebSocketConfig,
) -> Option<WebSocketStream<TcpStream>> {
    // Small messages go out at once (a command's reply, an event), not after Nagle's wait.
    let _ = stream.set_nodelay(true);
    let verdict = match read_head(&mut stream).await {
        Ok(head) => judge(&head, gate),
        Err(Some(refusal)) => Verdict::Refuse(refusal),
        Err(None) => return None,
    };
    match verdict {
        Verdict::Upgrade { accept } => {
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).await.ok()?;
            Some(WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await)
        }
        Verdict::Refuse(refusal) => {
            if matches!(refusal.status, 401 | 403) {
                tracing::warn!(
                    "refused a TCP API handshake from {from}: {} {}",
                    refusal.status,
                    refusal.message
                );
            } else {
                tracing::debug!("a TCP API handshake from {from}: {}", refusal.status);
            }
            answer(stream, &refusal).await;
            None
        }
    }
}

/// Writes the refusal, closes our side and reads what the peer still sends for a moment,
/// so the close is not a reset that could destroy the answer before the peer reads it.
async fn answer(mut stream: TcpStream, refusal: &Refusal) {
    if stream.write_all(&refusal.response()).await.is_err() {
        return;
    }
    // The answer is written; a peer that left takes no more, and the drain below ends.
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = 64usize << 10;
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    // A peer that keeps sending past a second is cut off: the answer was its to read.
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00112233445566778899aabbccddeeff";
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn gate() -> Gate {
        let token = Token::parse(TOKEN).expect("a token");
        Gate::new(token, "127.0.0.1:4711".parse().expect("an address"))
    }

    /// A good upgrade with `edit` applied to its header lines.
    fn head(target: &str, edit: impl FnOnce(&mut Vec<String>)) -> Vec<u8> {
        let mut lines = vec![
            "Host: 127.0.0.1:4711".to_owned(),
            "Upgrade: websocket".to_owned(),
            "Connection: Upgrade".to_owned(),
            format!("Sec-WebSocket-Key: {KEY}"),
            "Sec-WebSocket-Version: 13".to_owned(),
            format!("Authorization: Bearer {TOKEN}"),
        ];
        edit(&mut lines);
        format!("GET {target} HTTP/1.1\r\n{}\r\n\r\n", lines.join("\r\n")).into_bytes()
    }

    fn status(head: &[u8]) -> u16 {
        match judge(head, &gate()) {
            Verdict::Upgrade { .. } => 101,
            Verdict::Refuse(r) => r.status,
        }
    }

    fn set(lines: &mut Vec<String>, name: &str, value: Option<&str>) {
        lines.retain(|l| !l.to_ascii_lowercase().starts_with(&format!("{name}:")));
        if let Some(value) = value {
            lines.push(format!("{name}: {value}"));
        }
    }

    #[test]
    fn the_right_token_upgrades_with_the_rfc_accept_key() {
        assert_eq!(
            judge(&head("/", |_| {}), &gate()),
            Verdict::Upgrade {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
        // Every host we answer to, any case; the scheme any case; a Connection list.
        for host in ["[::1]:4711", "LocalHost:4711", "127.0.0.1:4711"] {
            assert_eq!(status(&head("/", |l| set(l, "host", Some(host)))), 101);
        }
        let lower = format!("bearer {TOKEN}");
        assert_eq!(
            status(&head("/", |l| set(l, "authorization", Some(&lower)))),
            101
        );
        let firefox = |l: &mut Vec<String>| set(l, "connection", Some("keep-alive, Upgrade"));
        assert_eq!(status(&head("/", firefox)), 101);
    }

    #[test]
    fn no_token_a_wrong_one_or_one_in_the_url_is_401() {
        assert_eq!(status(&head("/", |l| set(l, "authorization", None))), 401);
        let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
        assert_eq!(
            status(&head("/", |l| set(l, "authorization", Some(&wrong)))),
            401
        );
        let short = format!("Bearer {}", &TOKEN[..31]);
        assert_eq!(
            status(&head("/", |l| set(l, "authorization", Some(&short)))),
            401
        );
        let basic = format!("Basic {TOKEN}");
        assert_eq!(
            status(&head("/", |l| set(l, "authorization", Some(&basic)))),
            401
        );
        let twice = |l: &mut Vec<String>| l.push(format!("Authorization: Bearer {TOKEN}"));
        assert_eq!(status(&head("/", twice)), 401);
        // In the URL: refused even with the right header as well.
        assert_eq!(status(&head(&format!("/?token={TOKEN}"), |_| {})), 401);
        assert_eq!(status(&head("/?", |_| {})), 401);
    }

    #[test]
    fn browsers_and_foreign_hosts_are_403_whatever_the_token() {
        for origin in [
            "https://evil.example",
            "null",
            "http://127.attacker.example",
            "http://127.0.0.1:4711",
            "",
        ] {
            assert_eq!(
                status(&head("/", |l| set(l, "origin", Some(origin)))),
                403,
                "{origin:?}"
            );
        }
        let old = |l: &mut Vec<String>| set(l, "sec-websocket-origin", Some("http://a.example"));
        assert_eq!(status(&head("/", old)), 403);
        for host in [
            "evil.example:4711",
            "127.0.0.1:4712",
            "127.0.0.1",
            "localhost",
            "localhost.:4711",
            "127.0.0.1:4711.evil.example",
            "",
        ] {
            assert_eq!(
                status(&head("/", |l| set(l, "host", Some(host)))),
                403,
                "{host:?}"
            );
        }
        assert_eq!(status(&head("/", |l| set(l, "host", None))), 403);
        let two = |l: &mut Vec<String>| l.push("Host: 127.0.0.1:4711".into());
        assert_eq!(status(&head("/", two)), 400);
    }

    #[test]
    fn what_is_not_our_websocket_is_400_405_or_426_naming_version_13() {
        let plain = |l: &mut Vec<String>| {
            set(l, "upgrade", None);
            set(l, "connection", None);
            set(l, "sec-websocket-key", None);
            set(l, "sec-websocket-version", None);
        };
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (head("/", plain), 426),
            (
                head("/", |l| set(l, "sec-websocket-version", Some("8"))),
                426,
            ),
            (head("/", |l| set(l, "sec-websocket-version", None)), 426),
            (head("/", |l| set(l, "sec-websocket-key", None)), 400),
            (
                head("/", |l| set(l, "sec-websocket-key", Some("AAAA"))),
                400,
            ),
            (
                head("/", |l| {
                    set(l, "sec-websocket-key", Some("AAAAAAAAAAAAAAAAAAAAAAAA"))
                }),
                400,
            ),
            (head("/", |l| set(l, "upgrade", Some("h2c"))), 426),
        ];
        for (request, want) in cases {
            let verdict = judge(&request, &gate());
            let Verdict::Refuse(refusal) = verdict else {
                panic!("upgraded: {}", String::from_utf8_lossy(&request));
            };
            assert_eq!(
                refusal.status,
                want,
                "{}",
                String::from_utf8_lossy(&request)
            );
            let response = String::from_utf8(refusal.response()).expect("text");
            assert!(
                response.contains("\r\nSec-WebSocket-Version: 13\r\n"),
                "{response}"
            );
        }
        let post = String::from_utf8(head("/", |_| {}))
            .expect("text")
            .replacen("GET", "POST", 1);
        assert_eq!(status(post.as_bytes()), 405);
        let old = String::from_utf8(head("/", |_| {}))
            .expect("text")
            .replacen("HTTP/1.1", "HTTP/1.0", 1);
        assert_eq!(status(old.as_bytes()), 400);
        assert_eq!(status(b"\x16\x03\x01\x02\x00\x01\r\n\r\n"), 400);
    }

    #[test]
    fn only_loopback_addresses_are_taken() {
        for good in [
            "127.0.0.1:4711",
            "[::1]:4711",
            "127.0.0.1:0",
            "127.1.2.3:80",
        ] {
            assert!(loopback(good).is_ok(), "{good}");
        }
        for bad in [
            "0.0.0.0:4711",
            "[::]:4711",
            "192.168.1.2:4711",
            "[::ffff:127.0.0.1]:4711",
            "localhost:4711",
            "127.0.0.1",
        ] {
            let error = loopback(bad).expect_err(bad);
            assert!(
                error.contains("127.0.0.1:PORT") || error.contains("loopback"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_token_is_32_to_1024_hex_digits() {
        assert!(Token::parse(&format!("{TOKEN}\n")).is_ok());
        assert!(Token::parse(&"f".repeat(1024)).is_ok());
        assert!(Token::parse(&TOKEN[..31]).is_err());
        assert!(Token::parse(&"f".repeat(1025)).is_err());
        assert!(Token::parse("").is_err());
        assert!(Token::parse(&format!("{TOKEN} {TOKEN}")).is_err());
        assert!(Token::parse(&format!("{}zz", &TOKEN[..30])).is_err());
        assert_eq!(format!("{:?}", Token::parse(TOKEN)), "Ok(Token(…))");
    }

    #[test]
    fn the_compare_is_exact() {
        let token = Token::parse(TOKEN).expect("a token");
        assert!(token.matches(TOKEN.as_bytes()));
        assert!(!token.matches(TOKEN.to_uppercase().as_bytes()));
        assert!(!token.matches(&TOKEN.as_bytes()[..31]));
        assert!(!token.matches(format!("{TOKEN}0").as_bytes()));
        assert!(!token.matches(b""));
    }

    #[test]
    fn a_key_is_16_bytes_of_base64() {
        assert!(valid_key(KEY.as_bytes()));
        assert!(valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(!valid_key(b"AAAAAAAAAAAAAAAAAAAAAB=="), "stray bits");
        assert!(!valid_key(b"AAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!valid_key(b"AAAAAAAAAAAAAAAAAAAA!A=="));
        assert!(!valid_key(b""));
    }
}
