//! Which hosts photo downloads may reach. A feed's photo URL is the shop's data, not lookbook's:
//! left alone it could make the import request the machine's own services (a database on
//! 127.0.0.1:6379), the local network or a cloud's metadata address. So every address a
//! download connects to, the first and each redirect's, is checked after DNS resolution:
//! loopback, private, link-local and other non-public addresses are refused unless the shop
//! allowed that host (`import --allow-hosts`), and a host written as a bare or disguised number
//! (`2130706433`, `0x7f000001`, `127.1`) is refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The file in the photo cache that keeps the hosts a shop allowed, one per line, so later
/// imports and the app's downloads of the same catalogue keep to them.
pub const ALLOWED_FILE: &str = "allowed-hosts";

/// Hosts the shop allows beyond the public internet: `host` or `host:port`, names compared
/// without case, IPs as addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    allowed: Vec<(String, Option<u16>)>,
}

impl HostPolicy {
    /// Reads `host` / `host:port` / `[v6]:port` entries; an empty entry is skipped.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (host, port) = split_host_port(e)
                .ok_or_else(|| format!("--allow-hosts {e:?}: give a host, host:port or [IPv6]:port"))?;
            allowed.push((normalise(host), port));
        }
        Ok(HostPolicy { allowed })
    }

    /// The entries, as `parse` reads them back.
    pub fn entries(&self) -> Vec<String> {
        self.allowed
            .iter()
            .map(|(h, p)| match (h.contains(':'), p) {
                (true, Some(p)) => format!("[{h}]:{p}"),
                (false, Some(p)) => format!("{h}:{p}"),
                (_, None) => h.clone(),
            })
            .collect()
    }

    /// The policy kept in a photo cache (none allowed when there is no file).
    pub fn load(cache_dir: &Path) -> Self {
        let entries: Vec<String> = std::fs::read_to_string(cache_dir.join(ALLOWED_FILE))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Self::parse(&entries).unwrap_or_default()
    }

    /// Keeps the policy in a photo cache, for later imports and the app.
    pub fn save(&self, cache_dir: &Path) -> std::io::Result<()> {
        std::fs::write(cache_dir.join(ALLOWED_FILE), self.entries().join("\n") + "\n")
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        let host = normalise(host);
        self.allowed
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }

    /// Whether a download may connect to `addr`, reached by the URL host `host` on `port`:
    /// `Err` says why not and what to do.
    pub fn check(&self, host: &str, port: u16, addr: IpAddr) -> Result<(), String> {
        if self.allows(host, port) || self.allows(&addr.to_string(), port) {
            return Ok(());
        }
        if is_public(addr) {
            return Ok(());
        }
        Err(format!(
            "refused: {host} is {addr}, a {} address, which a shop's CDN is not; if it is the shop's own, pass --allow-hosts {}:{port}",
            kind_of(addr),
            bracketed(host)
        ))
    }

    /// Refuses a URL host written as a disguised number before anything resolves it.
    pub fn check_host(&self, host: &str, port: u16) -> Result<(), String> {
        if !self.allows(host, port) && is_disguised_number(host) {
            return Err(format!(
                "refused: {host} is an address written as a bare or shortened number, which hides where it leads; write the address out, and pass --allow-hosts if it is the shop's own"
            ));
        }
        Ok(())
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Lower case, without IPv6 brackets; an IP in its canonical form.
fn normalise(host: &str) -> String {
    let h = host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h.trim_end_matches('.').to_string(),
    }
}

fn split_host_port(e: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = e.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match e.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, _)) if h.contains(':') => Some((e, None)),
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((e, None)),
    }
}

/// A host made only of numbers (decimal, `0x` hex or leading-zero octal, one to four parts)
/// that is not a plain dotted quad: how `http://2130706433/` reaches 127.0.0.1.
fn is_disguised_number(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    let parts: Vec<&str> = h.split('.').collect();
    let numeric = |p: &str| {
        let l = p.to_ascii_lowercase();
        if let Some(hex) = l.strip_prefix("0x") {
            hex.chars().all(|c| c.is_ascii_hexdigit())
        } else {
            !l.is_empty() && l.chars().all(|c| c.is_ascii_digit())
        }
    };
    if parts.is_empty() || parts.len() > 4 || !parts.iter().all(|p| numeric(p)) {
        return false;
    }
    h.parse::<Ipv4Addr>().is_err()
}

/// An address on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation or reserved.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(a),
        },
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xFE) == 18)
        || o[0] >= 240)
}

fn public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xFE00) == 0xFC00
        || (s[0] & 0xFFC0) == 0xFE80
        || (s[0] == 0x2001 && s[1] == 0x0DB8)
        || (s[0] == 0x64 && s[1] == 0xFF9B))
}

fn kind_of(addr: IpAddr) -> &'static str {
    let v4 = match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    match (addr, v4) {
        (_, Some(a)) if a.is_loopback() => "loopback",
        (_, Some(a)) if a.is_private() => "private",
        (_, Some(a)) if a.is_link_local() => "link-local",
        (IpAddr::V6(a), None) if a.is_loopback() => "loopback",
        (IpAddr::V6(a), None) if (a.segments()[0] & 0xFFC0) == 0xFE80 => "link-local",
        (IpAddr::V6(a), None) if (a.segments()[0] & 0xFE00) == 0xFC00 => "private",
        _ => "non-public",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tells_public_from_everything_else() {
        for a in ["8.8.8.8", "151.101.1.1", "2606:4700::1111"] {
            assert!(is_public(ip(a)), "{a}");
        }
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn finds_numbers_in_disguise() {
        for h in ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.1"] {
            assert!(is_disguised_number(h), "{h}");
        }
        for h in ["127.0.0.1", "cdn.shop.example", "cafe.de", "1.example", "8.8.8.8"] {
            assert!(!is_disguised_number(h), "{h}");
        }
    }

    #[test]
    fn allows_hosts_and_ports_as_given() {
        let p = HostPolicy::parse(&["127.0.0.1:8000".into(), "CDN.internal".into(), "[::1]:9".into()]).unwrap();
        assert!(p.check("127.0.0.1", 8000, ip("127.0.0.1")).is_ok());
        assert!(
            p.check("localhost", 8000, ip("127.0.0.1")).is_ok(),
            "the address is allowed"
        );
        let e = p.check("127.0.0.1", 6379, ip("127.0.0.1")).unwrap_err();
        assert!(
            e.contains("loopback") && e.contains("--allow-hosts 127.0.0.1:6379"),
            "{e}"
        );
        assert!(p.check("cdn.internal", 443, ip("10.0.0.5")).is_ok());
        assert!(p.check("::1", 9, ip("::1")).is_ok());
        assert!(p.check("[::1]", 10, ip("::1")).is_err());
        assert!(
            HostPolicy::default()
                .check("cdn.shop.example", 443, ip("151.101.1.1"))
                .is_ok()
        );
        assert_eq!(HostPolicy::parse(&p.entries()).unwrap(), p);
        assert!(HostPolicy::parse(&["host:port".into()]).is_err());
    }
}
