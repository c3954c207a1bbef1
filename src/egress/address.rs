//! Which resolved addresses a proxy never connects to: the host itself, its networks and
//! the cloud's metadata service. An allowed name that resolves to one of them (by mistake
//! or by a hostile DNS answer) is refused, so a name on the list can never be a way in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is off limits, or None when it is a public one.
pub fn internal_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private (10/8)",
        (172, 16..=31, _) => "private (172.16/12)",
        (192, 168, _) => "private (192.168/16)",
        (169, 254, _) => "link-local or cloud metadata (169.254/16)",
        (100, 64..=127, _) => "shared address space (100.64/10)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0/24)",
        (198, 18..=19, _) => "benchmarking (198.18/15)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast",
        _ => return None,
    };
    Some(reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // Every form that carries an IPv4 address is refused whole: mapped (::ffff:0:0/96),
    // compatible (::/96), NAT64 (64:ff9b::/96 and 64:ff9b:1::/48), 6to4 (2002::/16) and
    // Teredo (2001::/32). Which IPv4 they reach depends on gateways we cannot see.
    let reason = match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] => "IPv4-mapped",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible",
        [0, 0, 0, 0, 0xffff, 0, _, _] => "IPv4-translated",
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => "NAT64",
        [0x2002, ..] => "6to4",
        [0x2001, 0, ..] => "Teredo",
        [0x2001, 0xdb8, ..] => "documentation",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    };
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(text: &str) -> bool {
        internal_reason(text.parse().unwrap()).is_some()
    }

    #[test]
    fn the_host_its_networks_and_metadata_are_internal() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(internal(ip), "{ip} must be internal");
        }
    }

    #[test]
    fn public_addresses_are_not() {
        for ip in [
            "8.8.8.8",
            "140.82.112.3",
            "172.32.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(!internal(ip), "{ip} is public");
        }
    }
}
