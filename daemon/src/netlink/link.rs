//! Links: bridges, veth pairs, up/down, master, hairpin, deletion.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecBridge, AfSpecInet, AfSpecUnspec, BridgeFlag, BridgeVlanInfo, BridgeVlanInfoFlags, InetDevConf, InfoBridge, InfoBridgePort,
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind, InfoVeth, InfoVlan, InfoVrf, IpVlanFlags, IpVlanMode,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::Socket;
use crate::error::NetlinkError;

/// What the engine needs to know about an existing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index in its netns.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, as "aa:bb:cc:dd:ee:ff".
    pub mac: String,
    /// The link kind ("bridge", "veth"), if it has one.
    pub kind: Option<String>,
    /// Whether IFF_UP is set.
    pub up: bool,
    /// MTU.
    pub mtu: u32,
    /// Index of the bridge it is a port of, if any.
    pub master: Option<u32>,
    /// Whether IFF_PROMISC is set.
    pub promisc: bool,
    /// Whether IFF_ALLMULTI is set.
    pub allmulti: bool,
    /// Transmit queue length.
    pub tx_queue_len: u32,
    /// IFLA_IFALIAS, if set.
    pub alias: Option<String>,
    /// IFLA_LINK: for a veth, its peer's index (in the peer's netns).
    pub peer: Option<u32>,
    /// For a VRF, its routing table.
    pub vrf_table: Option<u32>,
}

impl Link {
    fn from_msg(msg: &LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: String::new(),
            kind: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            mtu: 0,
            master: None,
            promisc: msg.header.flags.contains(LinkFlags::Promisc),
            allmulti: msg.header.flags.contains(LinkFlags::Allmulti),
            tx_queue_len: 0,
            alias: None,
            peer: None,
            vrf_table: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Address(a) => link.mac = format_mac(a),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Controller(m) => link.master = Some(*m),
                LinkAttribute::Link(p) => link.peer = Some(*p),
                LinkAttribute::TxQueueLen(q) => link.tx_queue_len = *q,
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::Vrf(v)) => {
                                link.vrf_table = v.iter().find_map(|x| if let InfoVrf::TableId(t) = x { Some(*t) } else { None })
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// The kind of a link made on a master (a "lower" device) and its kind data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// IFLA_MACVLAN_MODE: 1 private, 2 vepa, 4 bridge, 8 passthru.
    Macvlan { mode: u32 },
    /// IFLA_IPVLAN_MODE (0 l2, 1 l3, 2 l3s) and IFLA_IPVLAN_FLAGS (0 bridge, 1 private, 2 vepa).
    Ipvlan { mode: u16, flags: u16 },
    /// An 802.1Q VLAN with this VID.
    Vlan { id: u16 },
}

impl ChildKind {
    /// The kind's name, as `ip -d link` and errors print it.
    pub fn name(self) -> &'static str {
        match self {
            ChildKind::Macvlan { .. } => "macvlan",
            ChildKind::Ipvlan { .. } => "ipvlan",
            ChildKind::Vlan { .. } => "vlan",
        }
    }

    fn info(self) -> Vec<LinkInfo> {
        match self {
            ChildKind::Macvlan { mode } => {
                vec![LinkInfo::Kind(InfoKind::MacVlan), LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::from(mode))]))]
            }
            ChildKind::Ipvlan { mode, flags } => vec![
                LinkInfo::Kind(InfoKind::IpVlan),
                LinkInfo::Data(InfoData::IpVlan(vec![
                    InfoIpVlan::Mode(IpVlanMode::from(mode)),
                    InfoIpVlan::Flags(IpVlanFlags::from_bits_retain(flags)),
                ])),
            ],
            ChildKind::Vlan { id } => vec![LinkInfo::Kind(InfoKind::Vlan), LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)]))],
        }
    }
}

/// A macvlan, ipvlan or VLAN to create on a master (see [`Socket::create_child`]).
#[derive(Debug, Clone)]
pub struct ChildRequest<'a> {
    /// Its name where it is born.
    pub name: &'a str,
    /// The master's index, in the netns of the socket.
    pub master: u32,
    /// What it is.
    pub kind: ChildKind,
    /// MTU, if not the master's.
    pub mtu: Option<u32>,
    /// Hardware address, if not a random one (macvlan) or the master's (ipvlan, vlan).
    pub mac: Option<[u8; 6]>,
    /// The netns it is born in, if not the socket's.
    pub netns_fd: Option<std::os::fd::RawFd>,
}

