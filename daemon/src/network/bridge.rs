//! A bridge network: the bridge itself, one veth per container, addresses and routes.
//! The CNI `bridge` plugin and the runtime both attach containers through this file.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::error::{Error, Result};
use crate::netlink::{random_hex, Link, Route, Socket, VethRequest};
use crate::netns::NetNs;
use crate::sysctl;

/// How the bridge and its ports are set up (the CNI bridge keys users rely on).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BridgeSpec {
    /// Bridge name, e.g. "docker0" or "cni0".
    pub name: String,
    /// MTU of the bridge and veths.
    pub mtu: Option<u32>,
    /// Put the gateway address on the bridge.
    pub is_gateway: bool,
    /// Replace a conflicting address on the bridge instead of failing.
    pub force_address: bool,
    /// Hairpin mode on the container's port, so it can reach itself via a published port.
    pub hairpin: bool,
    /// Put the bridge in promiscuous mode.
    pub promisc: bool,
    /// Isolate the container's port (`IFLA_BRPORT_ISOLATED`): it talks only to the
    /// bridge's non-isolated ports (the host, an uplink), never to another isolated one.
    #[serde(default)]
    pub isolated: bool,
    /// Keep IPv6 duplicate address detection on the container's interface; off (the
    /// reference bridge's default, and the runtime's), its addresses are usable as soon as
    /// ADD returns.
    #[serde(default)]
    pub dad: bool,
    /// The port's VLAN (PVID, egress untagged; `vlan`); 0: none.
    #[serde(default)]
    pub vlan: u16,
    /// Tagged VLAN ranges of the port (`vlanTrunk`), inclusive.
    #[serde(default)]
    pub vlan_trunk: Vec<(u16, u16)>,
    /// Keep the bridge's default VLAN 1 on the port (`preserveDefaultVlan`).
    #[serde(default = "yes")]
    pub preserve_default_vlan: bool,
    /// Leave the container's interface down (`disableContainerInterface`).
    #[serde(default)]
    pub container_down: bool,
}

impl BridgeSpec {
    /// Whether the bridge must filter VLANs (a port VLAN or trunk asked for).
    pub fn vlan_filtering(&self) -> bool {
        self.vlan != 0 || !self.vlan_trunk.is_empty()
    }
}

/// The kernel's answer to VLAN filtering where it was built without it.
fn vlan_err(e: crate::error::NetlinkError) -> Error {
    if e.errno() == Some(libc::EOPNOTSUPP) {
        Error::KernelLacksFeature("bridge VLAN filtering")
    } else {
        e.into()
    }
}

fn yes() -> bool {
    true
}

/// One container interface as attached.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The bridge.
    pub bridge: Link,
    /// The host end of the veth.
    pub host: Link,
    /// The container end, inside the netns.
    pub container: Link,
}

/// What to configure inside the container once the veth exists.
#[derive(Debug, Clone, Default)]
pub struct IfaceConfig {
    /// Addresses with prefix.
    pub addrs: Vec<IpNetwork>,
    /// Routes, with their gateways.
    pub routes: Vec<(IpNetwork, Option<IpAddr>)>,
    /// IPv6 stays as the kernel has it on a link given no IPv6 address (the CNI plugins'
    /// way); false: it is turned off there (Docker's way, no stray link-local traffic).
    pub keep_ipv6: bool,
}

impl IfaceConfig {
    /// Whether IPv6 is turned off on the link: no IPv6 address and not kept.
    pub fn ipv6_off(&self) -> bool {
        !self.keep_ipv6 && !self.addrs.iter().any(|a| a.is_ipv6())
    }
}

