//! The engine: one handle over the network store (CNI conflists), IPAM (the host-local
//! store), the firewall backend and the endpoint registry, with the operations every
//! front end needs. The runtime reaches it through [`Networking`], the one seam that a
//! daemon client can implement too.

pub mod client;
pub mod store;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

use crate::error::{Error, Result};
use crate::name::Name;
use crate::netlink::Socket;
use crate::network::driver::{Driver, MadeParent};
pub use crate::network::endpoint::AttachOptions;
use crate::network::endpoint::{self, BridgeNetwork, Endpoint};
use crate::network::shared;
use crate::reconcile::Repaired;
use store::{overlaps, Store};

/// Names `network create` refuses: Docker's predefined networks and modes.
const RESERVED: &[&str] = &["bridge", "host", "none", "default"];

/// What `network create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CreateNetwork {
    /// Network name.
    pub name: String,
    /// Subnet; default: a free /16 of 172.18-31.0.0, then a /24 of 192.168.0.0/16,
    /// avoiding other networks and every route of the host.
    pub subnet: Option<IpNetwork>,
    /// Gateway; default: the subnet's first address.
    pub gateway: Option<IpAddr>,
    /// `--ip-range`: containers get addresses from this part of the subnet only.
    pub ip_range: Option<IpNetwork>,
    /// `--ipv6`: dual stack; the IPv6 subnet is `subnet6`, else a random ULA /64.
    pub ipv6: bool,
    /// The IPv6 subnet (with `ipv6`).
    pub subnet6: Option<IpNetwork>,
    /// Its gateway; default its first address.
    pub gateway6: Option<IpAddr>,
    /// Bridge interface; default `br-<random>`. An existing bridge is used and left in
    /// place on removal; an existing link of another kind is refused.
    pub bridge: Option<String>,
    /// Docker's `gateway_mode=nat-unprotected`.
    pub unprotected: bool,
    /// `--internal`: no traffic between the network and other interfaces.
    pub internal: bool,
    /// User labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The driver (`-d`): bridge (default), macvlan or ipvlan, with their options.
    pub driver: Driver,
}

impl CreateNetwork {
    /// Applies one of the driver's options (`-o`, the API's `Options`): set the driver
    /// first.
    pub fn option(&mut self, key: &str, value: &str) -> Result<()> {
        if self.driver.option(key, value)? {
            return Ok(());
        }
        match key {
            "com.docker.network.bridge.name" => self.bridge = Some(value.to_string()),
            "com.docker.network.bridge.gateway_mode_ipv4" | "com.docker.network.bridge.gateway_mode_ipv6" => {
                self.unprotected = match value {
                    "nat" => false,
                    "nat-unprotected" => true,
                    _ => return Err(Error::BadOption { key: key.into(), value: value.into(), why: "nat or nat-unprotected" }),
                }
            }
            _ => {
                return Err(Error::BadOption {
                    key: key.into(),
                    value: value.into(),
                    why: "unsupported (com.docker.network.bridge.name, com.docker.network.bridge.gateway_mode_ipv4|ipv6)",
                })
            }
        }
        Ok(())
    }
}

/// One container's endpoint on a network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// The container ID.
    pub id: String,
    /// Its interface there.
    pub ifname: String,
    /// Its addresses there.
    pub addresses: Vec<IpAddr>,
    /// Its network-scoped aliases there.
    pub aliases: Vec<String>,
}

