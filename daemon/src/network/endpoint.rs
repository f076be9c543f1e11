//! Attaching a container to a bridge network in-process: the same steps the CNI chain
//! bridge → host-local → portmap performs, without exec, for the runtime and the daemon.
//! Every step is undone if a later one fails; detach is idempotent.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::firewall::{self, NetworkRules, PortRules};
use crate::ipam::{self, Range, RangeSet, Store};
use crate::name::Name;
use crate::netns::NetNs;
use crate::network::bridge::{BridgeSpec, IfaceConfig};
use crate::network::child;
pub use crate::network::driver::Driver;
use crate::network::shared;
use crate::network::wire::{self, Wiring};
use crate::portmap::{Claims, PortMapping, Publisher};
use crate::records::Record;
use crate::state::StateDir;

/// A bridge network: what `docker0`/172.17.0.0/16 is for the default `bridge` network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeNetwork {
    /// Network name (also the IPAM directory and rule comments).
    pub name: String,
    /// Bridge interface name.
    pub bridge: String,
    /// Subnet; the gateway is its first address unless set.
    pub subnet: IpNetwork,
    /// Gateway address on the bridge.
    pub gateway: Option<IpAddr>,
    /// NetworkRules traffic leaving through other interfaces.
    pub ip_masq: bool,
    /// MTU for bridge and veths.
    pub mtu: Option<u32>,
    /// The bridge existed before the network (`--bridge` naming the user's own): removing
    /// the network leaves it.
    #[serde(default)]
    pub external_bridge: bool,
    /// Docker's `gateway_mode=nat-unprotected`: no drop of traffic routed directly to the
    /// subnet from other interfaces.
    #[serde(default)]
    pub unprotected: bool,
    /// `--internal`: no way in or out but through the host.
    #[serde(default)]
    pub internal: bool,
    /// User labels (`--label`, the API's `Labels`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Creation time, RFC 3339 (none for the built-in network).
    #[serde(default)]
    pub created: Option<String>,
    /// `--ip-range`: the part of the subnet containers get addresses from.
    #[serde(default)]
    pub ip_range: Option<IpNetwork>,
    /// `--ipv6`: the IPv6 subnet of a dual-stack network.
    #[serde(default)]
    pub subnet6: Option<IpNetwork>,
    /// Its gateway; default its first address.
    #[serde(default)]
    pub gateway6: Option<IpAddr>,
    /// The driver: the bridge, or macvlan/ipvlan links on a parent (`bridge` is then
    /// empty: no bridge, no network rules, no resolver on the host).
    #[serde(default)]
    pub driver: Driver,
}

impl BridgeNetwork {
    /// Its IPv4 gateway: the one set, else the subnet's first address (Docker's rule).
    pub fn gateway_ip(&self) -> IpAddr {
        self.gateway.unwrap_or_else(|| crate::ipam::offset(self.subnet.network(), 1))
    }

    /// The network's own firewall rules (forwarding, masquerade, direct-routing drop),
    /// one set per subnet (IPv4, and IPv6 on a dual-stack network).
    pub fn rules(&self) -> Vec<NetworkRules> {
        if self.driver != Driver::Bridge {
            return Vec::new();
        }
        std::iter::once(self.subnet)
            .chain(self.subnet6)
            .map(|subnet| NetworkRules {
                network: self.name.clone(),
                subnet,
                bridge: self.bridge.clone(),
                masquerade: self.ip_masq,
                masq_exclude: Vec::new(),
                protect: !self.unprotected,
                internal: self.internal,
                backend: Default::default(),
            })
            .collect()
    }

    /// Docker's default network: docker0, 172.17.0.0/16, gateway 172.17.0.1.
    pub fn docker_default() -> Self {
        Self {
            name: "bridge".into(),
            bridge: "docker0".into(),
            subnet: IpNetwork::new(IpAddr::from([172, 17, 0, 0]), 16).expect("constant subnet"),
            gateway: None,
            ip_masq: true,
            mtu: None,
            external_bridge: false,
            unprotected: false,
            internal: false,
            labels: Default::default(),
            created: None,
            ip_range: None,
            subnet6: None,
            gateway6: None,
            driver: Driver::Bridge,
        }
    }
}

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// IPAM data directory (host-local layout).
    pub ipam: PathBuf,
    /// Run directory: firewall lock, network rule refs, port claims and records.
    pub run: PathBuf,
}