/// Creates the bridge if missing (MAC pinned), brings it up and returns it.
pub fn ensure_bridge(sock: &mut Socket, spec: &BridgeSpec) -> Result<Link> {
    let link = match sock.link_by_name(&spec.name)? {
        Some(l) => l,
        None => {
            match sock.create_bridge(&spec.name, spec.mtu, spec.vlan_filtering()) {
                Err(e) if e.errno() == Some(libc::EEXIST) => {} // a concurrent ADD won the race
                r => r.map_err(vlan_err)?,
            }
            // Remembered so `netd cleanup` removes only bridges berth made.
            let _ = crate::state::write_atomic(&sysctl::state_root().join("bridges").join(&spec.name), b"");
            sock.link_by_name(&spec.name)?.ok_or_else(|| Error::LinkExists(spec.name.clone()))?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(Error::NotABridge(spec.name.clone()));
    }
    if spec.vlan_filtering() {
        sock.set_vlan_filtering(link.index).map_err(vlan_err)?;
    }
    if spec.promisc {
        sock.set_promisc(link.index, true)?;
    }
    if !link.up {
        // The bridge is the subnet's router: a tentative link-local would keep it from
        // sending neighbour solicitations for forwarded (DNATed) IPv6 traffic until DAD
        // ends, seconds later. Nothing else can own its addresses, so skip DAD.
        let key = format!("net/ipv6/conf/{}/accept_dad", spec.name);
        if std::path::Path::new("/proc/sys").join(&key).exists() {
            sysctl::set(&key, "0")?;
        }
        sock.set_up(link.index)?;
    }
    Ok(link)
}

/// Puts gateway addresses on the bridge. As in the reference plugin, any other IPv4
/// address (or an overlapping IPv6 one) is a conflict unless `force_address`.
pub fn ensure_gateways(sock: &mut Socket, bridge: &Link, gws: &[IpNetwork], force: bool) -> Result<()> {
    let existing = sock.addresses(bridge.index)?;
    for gw in gws {
        if existing.iter().any(|a| a.ip() == gw.ip()) {
            continue;
        }
        for a in existing.iter().filter(|a| a.is_ipv4() == gw.is_ipv4() && (gw.is_ipv4() || gw.contains(a.ip()) || a.contains(gw.ip()))) {
            if !force {
                return Err(Error::BridgeAddress { bridge: bridge.name.clone(), found: a.to_string(), wanted: gw.to_string() });
            }
            sock.del_address(bridge.index, *a)?;
        }
        sock.add_address(bridge.index, *gw)?;
    }
    Ok(())
}

/// Turns on forwarding (and `route_localnet` on the bridge for 127.0.0.1 port mappings).
pub fn enable_forwarding(v4: bool, v6: bool) -> Result<()> {
    if v4 && !sysctl::ipv4_forwarding() {
        sysctl::set("net/ipv4/ip_forward", "1")?;
    }
    if v6 {
        sysctl::set("net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(())
}

fn host_veth_name() -> String {
    format!("veth{}", random_hex(4))
}

/// Creates the veth pair: the container end born in `netns` as `ifname`, the host end
/// enslaved to the bridge with hairpin set, IPv6 disabled on both when `ipv4_only` (no
/// DAD/MLD/RS floods), then both up. Undone if any step fails.
pub fn attach(sock: &mut Socket, bridge: &Link, spec: &BridgeSpec, netns: &NetNs, ifname: &str, cfg: &IfaceConfig) -> Result<Attached> {
    // Without addresses (a layer-2 attachment) IPv6 stays as the kernel has it.
    let ipv4_only = !cfg.addrs.is_empty() && !cfg.addrs.iter().any(|a| a.is_ipv6());
    // No pre-check for `ifname` in the container: EEXIST tells, and costs nothing on success.
    let mut host_name = host_veth_name();
    let mut tries = 0;
    loop {
        let req = VethRequest {
            host_name: &host_name,
            peer_name: ifname,
            peer_netns_fd: netns.fd(),
            mtu: spec.mtu.or(Some(bridge.mtu)).filter(|m| *m > 0),
            master: Some(bridge.index),
        };
        match sock.create_veth(&req) {
            // Its enslaving failed, and the kernel took the new veth back.
            Err(e) if e.errno() == Some(libc::EXFULL) => return Err(Error::BridgeFull(bridge.name.clone())),
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                if netns.run(|| Ok(Socket::open()?.link_by_name(ifname)?.is_some()))? {
                    return Err(Error::LinkExists(format!("{ifname} in {}", netns.path().display())));
                }
                tries += 1;
                if tries > 5 {
                    return Err(e.into());
                }
                host_name = host_veth_name();
            }
            r => break r?,
        }
    }
    let result = (|| {
        let host = sock.link_by_name(&host_name)?.ok_or_else(|| Error::LinkExists(host_name.clone()))?;
        if ipv4_only {
            sysctl::disable_ipv6(&host_name)?;
        }
        if spec.hairpin || spec.isolated {
            sock.set_bridge_port(host.index, spec.hairpin, spec.isolated)?;
        }
        set_port_vlans(sock, host.index, spec)?;
        sock.set_up(host.index)?;
        let container = netns.run(|| {
            if !ipv4_only && !spec.dad {
                sysctl::set(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")?;
                // Older kernels lack it.
                let _ = sysctl::set(&format!("net/ipv6/conf/{ifname}/enhanced_dad"), "0");
            }
            configure_container_with(&mut Socket::open()?, ifname, cfg, ipv4_only, spec.dad, !spec.container_down)
        })?;
        Ok(Attached { bridge: bridge.clone(), host, container })
    })();
    if result.is_err() {
        if let Ok(Some(l)) = sock.link_by_name(&host_name) {
            let _ = sock.delete_link(l.index);
        }
    }
    result
}

/// The port's VLANs as the reference bridge sets them: `vlan` as PVID and untagged, each
/// trunk range tagged, and VLAN 1 removed unless `preserve_default_vlan`.
fn set_port_vlans(sock: &mut Socket, port: u32, spec: &BridgeSpec) -> Result<()> {
    if spec.vlan != 0 {
        sock.bridge_vlan_add(port, &[crate::netlink::port_vlan(spec.vlan, true)]).map_err(vlan_err)?;
    }
    for (min, max) in &spec.vlan_trunk {
        sock.bridge_vlan_add(port, &crate::netlink::trunk_vlans(*min, *max)).map_err(vlan_err)?;
    }
    if spec.vlan_filtering() && !spec.preserve_default_vlan {
        sock.bridge_vlan_del(port, 1).map_err(vlan_err)?;
    }
    Ok(())
}

/// Inside the container's netns: addresses, link up, routes. Runs on the netns thread.
pub(crate) fn configure_container(ifname: &str, cfg: &IfaceConfig, ipv4_only: bool) -> Result<Link> {
    configure_container_on(&mut Socket::open()?, ifname, cfg, ipv4_only)
}

/// [`configure_container`] on an open socket of the netns (one less socket and dump
/// for a caller that has one).
pub(crate) fn configure_container_on(sock: &mut Socket, ifname: &str, cfg: &IfaceConfig, ipv4_only: bool) -> Result<Link> {
    configure_container_with(sock, ifname, cfg, ipv4_only, false, true)
}

/// [`configure_container`], with IPv6 duplicate address detection on the addresses when
/// `dad`, and the link left down unless `up` (then without routes: a down link takes none).
fn configure_container_with(sock: &mut Socket, ifname: &str, cfg: &IfaceConfig, ipv4_only: bool, dad: bool, up: bool) -> Result<Link> {
    let link = sock.link_by_name(ifname)?.ok_or_else(|| Error::LinkExists(ifname.to_string()))?;
    configure_found(sock, link, cfg, ipv4_only, dad, up)
}

/// [`configure_container_on`] for a link the caller has just looked up or made (one
/// dump less).
pub(crate) fn configure_link_on(sock: &mut Socket, link: Link, cfg: &IfaceConfig, ipv4_only: bool) -> Result<Link> {
    configure_found(sock, link, cfg, ipv4_only, false, true)
}

fn configure_found(sock: &mut Socket, link: Link, cfg: &IfaceConfig, ipv4_only: bool, dad: bool, up: bool) -> Result<Link> {
    if ipv4_only {
        sysctl::disable_ipv6(&link.name)?;
    } else {
        // Accepting router advertisements would add addresses the result does not list.
        let _ = sysctl::set(&format!("net/ipv6/conf/{}/accept_ra", link.name), "0");
    }
    for a in &cfg.addrs {
        sock.add_address_dad(link.index, *a, dad)?;
    }
    if !up {
        return Ok(link);
    }
    sock.set_up(link.index)?;
    for (dst, gw) in &cfg.routes {
        sock.add_route(&Route { dst: *dst, gw: *gw, oif: link.index, src: None })?;
    }
    Ok(link)
}

/// Configures the existing `ifname` in `netns` with `cfg` (addresses, up, routes): a link
/// made first and addressed once IPAM answered, as the CNI plugins order it. IPv6 stays
/// as it was (a moved host device goes back as it came), router advertisements off.
pub fn configure(netns: &NetNs, ifname: &str, cfg: &IfaceConfig) -> Result<Link> {
    netns.run(|| configure_container(ifname, cfg, false))
}

/// Inside the container's netns: brings `ifname` up (a link attached without IPAM) and
/// returns it as it then is. Runs on the netns thread.
pub(crate) fn bring_up(ifname: &str) -> Result<Link> {
    bring_up_on(&mut Socket::open()?, ifname)
}

/// [`bring_up`] on an open socket of the netns.
pub(crate) fn bring_up_on(sock: &mut Socket, ifname: &str) -> Result<Link> {
    let link = sock.link_by_name(ifname)?.ok_or_else(|| Error::LinkExists(ifname.to_string()))?;
    sock.set_up(link.index)?;
    Ok(sock.link_by_name(ifname)?.unwrap_or(link))
}

/// Removes the container's interface (the veth peer goes with it) and returns the
/// addresses it had. A missing netns or interface is success: DEL is idempotent.
pub fn detach(netns_path: Option<&std::path::Path>, ifname: &str) -> Result<Vec<IpNetwork>> {
    let Some(path) = netns_path else {
        return Ok(Vec::new());
    };
    let netns = match NetNs::open(path) {
        Ok(ns) => ns,
        Err(Error::Netns { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    netns.run(|| {
        let mut sock = Socket::open()?;
        let Some(link) = sock.link_by_name(ifname)? else {
            return Ok(Vec::new());
        };
        let addrs = sock.addresses(link.index)?;
        sock.delete_link(link.index)?;
        Ok(addrs)
    })
}

/// Deletes host-side veths by name; names that are gone or are not veths are left alone.
pub fn delete_host_veths(bridge: &str, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut sock = Socket::open()?;
    let Some(br) = sock.link_by_name(bridge)? else { return Ok(()) };
    for n in names {
        // Only a veth that is a port of this network's bridge: a forged prevResult
        // naming any other link deletes nothing.
        if let Some(l) = sock.link_by_name(n)?.filter(|l| l.kind.as_deref() == Some("veth") && l.master == Some(br.index)) {
            sock.delete_link(l.index)?;
        }
    }
    Ok(())
}

/// What CHECK looks at inside the container.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The interface.
    pub link: Link,
    /// Its global addresses.
    pub addrs: Vec<IpNetwork>,
    /// The netns's main-table routes.
    pub routes: Vec<Route>,
}

/// The container interface's link, addresses and routes, for CHECK.
pub fn inspect(netns: &NetNs, ifname: &str) -> Result<Option<Inspected>> {
    netns.run(|| {
        let mut sock = Socket::open()?;
        let Some(link) = sock.link_by_name(ifname)? else {
            return Ok(None);
        };
        let addrs = sock.addresses(link.index)?;
        let mut routes = sock.routes(false)?;
        routes.extend(sock.routes(true)?);
        Ok(Some(Inspected { link, addrs, routes }))
    })
}

/// Sets `route_localnet` on the bridge so DNAT of 127.0.0.1 toward containers is routed:
/// read and set over netlink (every port mapping's ADD asks).
pub fn enable_route_localnet(ifname: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    match sock.ipv4_conf(ifname)? {
        Some((_, c)) if c.route_localnet == 1 => Ok(()),
        Some((index, _)) => {
            let mut on = netlink_packet_route::link::InetDevConf::default();
            on.route_localnet = 1;
            Ok(sock.set_ipv4_conf(index, on)?)
        }
        // No such link (or no IPv4 on it): the sysctl path says which.
        None => sysctl::set(&format!("net/ipv4/conf/{ifname}/route_localnet"), "1"),
    }
}

/// Deletes the bridges berth created (recorded under `<run>/bridges`) that are still
/// bridges; returns their names. For `netd cleanup`.
pub fn remove_created(run: &std::path::Path) -> Result<Vec<String>> {
    let dir = run.join("bridges");
    let mut sock = Socket::open()?;
    let mut done = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(l) = sock.link_by_name(&name)?.filter(|l| l.kind.as_deref() == Some("bridge")) {
            sock.delete_link(l.index)?;
            done.push(name);
        }
        let _ = std::fs::remove_file(e.path());
    }
    Ok(done)
}

/// Clears it again once no mapping needs it.
pub fn disable_route_localnet(ifname: &str) -> Result<()> {
    sysctl::set(&format!("net/ipv4/conf/{ifname}/route_localnet"), "0")
}