/// The runtime's one seam to networking: the in-process [`Engine`] when no daemon runs,
/// the daemon's socket when it does; kernel state is the same either way.
pub trait Networking {
    /// A network by name (`bridge` is docker0).
    fn network(&self, name: &str) -> Result<BridgeNetwork>;
    /// Every network, `bridge` first.
    fn networks(&self) -> Result<Vec<BridgeNetwork>>;
    /// Creates and stores a network.
    fn create_network(&self, req: &CreateNetwork) -> Result<BridgeNetwork>;
    /// Removes a network without endpoints, with the bridge it made and its addresses.
    fn remove_network(&self, name: &str) -> Result<BridgeNetwork>;
    /// Attaches a container's netns as `opts.ifname`, with its ports, address and aliases.
    fn attach(&self, net: &BridgeNetwork, id: &str, netns: &Path, opts: &AttachOptions) -> Result<Endpoint>;
    /// Detaches it again; idempotent.
    fn detach(&self, net: &BridgeNetwork, id: &str, netns: Option<&Path>, ifname: &str, ep: Option<&Endpoint>) -> Result<()>;
    /// Every (network, interface) container `id` is attached to.
    fn attachments(&self, id: &str) -> Result<Vec<(String, String)>>;
    /// Who is attached to `network`.
    fn members(&self, network: &str) -> Result<Vec<Member>>;
    /// Removes every user network without endpoints; returns their names.
    fn prune(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for net in self.networks()?.into_iter().filter(|n| n.name != "bridge") {
            match self.remove_network(&net.name) {
                Ok(_) => gone.push(net.name),
                Err(Error::NetworkInUse { .. }) => {}
                Err(Error::Daemon { status: 403, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(gone)
    }
    /// Attaches a running container to one more network, as the next free `ethN`, with
    /// address `ip` when given and `aliases`.
    fn connect(&self, net: &BridgeNetwork, id: &str, netns: &Path, ip: Option<IpAddr>, aliases: &[String]) -> Result<(String, Endpoint)> {
        let held = self.attachments(id)?;
        if held.iter().any(|(n, _)| *n == net.name) {
            return Err(Error::AlreadyAttached { network: net.name.clone(), container: id.to_string() });
        }
        let ifname = (0..64)
            .map(|i| format!("eth{i}"))
            .find(|i| !held.iter().any(|(_, used)| used == i))
            .ok_or_else(|| Error::NoFreeInterface(id.to_string()))?;
        let opts = AttachOptions { ip, aliases: aliases.to_vec(), ..AttachOptions::iface(&ifname) };
        let ep = self.attach(net, id, netns, &opts)?;
        Ok((ifname, ep))
    }
    /// Brings `lo` up in the netns at `netns` (a container's own network, `none` or
    /// bridged): local to the caller either way, so done here.
    fn loopback_up(&self, netns: &Path) -> Result<()> {
        crate::netns::NetNs::open(netns)?.run(|| {
            let mut s = crate::netlink::Socket::open()?;
            if let Some(lo) = s.link_by_name("lo")? {
                s.set_up(lo.index)?;
            }
            Ok(())
        })
    }
    /// The firewall backend new rules go to, as `info` reports it.
    fn firewall_backend(&self, run: &Path) -> Result<crate::firewall::Backend> {
        crate::firewall::default_backend(run)
    }
    /// Detaches the container from `net`, whatever interface it has there.
    fn disconnect(&self, net: &BridgeNetwork, id: &str, netns: Option<&Path>) -> Result<()> {
        let found = self.attachments(id)?.into_iter().find(|(n, _)| *n == net.name);
        let (_, ifname) = found.ok_or_else(|| Error::NotAttached { network: net.name.clone(), container: id.to_string() })?;
        self.detach(net, id, netns, &ifname, None)
    }
}

/// The engine handle.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    paths: endpoint::Paths,
}

impl Engine {
    /// An engine storing networks in `networks`, addresses in `ipam` (host-local layout)
    /// and runtime state (claims, records, locks) in `run`.
    pub fn new(networks: impl Into<PathBuf>, ipam: impl Into<PathBuf>, run: impl Into<PathBuf>) -> Self {
        let (ipam, run) = (ipam.into(), run.into());
        Self { store: Store { dir: networks.into(), ipam: ipam.clone(), run: run.clone() }, paths: endpoint::Paths::new(ipam, run) }
    }

    /// Endpoints the registry holds on `network`.
    pub fn endpoints(&self, network: &str) -> Result<usize> {
        Ok(shared::holders(&shared::registry(&self.paths.run)?, network).len())
    }

    /// The endpoint registry's directory: its mtime moves with every attach and detach.
    pub fn registry_dir(&self) -> PathBuf {
        crate::records::Record::Endpoints.path(&self.paths.run)
    }

    /// Frees everything container `id` held, for a container known to be dead (its
    /// monitor killed, or a reboot that emptied the run directory): its attachments (rules,
    /// published ports, addresses, veths), then addresses and port claims that no record
    /// names any more. Returns how many addresses were freed.
    pub fn gc_container(&self, id: &str) -> Result<usize> {
        let mut freed = 0;
        for (network, ifname) in self.attachments(id)? {
            if let Ok(net) = self.network(&network) {
                freed += crate::ipam::find(&crate::ipam::Store::open(&self.paths.ipam, &net.name)?, id, &ifname)?.len();
                self.detach(&net, id, None, &ifname, None)?;
            }
        }
        let claims = self.paths.publisher()?.claims;
        for net in self.networks()? {
            let store = crate::ipam::Store::open(&self.paths.ipam, &net.name)?;
            let held: Vec<crate::ipam::Entry> = store.lock()?.entries()?.into_iter().filter(|e| e.id == id).collect();
            for e in held {
                freed += crate::ipam::release(&store, id, &e.ifname, &[e.ip])?.len();
                let owner = crate::portmap::publish::key(&net.name, id, &e.ifname);
                claims.release_owner(&owner)?;
            }
        }
        Ok(freed)
    }

    /// Restores berth's firewall rules from the records.
    pub fn reconcile(&self) -> Result<Repaired> {
        crate::reconcile::reconcile(&self.paths.run)
    }

    fn lock(&self) -> Result<std::fs::File> {
        crate::state::lock_file(&self.store.dir.join(".lock"))
    }

    /// Subnets in use: other networks' and every route of this host but the default.
    fn taken(&self) -> Result<Vec<IpNetwork>> {
        let mut taken: Vec<IpNetwork> = self.networks()?.iter().map(|n| n.subnet).collect();
        let mut sock = Socket::open()?;
        for v6 in [false, true] {
            taken.extend(sock.routes(v6)?.into_iter().map(|r| r.dst).filter(|d| d.prefix() > 0));
        }
        Ok(taken)
    }

    /// A random unique local /64 (RFC 4193: fd + 40 random bits + subnet 0).
    fn pick_subnet6(&self) -> Result<IpNetwork> {
        let mut b = [0u8; 16];
        b[0] = 0xfd;
        crate::netlink::fill_random(&mut b[1..6]);
        IpNetwork::new(IpAddr::from(b), 64).map_err(|e| Error::BadSubnet { subnet: format!("{}/64", IpAddr::from(b)), why: e.to_string() })
    }

    fn pick_subnet(&self, taken: &[IpNetwork]) -> Result<IpNetwork> {
        let sixteens = (18..=31u8).filter_map(|b| IpNetwork::new(IpAddr::from([172, b, 0, 0]), 16).ok());
        let twenty_fours = (0..=255u8).filter_map(|b| IpNetwork::new(IpAddr::from([192, 168, b, 0]), 24).ok());
        sixteens.chain(twenty_fours).find(|n| !taken.iter().any(|t| overlaps(t, n))).ok_or(Error::NoFreeSubnet)
    }
}

impl Networking for Engine {
    fn network(&self, name: &str) -> Result<BridgeNetwork> {
        if name == "bridge" {
            return Ok(BridgeNetwork::docker_default());
        }
        // Only a valid name can name a record: `../x` never reaches the file system.
        let n = Name::network(name).map_err(|_| Error::NoSuchNetwork(name.to_string()))?;
        self.store.load(&n)?.ok_or_else(|| Error::NoSuchNetwork(name.to_string()))
    }

    fn networks(&self) -> Result<Vec<BridgeNetwork>> {
        let mut v = vec![BridgeNetwork::docker_default()];
        v.extend(self.store.list()?);
        Ok(v)
    }

    fn create_network(&self, req: &CreateNetwork) -> Result<BridgeNetwork> {
        let name = Name::network(&req.name)?;
        if RESERVED.contains(&name.as_str()) {
            return Err(Error::PredefinedNetwork(name.to_string()));
        }
        let _l = self.lock()?;
        if self.store.load(&name)?.is_some() {
            return Err(Error::NetworkExists(name.to_string()));
        }
        let taken = self.taken()?;
        let subnet = match req.subnet {
            Some(net) => {
                if net.ip() != net.network() {
                    return Err(Error::BadSubnet {
                        subnet: net.to_string(),
                        why: format!("host bits set (use {}/{})", net.network(), net.prefix()),
                    });
                }
                if let Some(o) = self.networks()?.into_iter().find(|o| overlaps(&o.subnet, &net)) {
                    return Err(Error::SubnetOverlap { subnet: net, other: o.subnet, network: o.name });
                }
                net
            }
            None => self.pick_subnet(&taken)?,
        };
        if req.ip_range.is_some() && req.subnet.is_none() {
            return Err(Error::BadSubnet { subnet: "(default)".into(), why: "--ip-range needs --subnet".into() });
        }
        if let Some(v6) = req.subnet.filter(IpNetwork::is_ipv6) {
            return Err(Error::BadSubnet { subnet: v6.to_string(), why: "an IPv6 subnet is the network's second, with --ipv6".into() });
        }
        let subnet6 = match (req.ipv6, req.subnet6) {
            (false, Some(s)) => return Err(Error::BadSubnet { subnet: s.to_string(), why: "an IPv6 subnet needs --ipv6".into() }),
            (false, None) => None,
            (true, Some(s)) => Some(s),
            (true, None) => Some(self.pick_subnet6()?),
        };
        if let Some(s6) = subnet6 {
            if s6.is_ipv4() {
                return Err(Error::BadSubnet { subnet: s6.to_string(), why: "not an IPv6 subnet".into() });
            }
            if let Some(o) = self.networks()?.into_iter().find(|o| o.subnet6.is_some_and(|x| overlaps(&x, &s6))) {
                return Err(Error::SubnetOverlap { subnet: s6, other: o.subnet6.unwrap_or(s6), network: o.name });
            }
        }
        let mut driver = req.driver.clone();
        let mut internal = req.internal;
        let (bridge, external_bridge) = match driver.parented_mut() {
            Some(p) => {
                if req.bridge.is_some() {
                    return Err(Error::BadOption {
                        key: "bridge".into(),
                        value: name.to_string(),
                        why: "only a bridge network has a bridge",
                    });
                }
                if p.parent.is_empty() {
                    // Docker's way: a dummy parent of the network's own, and no way out.
                    let prefix = if matches!(req.driver, Driver::Macvlan(_)) { "dm" } else { "di" };
                    p.parent = format!("{prefix}-{}", &crate::docker::network_id(name.as_str())[..12]);
                    internal = true;
                }
                Self::make_parent(p, &self.networks()?)?;
                (String::new(), false)
            }
            None => self.pick_bridge(req)?,
        };
        let net = BridgeNetwork {
            name: name.to_string(),
            bridge,
            subnet,
            gateway: req.gateway,
            ip_masq: !internal && driver == Driver::Bridge,
            mtu: None,
            external_bridge,
            unprotected: req.unprotected,
            internal,
            labels: req.labels.clone(),
            created: Some(crate::clock::rfc3339(crate::clock::now())),
            ip_range: req.ip_range,
            subnet6,
            gateway6: req.gateway6,
            driver,
        };
        // Validated the way allocation will use it; a parent made for it goes again.
        let saved = endpoint::range_sets(&net).and_then(|_| self.store.save(&net));
        if saved.is_err() {
            let _ = Self::remove_parent(&net, &[]);
        }
        saved.map(|()| net)
    }

    fn remove_network(&self, name: &str) -> Result<BridgeNetwork> {
        if name == "bridge" {
            return Err(Error::PredefinedNetwork(name.to_string()));
        }
        let net = self.network(name)?;
        let _l = self.lock()?;
        let endpoints = self.endpoints(&net.name)?;
        if endpoints > 0 {
            return Err(Error::NetworkInUse { network: net.name, endpoints });
        }
        // Only a bridge berth made for this network: never the user's own, never a non-bridge.
        let mut sock = Socket::open()?;
        if net.driver == Driver::Bridge {
            if let Some(l) = sock.link_by_name(&net.bridge)?.filter(|l| !net.external_bridge && l.kind.as_deref() == Some("bridge")) {
                sock.delete_link(l.index)?;
            }
        }
        Self::remove_parent(&net, &self.networks()?)?;
        let dir = self.paths.ipam.join(&net.name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("remove", dir, e)),
            _ => {}
        }
        self.store.remove(&Name::network(&net.name)?)?;
        Ok(net)
    }

    fn attach(&self, net: &BridgeNetwork, id: &str, netns: &Path, opts: &AttachOptions) -> Result<Endpoint> {
        endpoint::attach(&self.paths, net, id, netns, opts)
    }

    fn detach(&self, net: &BridgeNetwork, id: &str, netns: Option<&Path>, ifname: &str, ep: Option<&Endpoint>) -> Result<()> {
        endpoint::detach(&self.paths, net, id, netns, ifname, ep)
    }

    fn members(&self, network: &str) -> Result<Vec<Member>> {
        let store = crate::ipam::Store::open(&self.paths.ipam, network)?;
        // One read of the address store for all members (a lookup each would be O(N²)).
        let entries = store.lock()?.entries()?;
        let aliases = self.paths.aliases()?;
        let mut out = Vec::new();
        for k in shared::holders(&shared::registry(&self.paths.run)?, network) {
            if let Some((_, id, ifname)) = shared::split_key(&k) {
                let addresses =
                    entries.iter().filter(|e| e.id == id && (e.ifname == ifname || e.ifname.is_empty())).map(|e| e.ip).collect();
                out.push(Member {
                    id: id.to_string(),
                    ifname: ifname.to_string(),
                    addresses,
                    aliases: aliases.load(&k).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    fn attachments(&self, id: &str) -> Result<Vec<(String, String)>> {
        Ok(shared::registry(&self.paths.run)?
            .keys()
            .iter()
            .filter_map(|k| shared::split_key(k).filter(|(_, c, _)| *c == id).map(|(n, _, i)| (n.to_string(), i.to_string())))
            .collect())
    }
}

impl Engine {
    /// A new bridge network's bridge: the one asked for (an existing bridge is used and
    /// left on removal; a link of another kind is refused) or a fresh `br-<random>`.
    fn pick_bridge(&self, req: &CreateNetwork) -> Result<(String, bool)> {
        let bridge = match &req.bridge {
            Some(b) => Name::interface(b)?.to_string(),
            None => format!("br-{}", crate::netlink::random_hex(5)),
        };
        if let Some(other) = self.networks()?.into_iter().find(|n| n.bridge == bridge) {
            return Err(Error::BridgeInUse { bridge, network: other.name });
        }
        let external = match Socket::open()?.link_by_name(&bridge)? {
            Some(l) if l.kind.as_deref() == Some("bridge") => true,
            Some(_) => return Err(Error::NotABridge(bridge)),
            None => false,
        };
        Ok((bridge, external))
    }

    /// Checks a macvlan/ipvlan network's parent, making it when it is Docker's to make: an
    /// `IF.VID` 802.1Q link on IF (up), or the dummy of a network without a parent. One
    /// another network made is shared, not made twice.
    fn make_parent(p: &mut crate::network::driver::Parented, others: &[BridgeNetwork]) -> Result<()> {
        let mut sock = Socket::open()?;
        let bad = |why| Error::BadOption { key: "parent".into(), value: p.parent.clone(), why };
        if let Some(link) = sock.link_by_name(&p.parent)? {
            // Made by another network: shared, and removed with the last of them.
            p.made = others.iter().filter_map(|o| o.driver.parented()).find(|o| o.parent == p.parent).and_then(|o| o.made);
            if !link.up && p.made.is_none() {
                tracing::warn!(parent = %p.parent, "parent interface is down: containers will not reach the LAN until it is up");
            }
            return Ok(());
        }
        let made = match crate::network::vlan::parent_vid(&p.parent)? {
            (base, Some(vid)) => {
                let base_link = sock.link_by_name(base)?.ok_or_else(|| bad("the VLAN's base interface does not exist"))?;
                let req = crate::netlink::ChildRequest {
                    name: &p.parent,
                    master: base_link.index,
                    kind: crate::netlink::ChildKind::Vlan { id: vid },
                    mtu: None,
                    mac: None,
                    netns_fd: None,
                };
                match sock.create_child(&req) {
                    Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => return Err(Error::KernelLacks("vlan")),
                    r => r?,
                }
                MadeParent::Vlan
            }
            (_, None) if p.parent.starts_with("dm-") || p.parent.starts_with("di-") => {
                match sock.create_dummy(&p.parent, None) {
                    Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => return Err(Error::KernelLacks("dummy")),
                    r => r?,
                }
                MadeParent::Dummy
            }
            _ => return Err(bad("no such interface")),
        };
        if let Some(l) = sock.link_by_name(&p.parent)? {
            sock.set_up(l.index)?;
        }
        p.made = Some(made);
        Ok(())
    }

    /// Deletes the parent berth made for `net`, unless another of `others` still uses it.
    fn remove_parent(net: &BridgeNetwork, others: &[BridgeNetwork]) -> Result<()> {
        let Some(p) = net.driver.parented().filter(|p| p.made.is_some()) else { return Ok(()) };
        if others.iter().any(|o| o.name != net.name && o.driver.parented().is_some_and(|op| op.parent == p.parent)) {
            return Ok(());
        }
        let mut sock = Socket::open()?;
        let kind = match p.made {
            Some(MadeParent::Vlan) => "vlan",
            _ => "dummy",
        };
        if let Some(l) = sock.link_by_name(&p.parent)?.filter(|l| l.kind.as_deref() == Some(kind)) {
            sock.delete_link(l.index)?;
        }
        Ok(())
    }
}