impl Paths {
    /// All paths under one IPAM root and one run root.
    pub fn new(ipam: impl Into<PathBuf>, run: impl Into<PathBuf>) -> Self {
        Self { ipam: ipam.into(), run: run.into() }
    }

    fn shared_dir(&self) -> Result<StateDir> {
        shared::registry(&self.run)
    }

    /// Network-scoped aliases per attachment (`--network-alias`, connect's `--alias`).
    pub fn aliases(&self) -> Result<StateDir> {
        Record::Aliases.open(&self.run)
    }

    /// The port publisher of the runtime's attachments.
    pub fn publisher(&self) -> Result<Publisher> {
        Ok(Publisher {
            state: Record::EndpointPorts.open(&self.run)?,
            claims: Claims::open(Record::PortClaims.path(&self.run))?,
            fw: firewall::select("auto", &self.run, firewall::DEFAULT_MARK_BIT)?,
        })
    }
}

/// What an attach asks for besides the network, the container and its netns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachOptions {
    /// The interface inside the container (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// Ports to publish (host port 0: an ephemeral one is picked).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The address to take (`--ip`); default the next free one.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// More names on this network (`--network-alias`, connect's `--alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl AttachOptions {
    /// Options for interface `ifname` and nothing else.
    pub fn iface(ifname: &str) -> Self {
        Self { ifname: ifname.to_string(), ..Self::default() }
    }
}

/// What an attached container got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's address with prefix.
    pub address: IpNetwork,
    /// Its IPv6 address on a dual-stack network.
    #[serde(default)]
    pub address6: Option<IpNetwork>,
    /// Its gateway.
    pub gateway: Option<IpAddr>,
    /// The container interface's MAC.
    pub mac: String,
    /// The host end of the veth.
    pub host_veth: String,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// Whether netd's resolver answers the container on its gateway (bridge networks;
    /// not macvlan/ipvlan, whose containers cannot reach the host).
    #[serde(default = "yes")]
    pub resolver: bool,
}

fn yes() -> bool {
    true
}

/// The addresses containers get: the subnet, or its `--ip-range` part.
pub fn range_set(net: &BridgeNetwork) -> Result<RangeSet> {
    let (start, end) = match net.ip_range {
        Some(r) => {
            let whole = Range::new(net.subnet, None, None, net.gateway)?;
            if !net.subnet.contains(r.network()) || r.prefix() < net.subnet.prefix() {
                return Err(Error::OutsideSubnet { what: "ip-range", value: r.to_string(), subnet: net.subnet.to_string() });
            }
            let last = match r {
                IpNetwork::V4(v4) => IpAddr::V4(v4.broadcast()),
                IpNetwork::V6(v6) => IpAddr::V6(v6.broadcast()),
            };
            let first = if r.network() == net.subnet.network() { whole.start } else { r.network() };
            let last = if whole.contains(last) { last } else { whole.end };
            (Some(first), Some(last))
        }
        None => (None, None),
    };
    RangeSet::new(vec![Range::new(net.subnet, start, end, net.gateway)?])
}

/// Every range set of the network: its IPv4 one, and its IPv6 one on a dual-stack network.
pub fn range_sets(net: &BridgeNetwork) -> Result<Vec<RangeSet>> {
    let mut sets = vec![range_set(net)?];
    if let Some(v6) = net.subnet6 {
        sets.push(RangeSet::new(vec![Range::new(v6, None, None, net.gateway6)?])?);
    }
    Ok(sets)
}