/// The RTM_NEWLINK body for a link on a master, attributes in the order iproute2's `ip link
/// add link MASTER name NAME [mtu M] [address A] [netns NS] type KIND ...` sends them (golden
/// tests hold each kind to that request).
pub fn child_request(req: &ChildRequest<'_>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    if let Some(mtu) = req.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = req.mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(fd) = req.netns_fd {
        msg.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    msg.attributes.push(LinkAttribute::Link(req.master));
    msg.attributes.push(LinkAttribute::IfName(req.name.to_string()));
    msg.attributes.push(LinkAttribute::LinkInfo(req.kind.info()));
    msg
}

/// The RTM_NEWLINK body for a dummy link, attributes in the order iproute2's `ip link add
/// NAME [netns NS] type dummy` sends them (a golden test holds it to that request).
pub fn dummy_request(name: &str, netns_fd: Option<std::os::fd::RawFd>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    if let Some(fd) = netns_fd {
        msg.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Dummy)]));
    msg
}

/// The RTM_NEWLINK body for a bridge: name, MAC and MTU when given, then kind and
/// `IFLA_BR_VLAN_FILTERING` when asked — iproute2's `ip link add NAME type bridge
/// vlan_filtering 1` without MAC and MTU (a golden test holds it to that request).
pub fn bridge_request(name: &str, mac: Option<[u8; 6]>, mtu: Option<u32>, vlan_filtering: bool) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mac) = mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    let mut info = vec![LinkInfo::Kind(InfoKind::Bridge)];
    if vlan_filtering {
        info.push(LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(true)])));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(info));
    msg
}

/// A port VLAN entry: `vid` as the port's PVID, egress untagged (`bridge vlan add ... pvid
/// untagged`), or tagged.
pub fn port_vlan(vid: u16, pvid_untagged: bool) -> BridgeVlanInfo {
    let flags = if pvid_untagged { BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged } else { BridgeVlanInfoFlags::empty() };
    BridgeVlanInfo { flags, vid }
}

/// Tagged VLANs `min..=max` as entries: one VID, or a range's begin and end.
pub fn trunk_vlans(min: u16, max: u16) -> Vec<BridgeVlanInfo> {
    if min == max {
        return vec![port_vlan(min, false)];
    }
    vec![
        BridgeVlanInfo { flags: BridgeVlanInfoFlags::RangeBegin, vid: min },
        BridgeVlanInfo { flags: BridgeVlanInfoFlags::RangeEnd, vid: max },
    ]
}

/// The AF_BRIDGE RTM_SETLINK/RTM_DELLINK body of `bridge vlan add|del dev PORT vid ...
/// master`, as iproute2 sends it (golden-tested).
pub fn bridge_vlan_request(index: u32, vlans: &[BridgeVlanInfo]) -> LinkMessage {
    let mut msg = msg_for(index);
    msg.header.interface_family = netlink_packet_route::AddressFamily::Bridge;
    let mut spec = vec![AfSpecBridge::Flags(BridgeFlag::Controller)];
    spec.extend(vlans.iter().map(|v| AfSpecBridge::VlanInfo(*v)));
    msg.attributes.push(LinkAttribute::AfSpecBridge(spec));
    msg
}

/// The RTM_NEWLINK body for a VRF, as iproute2's `ip link add NAME type vrf table T`
/// (a golden test holds it to that request).
pub fn vrf_request(name: &str, table: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Vrf), LinkInfo::Data(InfoData::Vrf(vec![InfoVrf::TableId(table)]))]));
    msg
}

/// Formats a hardware address the way `ip link` and CNI results do.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A random locally administered unicast MAC; pinning it keeps a bridge's MAC from
/// changing as ports join and leave.
pub fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    fill_random(&mut mac);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// Fills `buf` from the kernel's random source.
pub fn fill_random(buf: &mut [u8]) {
    // getrandom(2) never fails for small buffers once the pool is initialised.
    let _ = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
}

/// `bytes` random bytes as lowercase hex: unique names for veths, bridges, containers.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    fill_random(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn msg_for(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

/// The attribute that sets a link's IPv4 settings (`IFLA_AF_SPEC` / `IFLA_INET_CONF`).
fn ipv4_conf(conf: InetDevConf) -> LinkAttribute {
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![AfSpecInet::DevConfRequest(conf)])])
}

