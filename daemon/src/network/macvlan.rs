//! macvlan links: a container interface with its own MAC on a host interface (the
//! "master"), so the container sits on the master's LAN. Made as the reference plugin
//! makes it — from the master's netns under a temporary name straight into the
//! container's netns, renamed there (a name taken in the container is then an error of
//! its own, never a leftover under the final name), `arp_notify`/`ndisc_notify` on.

use std::str::FromStr;

use super::bridge::{bring_up, configure_container, IfaceConfig};
use crate::error::{Error, Result};
use crate::netlink::{random_hex, Link, MacvlanRequest, Socket};
use crate::netns::NetNs;
use crate::sysctl;

/// IFLA_MACVLAN_MODE values, by their names in CNI configs and `ip link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No traffic between macvlans of one master.
    Private,
    /// Traffic between macvlans goes out to the switch and back.
    Vepa,
    /// macvlans of one master reach each other directly (the default).
    #[default]
    Bridge,
    /// One macvlan takes the master over.
    Passthru,
}

impl Mode {
    fn value(self) -> u32 {
        match self {
            Mode::Private => 1,
            Mode::Vepa => 2,
            Mode::Bridge => 4,
            Mode::Passthru => 8,
        }
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "bridge" => Mode::Bridge,
            "private" => Mode::Private,
            "vepa" => Mode::Vepa,
            "passthru" => Mode::Passthru,
            _ => {
                return Err(Error::BadOption { key: "mode".into(), value: s.into(), why: "one of bridge, private, vepa, passthru" });
            }
        })
    }
}

/// What a macvlan attachment asks for.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The master's name; None: the interface of the default route.
    pub master: Option<String>,
    /// The mode.
    pub mode: Mode,
    /// MTU (at most the master's); None: the master's.
    pub mtu: Option<u32>,
    /// A fixed hardware address.
    pub mac: Option<[u8; 6]>,
    /// The master lives in the container's netns (Multus-style chained setups).
    pub link_in_container: bool,
}

/// The interface of the IPv4 default route in the socket's netns.
fn default_route_link(sock: &mut Socket) -> Result<Link> {
    let oif = sock.routes(false)?.into_iter().find(|r| r.dst.prefix() == 0).map(|r| r.oif).ok_or_else(|| Error::BadOption {
        key: "master".into(),
        value: String::new(),
        why: "no master given and no default route",
    })?;
    sock.links()?.into_iter().find(|l| l.index == oif).ok_or_else(|| Error::BadOption {
        key: "master".into(),
        value: oif.to_string(),
        why: "the default route's interface is gone",
    })
}

/// The master link, checked against the spec (it exists; the MTU fits under it).
fn master(sock: &mut Socket, spec: &Spec) -> Result<Link> {
    let link = match &spec.master {
        Some(name) => sock.link_by_name(name)?.ok_or_else(|| Error::BadOption {
            key: "master".into(),
            value: name.clone(),
            why: "no such interface",
        })?,
        None => default_route_link(sock)?,
    };
    if let Some(mtu) = spec.mtu {
        if mtu > link.mtu || mtu < 68 {
            return Err(Error::BadOption { key: "mtu".into(), value: mtu.to_string(), why: "from 68 up to the master's MTU" });
        }
    }
    Ok(link)
}

/// Creates the macvlan in `netns` as `ifname`, configured with `cfg` (addresses, routes;
/// None: only brought up). Nothing is left if a step fails.
pub fn attach(spec: &Spec, netns: &NetNs, ifname: &str, cfg: Option<&IfaceConfig>) -> Result<Link> {
    let temp = format!("mv{}", random_hex(5));
    let made = |sock: &mut Socket, into: Option<std::os::fd::RawFd>| -> Result<()> {
        let m = master(sock, spec)?;
        let req = MacvlanRequest { name: &temp, master: m.index, mode: spec.mode.value(), mtu: spec.mtu, mac: spec.mac, netns_fd: into };
        sock.create_macvlan(&req).map_err(Error::from)
    };
    if spec.link_in_container {
        netns.run(|| made(&mut Socket::open()?, None))?;
    } else {
        made(&mut Socket::open()?, Some(netns.fd()))?;
    }
    let result = netns.run(|| {
        let mut sock = Socket::open()?;
        if sock.link_by_name(ifname)?.is_some() {
            return Err(Error::LinkExists(format!("{ifname} in {}", netns.path().display())));
        }
        let link = sock.link_by_name(&temp)?.ok_or_else(|| Error::LinkExists(temp.clone()))?;
        sock.rename(link.index, ifname)?;
        let _ = sysctl::set(&format!("net/ipv4/conf/{ifname}/arp_notify"), "1");
        let _ = sysctl::set(&format!("net/ipv6/conf/{ifname}/ndisc_notify"), "1");
        match cfg {
            Some(cfg) => configure_container(ifname, cfg, !cfg.addrs.iter().any(|a| a.is_ipv6())),
            None => bring_up(ifname),
        }
    });
    if result.is_err() {
        let _ = netns.run(|| {
            let mut sock = Socket::open()?;
            for name in [temp.as_str(), ifname] {
                if let Some(l) = sock.link_by_name(name)?.filter(|l| l.kind.as_deref() == Some("macvlan")) {
                    sock.delete_link(l.index)?;
                }
            }
            Ok(())
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name() {
        assert_eq!("".parse::<Mode>().unwrap(), Mode::Bridge);
        assert_eq!("private".parse::<Mode>().unwrap().value(), 1);
        assert_eq!("passthru".parse::<Mode>().unwrap().value(), 8);
        assert!("source".parse::<Mode>().is_err());
    }
}