/// Attaches the container whose netns is `netns` as `opts.ifname`, publishing its ports
/// (ephemeral ones get their host port here; the endpoint holds the resolved mappings),
/// with address `opts.ip` when given (`--ip`), else the next free one, and records its
/// aliases.
pub fn attach(paths: &Paths, net: &BridgeNetwork, id: &str, netns: &Path, opts: &AttachOptions) -> Result<Endpoint> {
    let (ifname, ports, ip) = (opts.ifname.as_str(), opts.ports.as_slice(), opts.ip);
    let aliases = opts.aliases.iter().map(|a| Name::container(a).map(|n| n.to_string())).collect::<Result<Vec<_>, _>>()?;
    if let Some(ip) = ip.filter(|ip| !net.subnet.contains(*ip) && !net.subnet6.is_some_and(|s| s.contains(*ip))) {
        return Err(Error::AddressOutsideSubnet { ip, network: net.name.clone() });
    }
    if net.driver != Driver::Bridge && !ports.is_empty() {
        return Err(Error::BadOption {
            key: "publish".into(),
            value: net.name.clone(),
            why: "a macvlan or ipvlan network publishes no ports: the container has its own address on the parent's LAN",
        });
    }
    let ns = NetNs::open(netns)?;
    let sets = range_sets(net)?;
    let store = Store::open(&paths.ipam, &net.name)?;
    let publisher = paths.publisher()?;
    // Host ports are claimed before anything changes, so a conflict changes nothing;
    // `publish` below finds the claims already held by this owner and keeps them.
    let owner = crate::portmap::publish::key(&net.name, id, ifname);
    // Ephemeral host ports are picked here, inside the claim lock.
    let ports = &publisher.claims.claim(&owner, ports, true)?;
    let requested: Vec<IpAddr> = ip.into_iter().collect();
    let allocs = match ipam::allocate(&store, &sets, id, ifname, &requested) {
        Ok(a) => a,
        Err(e) => {
            let _ = publisher.claims.release(&owner, ports);
            return Err(e);
        }
    };
    let addrs: Vec<IpNetwork> = allocs.iter().map(|a| a.address).collect();
    let undo_ipam = || {
        let _ = ipam::release(&store, id, ifname, &addrs.iter().map(|a| a.ip()).collect::<Vec<_>>());
    };
    let result = (|| {
        if net.driver != Driver::Bridge {
            return attach_child(paths, net, id, &ns, ifname, &addrs);
        }
        let mut gateways = Vec::new();
        let mut routes = Vec::new();
        for a in &allocs {
            // Range::new always sets a gateway (the subnet's first address by default).
            let gw = a.gateway.unwrap_or_else(|| crate::ipam::offset(a.address.network(), 1));
            gateways.push(
                IpNetwork::new(gw, a.address.prefix()).map_err(|_| Error::AddressOutsideSubnet { ip: gw, network: net.name.clone() })?,
            );
            routes.push((crate::netlink::Route::default_dst(gw), Some(gw)));
        }
        let w = Wiring {
            network: net.name.clone(),
            spec: BridgeSpec {
                name: net.bridge.clone(),
                mtu: net.mtu,
                is_gateway: true,
                force_address: false,
                hairpin: true,
                promisc: false,
                isolated: false,
                dad: false,
                vlan: 0,
                vlan_trunk: Vec::new(),
                preserve_default_vlan: true,
                container_down: false,
            },
            gateways,
            iface: IfaceConfig { addrs: addrs.clone(), routes, keep_ipv6: false },
            rules: net.rules(),
        };
        let registry = paths.shared_dir()?;
        let att = wire::wire(&registry, publisher.fw.as_ref(), id, &ns, ifname, &w).map_err(|e| match e {
            // The runtime's and the daemon's users cannot set forceAddress: say what to do.
            Error::BridgeAddress { bridge, found, .. } => Error::ForeignBridge { bridge, found },
            e => e,
        })?;
        if !ports.is_empty() {
            let rules = PortRules {
                network: net.name.clone(),
                container_id: id.to_string(),
                ifname: ifname.to_string(),
                addrs: addrs.clone(),
                mappings: ports.to_vec(),
                snat: true,
                host_if: Some(net.bridge.clone()),
                conditions_v4: Vec::new(),
                conditions_v6: Vec::new(),
                backend: publisher.fw.backend(),
                mark_bit: publisher.fw.mark_bit(),
            };
            if let Err(e) = publisher.publish(&rules, std::slice::from_ref(&net.bridge)) {
                let hosts = [att.host.name.clone()];
                let rules = |_: &[IpNetwork]| w.rules.clone();
                let _ = wire::unwire(&registry, publisher.fw.as_ref(), &net.name, id, Some(netns), ifname, &net.bridge, &hosts, &rules);
                return Err(e);
            }
        }
        Ok(Endpoint {
            address: allocs[0].address,
            address6: allocs.get(1).map(|a| a.address),
            gateway: allocs[0].gateway,
            mac: att.container.mac,
            host_veth: att.host.name,
            ports: ports.to_vec(),
            resolver: true,
        })
    })();
    if result.is_err() {
        undo_ipam();
        let _ = publisher.claims.release(&owner, ports);
        return result;
    }
    if !aliases.is_empty() {
        if let Err(e) = paths.aliases()?.save(&owner, &aliases) {
            let _ = detach(paths, net, id, Some(netns), ifname, result.as_ref().ok());
            return Err(e);
        }
    }
    result
}

