//! Point-to-point links (the `ptp` plugin): a veth pair with no bridge, the host routing
//! each container's address to its veth. Shaped as the reference plugin shapes it: the
//! container's address keeps its prefix but its connected route is replaced by
//! `GW/32 dev IF scope link src IP` and `SUBNET via GW src IP`, so everything goes through
//! the gateway; the host end carries GW/32 (the same on every veth) and a /32 route to
//! the container (scope host), with router advertisements off (CVE-2020-10749).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::bridge::{configure_container_on, enable_forwarding, IfaceConfig};
use crate::error::{Error, Result};
use crate::netlink::{random_hex, Link, Route, Socket, VethRequest};
use crate::netns::NetNs;
use crate::sysctl;

/// Both ends of a ptp attachment.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The end in the host's netns.
    pub host: Link,
    /// The end in the container's netns.
    pub container: Link,
}

fn host_mask(ip: IpAddr) -> IpNetwork {
    IpNetwork::new(ip, if ip.is_ipv4() { 32 } else { 128 }).unwrap_or_else(|_| IpNetwork::from(ip))
}

/// Makes the pair, `ifname` in `netns` with `cfg`'s addresses and routes; each address
/// needs its gateway (`gateways`, in the order of `cfg.addrs`). Undone if a step fails.
pub fn attach(netns: &NetNs, ifname: &str, mtu: Option<u32>, cfg: &IfaceConfig, gateways: &[IpAddr]) -> Result<Attached> {
    if gateways.len() != cfg.addrs.len() {
        return Err(Error::BadOption {
            key: "ipam".into(),
            value: format!("{:?}", cfg.addrs),
            why: "ptp needs a gateway for every address",
        });
    }
    enable_forwarding(cfg.addrs.iter().any(|a| a.is_ipv4()), cfg.addrs.iter().any(|a| a.is_ipv6()))?;
    let mut sock = Socket::open()?;
    let host_name = format!("veth{}", random_hex(4));
    let req = VethRequest { host_name: &host_name, peer_name: ifname, peer_netns_fd: netns.fd(), mtu, master: None };
    match sock.create_veth(&req) {
        Err(e) if e.errno() == Some(libc::EEXIST) => {
            return Err(Error::LinkExists(format!("{ifname} in {} (or host {host_name})", netns.path().display())))
        }
        r => r?,
    }
    let result = (|| {
        let container = netns.run(|| {
            let mut sock = Socket::open()?;
            let link = configure_container_on(&mut sock, ifname, &IfaceConfig { addrs: cfg.addrs.clone(), ..Default::default() }, false)?;
            for (a, gw) in cfg.addrs.iter().zip(gateways) {
                sock.del_route(*a, link.index)?;
                sock.add_route(&Route { dst: host_mask(*gw), gw: None, oif: link.index, src: Some(a.ip()) })?;
                let subnet = IpNetwork::new(a.network(), a.prefix()).unwrap_or(*a);
                sock.add_route(&Route { dst: subnet, gw: Some(*gw), oif: link.index, src: Some(a.ip()) })?;
            }
            for (dst, gw) in &cfg.routes {
                sock.add_route(&Route { dst: *dst, gw: *gw, oif: link.index, src: None })?;
            }
            Ok(link)
        })?;
        let host = sock.link_by_name(&host_name)?.ok_or_else(|| Error::LinkExists(host_name.clone()))?;
        let _ = sysctl::set(&format!("net/ipv6/conf/{host_name}/accept_ra"), "0");
        sock.set_up(host.index)?;
        for (a, gw) in cfg.addrs.iter().zip(gateways) {
            sock.add_address(host.index, host_mask(*gw))?;
            sock.add_host_route(host_mask(a.ip()), host.index)?;
        }
        let host = sock.link_by_name(&host_name)?.unwrap_or(host);
        Ok(Attached { host, container })
    })();
    if result.is_err() {
        if let Ok(Some(l)) = sock.link_by_name(&host_name) {
            let _ = sock.delete_link(l.index);
        }
    }
    result
}
