//! Resolving an allowed name on the host. Only ever called after the allowlist said yes:
//! a denied name causes no DNS query at all.
//!
//! By default the host's own resolver (getaddrinfo: /etc/hosts, nsswitch, its DNS servers).
//! `egress.resolver` names one DNS server to ask instead, over UDP; a small client of our
//! own speaks to it (A and AAAA questions, answers read strictly).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

#[derive(Debug, Clone)]
pub enum Resolver {
    System,
    Server(SocketAddr),
}

impl Resolver {
    /// The addresses of `name` (never empty on success).
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let found = match self {
            Resolver::System => {
                tokio::time::timeout(QUERY_TIMEOUT, tokio::net::lookup_host((name, 0)))
                    .await
                    .map_err(|_| "the resolver timed out".to_string())?
                    .map_err(|e| e.to_string())?
                    .map(|a| a.ip())
                    .collect::<Vec<_>>()
            }
            Resolver::Server(server) => {
                let mut all = query(*server, name, TYPE_A).await?;
                // An IPv6 answer is a bonus: a server that cannot give one still resolved the name.
                all.extend(query(*server, name, TYPE_AAAA).await.unwrap_or_default());
                all
            }
        };
        if found.is_empty() {
            return Err(format!("{name} has no address"));
        }
        Ok(found)
    }
}

async fn query(server: SocketAddr, name: &str, qtype: u16) -> Result<Vec<IpAddr>, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    let mut id = [0u8; 2];
    getrandom::fill(&mut id).map_err(|e| e.to_string())?;
    let id = u16::from_be_bytes(id);
    socket
        .send(&question(id, name, qtype))
        .await
        .map_err(|e| format!("asking {server}: {e}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let len = tokio::time::timeout(QUERY_TIMEOUT, socket.recv(&mut buf))
            .await
            .map_err(|_| format!("{server} did not answer"))?
            .map_err(|e| format!("asking {server}: {e}"))?;
        // A datagram with another id is not our answer (spoofed or late): wait on.
        if let Some(answers) = answers(&buf[..len], id, qtype) {
            return answers;
        }
    }
}

/// A DNS question for `name` (already checked to be a plain DNS name).
fn question(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut packet = Vec::with_capacity(32 + name.len());
    packet.extend_from_slice(&id.to_be_bytes());
    // Flags: recursion desired; one question.
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    packet
}

/// The addresses of one answer, or None when the packet is not an answer to `id`.
fn answers(packet: &[u8], id: u16, qtype: u16) -> Option<Result<Vec<IpAddr>, String>> {
    let read16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]))
    };
    if read16(0)? != id || packet.get(2)? & 0x80 == 0 {
        return None;
    }
    let rcode = packet.get(3)? & 0x0f;
    if rcode != 0 {
        return Some(Err(format!("the DNS server answered rcode {rcode}")));
    }
    let questions = read16(4)?;
    let count = read16(6)?;
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut found = Vec::new();
    for _ in 0..count {
        at = skip_name(packet, at)?;
        let rtype = read16(at)?;
        let len = usize::from(read16(at + 8)?);
        let data = packet.get(at + 10..at + 10 + len)?;
        match (rtype, len) {
            (TYPE_A, 4) if qtype == TYPE_A => {
                found.push(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                )));
            }
            (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                let octets: [u8; 16] = data.try_into().ok()?;
                found.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => {}
        }
        at += 10 + len;
    }
    Some(Ok(found))
}

/// The offset after a (possibly compressed) name.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_back_and_a_foreign_id_ignored() {
        let mut packet = question(7, "a.example", TYPE_A);
        packet[2] |= 0x80;
        packet[7] = 1; // one answer
        packet.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        let got = answers(&packet, 7, TYPE_A).unwrap().unwrap();
        assert_eq!(got, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
        assert!(answers(&packet, 8, TYPE_A).is_none());
        assert!(
            answers(&packet[..20], 7, TYPE_A).is_none(),
            "truncated: not an answer"
        );
    }
}