/// The container's link on a macvlan or ipvlan network's parent, with `addrs`; a default
/// route only through a gateway given at creation (Docker 29), a device route on routed
/// ipvlan (l3, l3s), none on an internal network. Held in the registry without rules, so
/// the network's members and endpoints count it.
fn attach_child(paths: &Paths, net: &BridgeNetwork, id: &str, ns: &NetNs, ifname: &str, addrs: &[IpNetwork]) -> Result<Endpoint> {
    let (Some(kind), Some(p)) = (net.driver.kind()?, net.driver.parented()) else {
        return Err(Error::Internal("a macvlan or ipvlan network without a parent"));
    };
    let mut routes = Vec::new();
    if !net.internal {
        for (gw, v6) in [(net.gateway, false), (net.gateway6, true)] {
            if !addrs.iter().any(|a| a.is_ipv6() == v6) {
                continue;
            }
            let any: IpAddr = if v6 { std::net::Ipv6Addr::UNSPECIFIED.into() } else { std::net::Ipv4Addr::UNSPECIFIED.into() };
            match gw {
                _ if net.driver.routed() => routes.push((crate::netlink::Route::default_dst(any), None)),
                Some(gw) => routes.push((crate::netlink::Route::default_dst(gw), Some(gw))),
                None => {}
            }
        }
    }
    let spec = child::Spec { master: Some(p.parent.clone()), kind, mtu: net.mtu, mac: None, link_in_container: false };
    let link = child::attach(&spec, ns, ifname, Some(&IfaceConfig { addrs: addrs.to_vec(), routes, keep_ipv6: false }))?;
    let registry = paths.shared_dir()?;
    let fw = paths.publisher()?.fw;
    if let Err(e) = shared::hold(&registry, fw.as_ref(), &net.name, &wire::key(&net.name, id, ifname), &[]) {
        let _ = super::bridge::detach(Some(ns.path()), ifname);
        return Err(e);
    }
    Ok(Endpoint {
        address: addrs[0],
        address6: addrs.get(1).copied(),
        gateway: net.gateway,
        mac: link.mac,
        host_veth: String::new(),
        ports: Vec::new(),
        resolver: false,
    })
}

/// Detaches: unpublishes ports, releases the address and the network rules reference, and
/// deletes the veth (through the netns if it still exists, else by the host end's name
/// from `ep`: a dead netns frees its veth only later, in a kernel work queue). Every part
/// tolerates being gone.
pub fn detach(paths: &Paths, net: &BridgeNetwork, id: &str, netns: Option<&Path>, ifname: &str, ep: Option<&Endpoint>) -> Result<()> {
    let publisher = paths.publisher()?;
    publisher.unpublish(&net.name, id, ifname, None)?;
    let store = Store::open(&paths.ipam, &net.name)?;
    let hint: Vec<IpAddr> = ep.map(|e| std::iter::once(e.address.ip()).chain(e.address6.map(|a| a.ip())).collect()).unwrap_or_default();
    ipam::release(&store, id, ifname, &hint)?;
    let hosts: Vec<String> = ep.map(|e| e.host_veth.clone()).into_iter().collect();
    paths.aliases()?.remove(&crate::portmap::publish::key(&net.name, id, ifname))?;
    if net.driver != Driver::Bridge {
        super::bridge::detach(netns, ifname)?;
        return shared::release(&paths.shared_dir()?, publisher.fw.as_ref(), &net.name, &wire::key(&net.name, id, ifname), &[]);
    }
    let rules = |_: &[IpNetwork]| net.rules();
    wire::unwire(&paths.shared_dir()?, publisher.fw.as_ref(), &net.name, id, netns, ifname, &net.bridge, &hosts, &rules)
}
