//! Links made on a master — macvlan, ipvlan, 802.1Q VLAN — for a container. Made as the
//! reference plugins make them: from the master's netns under a temporary name straight
//! into the container's netns, renamed there (a name taken in the container is then an
//! error of its own, never a leftover under the final name), `arp_notify`/`ndisc_notify`
//! on. A kernel without the kind refuses it: [`Error::KernelLacks`], nothing made.

use super::bridge::{configure_link_on, IfaceConfig};
use crate::error::{Error, Result};
use crate::netlink::{random_hex, ChildKind, ChildRequest, Link, Socket};
use crate::netns::NetNs;
use crate::sysctl;

/// What an attachment on a master asks for.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The master's name; None: the interface of the default route.
    pub master: Option<String>,
    /// The kind, with its mode or VID.
    pub kind: ChildKind,
    /// MTU (at most the master's); None: the master's.
    pub mtu: Option<u32>,
    /// A fixed hardware address (macvlan only: ipvlan and VLAN links wear the master's).
    pub mac: Option<[u8; 6]>,
    /// The master lives in the container's netns (Multus-style chained setups).
    pub link_in_container: bool,
}

/// The interface of the IPv4 default route in the socket's netns.
pub fn default_route_link(sock: &mut Socket) -> Result<Link> {
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

/// Makes the link in the socket's netns, born in `into` (when given) as `name`; the
/// kernel's refusals turned into errors that say what to change.
pub fn create(sock: &mut Socket, spec: &Spec, name: &str, into: Option<std::os::fd::RawFd>) -> Result<()> {
    let m = master(sock, spec)?;
    let req = ChildRequest { name, master: m.index, kind: spec.kind, mtu: spec.mtu, mac: spec.mac, netns_fd: into };
    match sock.create_child(&req) {
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => Err(Error::KernelLacks(spec.kind.name())),
        Err(e) if e.errno() == Some(libc::EBUSY) => Err(Error::BadOption {
            key: "master".into(),
            value: m.name,
            why: "busy: it carries links of another kind (macvlan and ipvlan cannot share a master) or is in passthru use",
        }),
        Err(e) if e.errno() == Some(libc::EEXIST) && matches!(spec.kind, ChildKind::Vlan { .. }) => Err(Error::BadOption {
            key: "vlanId".into(),
            value: format!("{} on {}", vid(spec.kind), m.name),
            why: "a VLAN link with this VID on this master exists already (one per master and VID)",
        }),
        r => r.map_err(Error::from),
    }
}

fn vid(kind: ChildKind) -> u16 {
    match kind {
        ChildKind::Vlan { id } => id,
        _ => 0,
    }
}

/// Creates the link in `netns` as `ifname`, configured with `cfg` (addresses, routes;
/// None: only brought up). Nothing is left if a step fails.
pub fn attach(spec: &Spec, netns: &NetNs, ifname: &str, cfg: Option<&IfaceConfig>) -> Result<Link> {
    let temp = format!("cl{}", random_hex(5));
    if spec.link_in_container {
        netns.run(|| create(&mut Socket::open()?, spec, &temp, None))?;
    } else {
        create(&mut Socket::open()?, spec, &temp, Some(netns.fd()))?;
    }
    let kind = spec.kind.name();
    let result = netns.run(|| {
        let mut sock = Socket::open()?;
        let mut link = sock.link_by_name(&temp)?.ok_or_else(|| Error::LinkExists(temp.clone()))?;
        // IPv6's settings can only be written in /proc/sys (each lookup there costs
        // O(namespaces)); arp_notify goes with the rename, one request.
        let _ = sysctl::set(&format!("net/ipv6/conf/{temp}/ndisc_notify"), "1");
        let mut notify = netlink_packet_route::link::InetDevConf::default();
        notify.arp_notify = 1;
        match sock.rename_with_ipv4_conf(link.index, ifname, notify) {
            Err(e) if e.errno() == Some(libc::EEXIST) => return Err(Error::LinkExists(format!("{ifname} in {}", netns.path().display()))),
            r => r?,
        }
        link.name = ifname.to_string();
        match cfg {
            Some(cfg) => configure_link_on(&mut sock, link, cfg, cfg.ipv6_off()),
            None => {
                sock.set_up(link.index)?;
                Ok(link)
            }
        }
    });
    if result.is_err() {
        let _ = netns.run(|| {
            let mut sock = Socket::open()?;
            for name in [temp.as_str(), ifname] {
                if let Some(l) = sock.link_by_name(name)?.filter(|l| l.kind.as_deref() == Some(kind)) {
                    sock.delete_link(l.index)?;
                }
            }
            Ok(())
        });
    }
    result
}
