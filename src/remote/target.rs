//! What `mirror` connects to: a host over ssh (`[user@]host`, the usual way), or the end of
//! a tunnel the user made to `serve --listen` (`ws://127.0.0.1:PORT` with `--token-file`).
//! The token travels in clear over that TCP connection, so only a loopback address (the
//! tunnel's local end) is taken.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::Destination;
use crate::error::{DeckError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ssh(Destination),
    /// `serve --listen` at the loopback end of a tunnel, and the file with its token.
    Tunnel {
        address: SocketAddr,
        token_file: PathBuf,
    },
}

impl Target {
    /// `text` as typed; `token_file` is `--token-file` (a tunnel needs it, ssh takes none).
    pub fn parse(text: &str, token_file: Option<PathBuf>) -> Result<Target> {
        let invalid = |why: String| DeckError::InvalidArgument {
            what: text.to_owned(),
            why,
        };
        let Some(rest) = text.strip_prefix("ws://") else {
            if token_file.is_some() {
                return Err(invalid(
                    "--token-file goes with ws://127.0.0.1:PORT (serve --listen); over ssh none is needed"
                        .into(),
                ));
            }
            return Destination::parse(text).map(Target::Ssh);
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let address = crate::api::tcp::loopback(authority).map_err(invalid)?;
        let token_file = token_file.ok_or_else(|| {
            invalid("a ws:// mirror needs --token-file (the token of `serve --listen`)".into())
        })?;
        Ok(Target::Tunnel {
            address,
            token_file,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ssh(destination) => write!(f, "{destination}"),
            Target::Tunnel { address, .. } => write!(f, "ws://{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback_tunnels_parse_and_the_token_goes_with_a_tunnel_only() {
        assert_eq!(
            Target::parse("me@box", None).unwrap(),
            Target::Ssh(Destination::parse("me@box").unwrap())
        );
        let token = Some(PathBuf::from("t"));
        let tunnel = Target::parse("ws://127.0.0.1:7420/", token.clone()).unwrap();
        assert_eq!(tunnel.to_string(), "ws://127.0.0.1:7420");
        assert!(Target::parse("ws://[::1]:7420", token.clone()).is_ok());
        for (bad, token) in [
            ("ws://10.0.0.2:7420", token.clone()),
            ("ws://box:7420", token.clone()),
            ("ws://127.0.0.1:7420", None),
            ("box", token),
        ] {
            let err = Target::parse(bad, token).expect_err(bad);
            assert_eq!(err.kind(), "invalid_argument", "{bad}");
        }
    }
}
