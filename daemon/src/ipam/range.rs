//! Address ranges and range sets, with host-local's defaults and validation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

use crate::error::{Error, Result};

/// One allocatable range inside a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The subnet; allocated addresses carry its prefix length.
    pub subnet: IpNetwork,
    /// First allocatable address.
    pub start: IpAddr,
    /// Last allocatable address.
    pub end: IpAddr,
    /// The gateway, never handed out.
    pub gateway: Option<IpAddr>,
}

/// Ranges from which one address is allocated per container (host-local's "range set").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

/// Adds `n` (may be negative) to an address, wrapping is the caller's concern.
pub fn offset(ip: IpAddr, n: i128) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from((u32::from(v4) as i128 + n) as u32)),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from((u128::from(v6) as i128).wrapping_add(n) as u128)),
    }
}

fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Range {
    /// Builds a range with host-local's defaults: start = network+1, end = broadcast-1
    /// (IPv4) or the last address (IPv6), gateway = network+1.
    pub fn new(subnet: IpNetwork, start: Option<IpAddr>, end: Option<IpAddr>, gateway: Option<IpAddr>) -> Result<Self> {
        let bits = if subnet.is_ipv4() { 32 } else { 128 };
        if subnet.prefix() > bits - 2 {
            return Err(Error::BadSubnet { subnet: subnet.to_string(), why: "too small to allocate from".into() });
        }
        if subnet.ip() != subnet.network() {
            return Err(Error::BadSubnet {
                subnet: subnet.to_string(),
                why: format!("host bits set (use {}/{})", subnet.network(), subnet.prefix()),
            });
        }
        let first = offset(subnet.network(), 1);
        let last = match subnet {
            IpNetwork::V4(v4) => offset(IpAddr::V4(v4.broadcast()), -1),
            IpNetwork::V6(v6) => IpAddr::V6(v6.broadcast()),
        };
        let check = |what: &'static str, ip: IpAddr| -> Result<IpAddr> {
            if !subnet.contains(ip) {
                return Err(Error::OutsideSubnet { what, value: ip.to_string(), subnet: subnet.to_string() });
            }
            Ok(ip)
        };
        let start = start.map(|ip| check("rangeStart", ip)).transpose()?.unwrap_or(first);
        let end = end.map(|ip| check("rangeEnd", ip)).transpose()?.unwrap_or(last);
        let gateway = Some(gateway.map(|ip| check("gateway", ip)).transpose()?.unwrap_or(first));
        if as_u128(start) > as_u128(end) {
            return Err(Error::BadRangeSet(format!("rangeStart {start} is after rangeEnd {end}")));
        }
        Ok(Self { subnet, start, end, gateway })
    }

    /// Whether `ip` lies between start and end.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.start.is_ipv4() && as_u128(ip) >= as_u128(self.start) && as_u128(ip) <= as_u128(self.end)
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.contains(other.start) || self.contains(other.end) || other.contains(self.start)
    }
}

impl RangeSet {
    /// Validates a range set: non-empty, one family, no overlapping ranges.
    pub fn new(ranges: Vec<Range>) -> Result<Self> {
        let Some(first) = ranges.first() else {
            return Err(Error::BadRangeSet("no ranges".into()));
        };
        let v4 = first.subnet.is_ipv4();
        for (i, r) in ranges.iter().enumerate() {
            if r.subnet.is_ipv4() != v4 {
                return Err(Error::BadRangeSet("it mixes IPv4 and IPv6".into()));
            }
            for o in &ranges[i + 1..] {
                if r.overlaps(o) {
                    return Err(Error::BadRangeSet(format!("ranges {}-{} and {}-{} overlap", r.start, r.end, o.start, o.end)));
                }
            }
        }
        Ok(Self(ranges))
    }

    /// The range holding `ip`.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(ip))
    }

    /// Whether any range of this set overlaps a range of `other`.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }

    /// Walks the set round-robin starting after `last` (or at the first address),
    /// yielding each address once and `last` itself at the end, as host-local does.
    pub fn candidates(&self, last: Option<IpAddr>) -> impl Iterator<Item = (usize, IpAddr)> + '_ {
        let total: u128 = self.0.iter().fold(0u128, |acc, r| acc.saturating_add((as_u128(r.end) - as_u128(r.start)).saturating_add(1)));
        let advance = move |i: usize, ip: IpAddr| {
            if ip == self.0[i].end {
                let n = (i + 1) % self.0.len();
                (n, self.0[n].start)
            } else {
                (i, offset(ip, 1))
            }
        };
        let mut pos = match last.and_then(|l| self.0.iter().position(|r| r.contains(l)).map(|i| (i, l))) {
            Some((i, l)) => advance(i, l),
            None => (0, self.0[0].start),
        };
        let mut left = total;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let cur = pos;
            pos = advance(pos.0, pos.1);
            Some(cur)
        })
    }
}