impl Socket {
    /// Looks a link up by name; `None` if it does not exist.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        Ok(match self.get("get link", name, RouteNetlinkMessage::GetLink(msg))? {
            Some(RouteNetlinkMessage::NewLink(m)) => Some(Link::from_msg(&m)),
            _ => None,
        })
    }

    /// The IPv4 settings of link `name` (its `net.ipv4.conf.<name>.*`, from IFLA_AF_SPEC)
    /// with its index; None if there is no such link or it has no IPv4 config. Read over
    /// netlink: a /proc/sys/net lookup costs O(network namespaces).
    pub fn ipv4_conf(&mut self, name: &str) -> Result<Option<(u32, InetDevConf)>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let Some(RouteNetlinkMessage::NewLink(m)) = self.get("get link", name, RouteNetlinkMessage::GetLink(msg))? else {
            return Ok(None);
        };
        let conf = m.attributes.iter().find_map(|a| match a {
            LinkAttribute::AfSpecUnspec(specs) => specs.iter().find_map(|s| match s {
                AfSpecUnspec::Inet(inet) => inet.iter().find_map(|i| match i {
                    AfSpecInet::DevConf(c) => Some(*c),
                    _ => None,
                }),
                _ => None,
            }),
            _ => None,
        });
        Ok(conf.map(|c| (m.header.index, c)))
    }

    /// Sets the non-zero fields of `conf` in the IPv4 settings of link `index` (the kernel's
    /// IFLA_INET_CONF takes only the values given; zero cannot be set this way).
    pub fn set_ipv4_conf(&mut self, index: u32, conf: InetDevConf) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(ipv4_conf(conf));
        self.change("set ipv4 conf", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Renames a link and sets its IPv4 settings in one request: a link made under a
    /// temporary name gets its name and settings in one round trip. EEXIST: the name is
    /// taken.
    pub fn rename_with_ipv4_conf(&mut self, index: u32, name: &str, conf: InetDevConf) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(ipv4_conf(conf));
        self.change("rename link", name, RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Lists every link of the netns.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let msgs = self.dump("list links", RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_msg(l)),
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge with a pinned MAC (VLAN filtering on when asked); fails with EEXIST
    /// if the name is taken.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>, vlan_filtering: bool) -> Result<(), NetlinkError> {
        let msg = bridge_request(name, Some(random_mac()), mtu, vlan_filtering);
        self.change("create bridge", name, RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Turns VLAN filtering on for an existing bridge (a no-op where it is on).
    pub fn set_vlan_filtering(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(true)])),
        ]));
        self.change("turn on VLAN filtering", &index.to_string(), RouteNetlinkMessage::NewLink(msg), 0)
    }

    /// Adds VLANs to bridge port `index` (one VID, or a range as two entries).
    pub fn bridge_vlan_add(&mut self, index: u32, vlans: &[BridgeVlanInfo]) -> Result<(), NetlinkError> {
        let msg = bridge_vlan_request(index, vlans);
        self.change("add bridge VLAN", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Removes VLAN `vid` from bridge port `index`.
    pub fn bridge_vlan_del(&mut self, index: u32, vid: u16) -> Result<(), NetlinkError> {
        let msg = bridge_vlan_request(index, &[port_vlan(vid, false)]);
        self.change("delete bridge VLAN", &index.to_string(), RouteNetlinkMessage::DelLink(msg), 0)
    }

    /// Creates a veth pair whose peer is born inside the netns `peer_netns_fd` under its
    /// final name, and whose host end is already enslaved to `master`.
    pub fn create_veth(&mut self, req: &VethRequest<'_>) -> Result<(), NetlinkError> {
        let mut peer = LinkMessage::default();
        peer.attributes.push(LinkAttribute::IfName(req.peer_name.to_string()));
        peer.attributes.push(LinkAttribute::NetNsFd(req.peer_netns_fd));
        if let Some(mtu) = req.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(req.host_name.to_string()));
        if let Some(mtu) = req.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = req.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer)))]));
        self.change("create veth", req.host_name, RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Creates a macvlan, ipvlan or VLAN on `req.master` (an index in this socket's netns),
    /// born in the netns `req.netns_fd` (when given) under `req.name`.
    pub fn create_child(&mut self, req: &ChildRequest<'_>) -> Result<(), NetlinkError> {
        let what = match req.kind {
            ChildKind::Macvlan { .. } => "create macvlan",
            ChildKind::Ipvlan { .. } => "create ipvlan",
            ChildKind::Vlan { .. } => "create vlan",
        };
        self.change(what, req.name, RouteNetlinkMessage::NewLink(child_request(req)), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Brings a link down.
    pub fn set_down(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.header.change_mask = LinkFlags::Up;
        self.change("set link down", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets a link's alias (IFLA_IFALIAS): host-device keeps a moved device's old name there.
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.change("set link alias", alias, RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Moves a link into the netns `netns_fd`, keeping its name.
    pub fn set_netns(&mut self, index: u32, netns_fd: std::os::fd::RawFd) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::NetNsFd(netns_fd));
        self.change("move link to netns", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Creates an ifb link `name` (a queue that traffic redirected to it passes), up.
    pub fn create_ifb(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]));
        self.change("create ifb", name, RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Creates a dummy link `name`, born in the netns `netns_fd` when given.
    pub fn create_dummy(&mut self, name: &str, netns_fd: Option<std::os::fd::RawFd>) -> Result<(), NetlinkError> {
        self.change("create dummy", name, RouteNetlinkMessage::NewLink(dummy_request(name, netns_fd)), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Creates VRF `name` routing through `table`, in the socket's netns.
    pub fn create_vrf(&mut self, name: &str, table: u32) -> Result<(), NetlinkError> {
        self.change("create vrf", name, RouteNetlinkMessage::NewLink(vrf_request(name, table)), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Takes a link out of its master (bridge or VRF).
    pub fn set_nomaster(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.change("set nomaster", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Renames a link (it must be down).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.change("rename link", name, RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Brings a link up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.change("set link up", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Makes a link a port of bridge `master` (a veth left without one when its bridge
    /// was deleted).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.change("set master", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets or clears promiscuous mode.
    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.header.flags = if on { LinkFlags::Promisc } else { LinkFlags::empty() };
        msg.header.change_mask = LinkFlags::Promisc;
        self.change("set promisc", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets or clears all-multicast mode.
    pub fn set_allmulti(&mut self, index: u32, on: bool) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.header.flags = if on { LinkFlags::Allmulti } else { LinkFlags::empty() };
        msg.header.change_mask = LinkFlags::Allmulti;
        self.change("set allmulti", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets the hardware address.
    pub fn set_mac(&mut self, index: u32, mac: &[u8]) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.change("set mac", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.change("set mtu", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets the transmit queue length.
    pub fn set_tx_queue_len(&mut self, index: u32, len: u32) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        msg.attributes.push(LinkAttribute::TxQueueLen(len));
        self.change("set txqueuelen", &index.to_string(), RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Sets bridge-port options (hairpin, isolation) on a link enslaved to a bridge.
    pub fn set_bridge_port(&mut self, index: u32, hairpin: bool, isolated: bool) -> Result<(), NetlinkError> {
        let mut msg = msg_for(index);
        let mut opts = vec![InfoBridgePort::HairpinMode(hairpin)];
        if isolated {
            opts.push(InfoBridgePort::Isolated(true));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(opts)),
        ]));
        self.change("set bridge port", &index.to_string(), RouteNetlinkMessage::NewLink(msg), 0)
    }

    /// Deletes a link; a link already gone is success. Returns once the link is gone (with
    /// its addresses, routes and a veth's peer), not after the kernel's clean-up behind it.
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        match self.change_early("delete link", &index.to_string(), RouteNetlinkMessage::DelLink(msg_for(index))) {
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            r => r,
        }
    }
}

/// Parameters of a veth pair.
#[derive(Debug)]
pub struct VethRequest<'a> {
    /// Name of the end that stays in the caller's netns.
    pub host_name: &'a str,
    /// Name of the end inside the target netns (e.g. "eth0").
    pub peer_name: &'a str,
    /// fd of the target netns.
    pub peer_netns_fd: std::os::fd::RawFd,
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// Bridge index to enslave the host end to.
    pub master: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};

    /// `ip link add d0 netns x type dummy` as iproute2 6.1 sent it (strace -e write=3),
    /// sequence number zeroed; the netns descriptor was 4.
    const IPROUTE2_DUMMY: &str = "40000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
                                  08001c00 04000000 07000300 64300000 10001200 09000100 64756d6d 79000000";

    /// `ip link add link v0 name N mtu 1400 address 02:11:22:33:44:55 netns x type ...` (v0
    /// index 3, the netns descriptor 4) and the same without mtu/address/netns, as iproute2
    /// 6.1 sent them (strace -e trace=sendmsg -e write=3), sequence numbers zeroed.
    const IPROUTE2_IPVLAN_L3_BRIDGE_FULL: &str = "70000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000400 78050000 0a000100 02112233 44550000 08001c00 04000000 08000500 03000000 07000300 69300000 24001200 \
        0a000100 6970766c 616e0000 14000200 06000100 01000000 06000200 00000000";
    const IPROUTE2_IPVLAN_L3S_PRIVATE: &str = "54000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000500 03000000 07000300 69320000 24001200 0a000100 6970766c 616e0000 14000200 06000100 02000000 06000200 01000000";
    const IPROUTE2_IPVLAN_L2_VEPA: &str = "54000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000500 03000000 07000300 69330000 24001200 0a000100 6970766c 616e0000 14000200 06000100 00000000 06000200 02000000";
    const IPROUTE2_VLAN_4094_FULL: &str = "64000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000400 78050000 0a000100 02112233 44550000 08001c00 04000000 08000500 03000000 07000300 766c0000 18001200 \
        08000100 766c616e 0c000200 06000100 fe0f0000";
    const IPROUTE2_VLAN_10: &str = "48000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000500 03000000 07000300 766c0000 18001200 08000100 766c616e 0c000200 06000100 0a000000";
    const IPROUTE2_MACVLAN_PRIVATE_FULL: &str = "68000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000400 78050000 0a000100 02112233 44550000 08001c00 04000000 08000500 03000000 07000300 6d310000 1c001200 \
        0b000100 6d616376 6c616e00 0c000200 08000100 01000000";

    /// Serialises an RTM_NEWLINK create request as the socket sends it (sequence 0).
    fn wire(body: LinkMessage) -> Vec<u8> {
        serialize(NLM_F_CREATE | NLM_F_EXCL, RouteNetlinkMessage::NewLink(body))
    }

    /// Serialises `msg` with `flags` besides REQUEST|ACK, as the socket sends it (sequence 0).
    fn serialize(flags: u16, msg: RouteNetlinkMessage) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }

    /// Holds `ours` to iproute2's `golden`: flags, attributes, order and values equal, and
    /// the bytes equal but for IFLA_INFO_KIND's trailing NUL (netlink-packet-route writes
    /// one, iproute2 does not; the kernel's NLA_STRING policy takes both) — which moves
    /// the lengths of the message, LINKINFO and INFO_KIND by one padded word at most.
    fn same_request(ours: &[u8], golden: &[u8]) {
        let theirs = NetlinkMessage::<RouteNetlinkMessage>::deserialize(golden).unwrap();
        let mine = NetlinkMessage::<RouteNetlinkMessage>::deserialize(ours).unwrap();
        assert_eq!(mine.header.flags, theirs.header.flags);
        assert_eq!(mine.payload, theirs.payload);
        if ours.len() == golden.len() {
            let diff: Vec<usize> = (0..golden.len()).filter(|&i| golden[i] != ours[i]).collect();
            assert!(diff.len() <= 1, "bytes differ at {diff:?}");
        }
    }

    fn child(name: &str, kind: ChildKind, full: bool) -> Vec<u8> {
        let (mtu, mac, netns_fd) = if full { (Some(1400), Some([2, 0x11, 0x22, 0x33, 0x44, 0x55]), Some(4)) } else { (None, None, None) };
        wire(child_request(&ChildRequest { name, master: 3, kind, mtu, mac, netns_fd }))
    }

    #[test]
    fn the_ipvlan_requests_are_iproute2s() {
        same_request(&child("i0", ChildKind::Ipvlan { mode: 1, flags: 0 }, true), &bytes(IPROUTE2_IPVLAN_L3_BRIDGE_FULL));
        same_request(&child("i2", ChildKind::Ipvlan { mode: 2, flags: 1 }, false), &bytes(IPROUTE2_IPVLAN_L3S_PRIVATE));
        same_request(&child("i3", ChildKind::Ipvlan { mode: 0, flags: 2 }, false), &bytes(IPROUTE2_IPVLAN_L2_VEPA));
    }

    #[test]
    fn the_vlan_requests_are_iproute2s() {
        same_request(&child("vl", ChildKind::Vlan { id: 4094 }, true), &bytes(IPROUTE2_VLAN_4094_FULL));
        same_request(&child("vl", ChildKind::Vlan { id: 10 }, false), &bytes(IPROUTE2_VLAN_10));
    }

    #[test]
    fn the_macvlan_request_is_iproute2s() {
        same_request(&child("m1", ChildKind::Macvlan { mode: 1 }, true), &bytes(IPROUTE2_MACVLAN_PRIVATE_FULL));
    }

    /// `ip link add vrf-blue type vrf table 10` as iproute2 6.1 sent it (strace -e
    /// trace=sendmsg -e write=3; the kernel then refused it: no vrf here), sequence zeroed.
    const IPROUTE2_VRF_10: &str = "48000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        0d000300 7672662d 626c7565 00000000 18001200 07000100 76726600 0c000200 08000100 0a000000";

    /// `ip link add br0 type bridge vlan_filtering 1` and `bridge vlan add|del dev v0 ...
    /// master` (v0 index 4) as iproute2 6.1 sent them (strace -e trace=sendmsg -e write=3;
    /// the kernel then refused them: no bridge VLAN filtering here), sequence zeroed.
    const IPROUTE2_BRIDGE_VLAN_FILTERING: &str = "44000000 10000506 00000000 00000000 00000000 00000000 00000000 00000000 \
        08000300 62723000 1c001200 0a000100 62726964 67650000 0c000200 05000700 01000000";
    const IPROUTE2_VLAN_ADD_PVID_UNTAGGED_100: &str = "34000000 13000500 00000000 00000000 07000000 04000000 00000000 00000000 \
        14001a00 06000000 01000000 08000200 06006400";
    const IPROUTE2_VLAN_ADD_101_200: &str = "3c000000 13000500 00000000 00000000 07000000 04000000 00000000 00000000 \
        1c001a00 06000000 01000000 08000200 08006500 08000200 1000c800";
    const IPROUTE2_VLAN_DEL_1: &str = "34000000 11000500 00000000 00000000 07000000 04000000 00000000 00000000 \
        14001a00 06000000 01000000 08000200 00000100";

    #[test]
    fn the_bridge_vlan_requests_are_iproute2s() {
        same_request(&wire(bridge_request("br0", None, None, true)), &bytes(IPROUTE2_BRIDGE_VLAN_FILTERING));
        let set = |v: &[BridgeVlanInfo]| serialize(0, RouteNetlinkMessage::SetLink(bridge_vlan_request(4, v)));
        assert_eq!(set(&[port_vlan(100, true)]), bytes(IPROUTE2_VLAN_ADD_PVID_UNTAGGED_100));
        assert_eq!(set(&trunk_vlans(101, 200)), bytes(IPROUTE2_VLAN_ADD_101_200));
        let del = serialize(0, RouteNetlinkMessage::DelLink(bridge_vlan_request(4, &[port_vlan(1, false)])));
        assert_eq!(del, bytes(IPROUTE2_VLAN_DEL_1));
    }

    #[test]
    fn the_vrf_request_is_iproute2s() {
        same_request(&wire(vrf_request("vrf-blue", 10)), &bytes(IPROUTE2_VRF_10));
    }

    fn bytes(hex: &str) -> Vec<u8> {
        let h: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
    }

    /// The same request as iproute2's: header flags, attributes, their order and values.
    /// (Bytes differ in one place only: netlink-packet-route ends IFLA_INFO_KIND with a
    /// NUL, iproute2 does not; the kernel's NLA_STRING policy takes both.)
    #[test]
    fn the_dummy_request_is_iproute2s() {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(dummy_request("d0", Some(4)))));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        let golden = bytes(IPROUTE2_DUMMY);
        let theirs = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&golden).unwrap();
        let ours = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).unwrap();
        assert_eq!(ours.header.flags, theirs.header.flags);
        assert_eq!(ours.payload, theirs.payload);
        let diff: Vec<usize> = (0..golden.len().max(buf.len())).filter(|&i| golden.get(i) != buf.get(i)).collect();
        assert_eq!(diff, [52], "only IFLA_INFO_KIND's length (its trailing NUL) may differ");
    }
}
