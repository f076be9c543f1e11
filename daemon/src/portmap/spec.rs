//! The port mapping model: what a `-p` flag or a CNI `portMappings` entry means.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Transport protocol of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        })
    }
}

impl FromStr for Proto {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            other => Err(Error::BadPortMapping { spec: other.to_string(), why: "unknown protocol (tcp, udp or sctp)".into() }),
        }
    }
}

/// One host port forwarded to one container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to bind to; `None` means every address of the host.
    pub host_ip: Option<IpAddr>,
    /// Port on the host.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

impl PortMapping {
    /// Checks ranges and addresses; called before anything is changed.
    pub fn new(host_ip: Option<IpAddr>, host_port: i64, container_port: i64, proto: Proto) -> Result<Self> {
        let port = |what: &'static str, p: i64| -> Result<u16> {
            if (1..=65535).contains(&p) {
                Ok(p as u16)
            } else {
                Err(Error::PortOutOfRange { what, port: p })
            }
        };
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        if let Some(ip) = host_ip {
            if ip.is_multicast() {
                return Err(Error::BadPortMapping { spec: format!("host IP {ip}"), why: "a multicast address".into() });
            }
        }
        Ok(Self { host_ip, host_port: port("hostPort", host_port)?, container_port: port("containerPort", container_port)?, proto })
    }

    /// A mapping whose host port the engine picks when it claims it (Docker's ephemeral
    /// range, inside the claim lock, so concurrent runs never pick the same one).
    pub fn ephemeral(host_ip: Option<IpAddr>, container_port: i64, proto: Proto) -> Result<Self> {
        let mut m = Self::new(host_ip, EPHEMERAL_RANGE.0 as i64, container_port, proto)?;
        m.host_port = 0;
        Ok(m)
    }

    /// Whether the host port is still to be picked.
    pub fn is_ephemeral(&self) -> bool {
        self.host_port == 0
    }

    /// The host address as users read it: "0.0.0.0" for every address.
    pub fn host_ip_display(&self) -> String {
        self.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into())
    }

    /// Whether this mapping applies to an IPv6 (true) or IPv4 (false) container address.
    pub fn applies_to(&self, v6: bool) -> bool {
        self.host_ip.is_none_or(|ip| ip.is_ipv6() == v6)
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(f, "{}->{}/{}", self.host_port, self.container_port, self.proto)
    }
}

/// One `-p` flag, parsed but not yet expanded into single-port mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// Host address, `None` for all.
    pub host_ip: Option<IpAddr>,
    /// Host port range; `None` asks for ephemeral ports.
    pub host_ports: Option<(u16, u16)>,
    /// Container port range.
    pub container_ports: (u16, u16),
    /// Protocol.
    pub proto: Proto,
}

/// Parses Docker's `-p` grammar: `[hostIP:][hostPort[-end]:]containerPort[-end][/proto]`.
pub fn parse_publish(spec: &str) -> Result<Publish> {
    let bad = |why: &str| Error::BadPortMapping { spec: spec.to_string(), why: why.to_string() };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.parse::<Proto>().map_err(|_| bad("protocol must be tcp, udp or sctp"))?),
        None => (spec, Proto::Tcp),
    };
    // An IPv6 host IP is written in brackets: [::1]:80:80
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r.split_once("]:").ok_or_else(|| bad("unclosed [ in host IP"))?;
        (Some(ip), r)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (Some(parts[0]), &rest[parts[0].len() + 1..]),
            _ => return Err(bad("too many ':'")),
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| bad("host IP is not an address"))?),
    };
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (if h.is_empty() { None } else { Some(h) }, c),
        None => (None, rest),
    };
    let range = |s: &str| -> Result<(u16, u16)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let p = |x: &str| -> Result<u16> {
            match x.parse::<u32>() {
                Ok(v) if (1..=65535).contains(&v) => Ok(v as u16),
                _ => Err(bad("port must be a number from 1 to 65535")),
            }
        };
        let (a, b) = (p(a)?, p(b)?);
        if a > b {
            return Err(bad("port range end is before its start"));
        }
        Ok((a, b))
    };
    let ctr = range(ctr)?;
    let host = host.map(range).transpose()?;
    if let Some(h) = host {
        let (hl, cl) = (h.1 - h.0, ctr.1 - ctr.0);
        if hl != cl && cl != 0 {
            return Err(bad("host and container port ranges differ in length"));
        }
    }
    Ok(Publish { host_ip, host_ports: host, container_ports: ctr, proto })
}

/// Docker's ephemeral host-port range (`-P`, `-p 80`).
pub const EPHEMERAL_RANGE: (u16, u16) = (49153, 60999);

/// Expands a parsed `-p` into one mapping per port, pairing ranges element-wise; a
/// missing host port gives an ephemeral mapping ([`PortMapping::ephemeral`]). Ranges are
/// expanded because one DNAT to a port range would pick ports at random.
pub fn expand_publish(spec: &str) -> Result<Vec<PortMapping>> {
    let Publish { host_ip: ip, host_ports: host, container_ports: ctr, proto } = parse_publish(spec)?;
    let mut out = Vec::new();
    for (i, cport) in (ctr.0..=ctr.1).enumerate() {
        let hport = match host {
            // one container port and a host range: the first port of the range
            Some((h0, _)) if ctr.0 == ctr.1 => h0,
            Some((h0, _)) => h0 + i as u16,
            None => {
                out.push(PortMapping::ephemeral(ip, cport as i64, proto)?);
                continue;
            }
        };
        out.push(PortMapping::new(ip, hport as i64, cport as i64, proto)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(s: &str) -> Result<Vec<String>> {
        Ok(expand_publish(s)?.iter().map(|m| m.to_string()).collect())
    }

    #[test]
    fn docker_grammar() {
        assert_eq!(exp("4000:80").unwrap(), ["4000->80/tcp"]);
        assert_eq!(exp("127.0.0.1:4000:80/udp").unwrap(), ["127.0.0.1:4000->80/udp"]);
        assert_eq!(exp("80").unwrap(), ["0->80/tcp"]);
        assert_eq!(exp("127.0.0.1::80").unwrap(), ["127.0.0.1:0->80/tcp"]);
        assert_eq!(exp("[::1]:4000:80").unwrap(), ["[::1]:4000->80/tcp"]);
        assert_eq!(exp("4000-4001:80-81/sctp").unwrap(), ["4000->80/sctp", "4001->81/sctp"]);
        for bad in ["0:80", "4000:70000", "a:80", "4000:80/icmp", "1.2.3:4000:80", "4000-3999:80", "4000-4002:80-81", "1:2:3:4"] {
            assert!(exp(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn cni_ranges_checked() {
        assert!(PortMapping::new(None, 0, 80, Proto::Tcp).is_err());
        assert!(PortMapping::new(None, 65536, 80, Proto::Tcp).is_err());
        assert!(PortMapping::new(None, 80, -1, Proto::Tcp).is_err());
        let m = PortMapping::new(Some("0.0.0.0".parse().unwrap()), 80, 80, Proto::Tcp).unwrap();
        assert_eq!(m.host_ip, None);
    }
}
