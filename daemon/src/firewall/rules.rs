//! The neutral firewall model: what an attachment publishes and what a network needs,
//! whatever the backend. Each backend renders it (`iptables/render.rs`, `nft/layout.rs`).

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::portmap::PortMapping;

/// Which firewall backend installed a record's rules: removal and repair use the same
/// one, whatever the default is by then. Records older than the field are iptables'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// iptables-restore batches (iptables-nft or legacy).
    #[default]
    Iptables,
    /// berth's own nf_tables table over netlink.
    Nftables,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Iptables => "iptables",
            Backend::Nftables => "nftables",
        })
    }
}

/// Everything one attachment (container + ifname) installs for its published ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRules {
    /// Stable identity of the attachment: network name, container ID, ifname.
    pub network: String,
    /// Container ID.
    pub container_id: String,
    /// Interface inside the container.
    pub ifname: String,
    /// Container addresses with their prefix (iptables: the prefix gives the hairpin
    /// subnet).
    pub addrs: Vec<IpNetwork>,
    /// The mappings.
    pub mappings: Vec<PortMapping>,
    /// Masquerades hairpin and localhost connections (portmap's `snat`, default true).
    pub snat: bool,
    /// The host interface that routes to the container (its bridge, a ptp host veth):
    /// nftables tells hairpin traffic by it, as it comes in and goes out by it. None
    /// where no listed host interface routes there; [`LEGACY_HOST_IF`] as read from a
    /// record of a version before it (`portmap::publish::load` resolves that).
    #[serde(default = "legacy_host_if")]
    pub host_if: Option<String>,
    /// Extra match arguments per family before jumping into the container's chain.
    pub conditions_v4: Vec<String>,
    /// Same for IPv6.
    pub conditions_v6: Vec<String>,
    /// The backend that installed them (set when published).
    #[serde(default)]
    pub backend: Backend,
    /// The connection-mark bit the iptables backend marked hairpin traffic with.
    #[serde(default = "default_mark_bit")]
    pub mark_bit: u8,
}

/// What a record written before [`PortRules::host_if`] reads as there: longer than any
/// interface name (15 bytes), so it is never one.
pub const LEGACY_HOST_IF: &str = "(recorded before host_if)";

fn legacy_host_if() -> Option<String> {
    Some(LEGACY_HOST_IF.into())
}

fn default_mark_bit() -> u8 {
    super::DEFAULT_MARK_BIT
}

/// A bridge network's own rules, installed by its first attachment and removed with the
/// last: forwarding to and from the bridge is accepted (so a FORWARD policy of DROP does
/// not cut containers off) and, with `masquerade`, traffic from the subnet leaving through
/// any other interface is masqueraded, as Docker's `-s 172.17.0.0/16 ! -o docker0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRules {
    /// Network name.
    pub network: String,
    /// The subnet (host bits ignored).
    pub subnet: IpNetwork,
    /// The bridge the subnet lives on.
    pub bridge: String,
    /// Masquerade outbound traffic (bridge `ipMasq`).
    #[serde(default = "yes")]
    pub masquerade: bool,
    /// Destinations masquerade spares besides the bridge itself (bridge `ipMasqExclude`):
    /// the cluster CIDR of a multi-node setup, so pods on other nodes see pod addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masq_exclude: Vec<IpNetwork>,
    /// Drop packets for the subnet that arrive on any other interface than the bridge
    /// (a neighbour routing the subnet via this host), as Docker 28 does; published ports
    /// still answer (their packets are addressed to the host). Off is Docker's
    /// `gateway_mode=nat-unprotected`.
    #[serde(default = "yes")]
    pub protect: bool,
    /// `--internal`: nothing leaves the bridge for another interface and nothing comes in
    /// from one; no masquerade.
    #[serde(default)]
    pub internal: bool,
    /// The backend that installed them (set when held).
    #[serde(default)]
    pub backend: Backend,
}

fn yes() -> bool {
    true
}

/// What the CNI `firewall` plugin installs for one attachment: its addresses may be
/// forwarded (out, and back in for connections it opened) past a restrictive forward
/// policy, after the administrator's own chain; with `same-bridge` ingress its bridge is
/// isolated from the other isolated bridges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRules {
    /// Network name.
    pub network: String,
    /// Container ID.
    pub container_id: String,
    /// Interface inside the container.
    pub ifname: String,
    /// The container's addresses.
    pub addrs: Vec<IpNetwork>,
    /// The iptables chain run first for administrator overrides (`iptablesAdminChainName`).
    pub admin_chain: String,
    /// The bridge to isolate (`ingressPolicy: same-bridge`).
    #[serde(default)]
    pub isolate: Option<String>,
    /// The backend that installed them.
    #[serde(default)]
    pub backend: Backend,
}

/// Outbound masquerade of one attachment's own addresses (ptp's `ipMasq`): traffic from
/// each address to anywhere but its own subnet and multicast leaves with the host's
/// address, as the reference plugins' `ip.SetupIPMasq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasqRules {
    /// Network name.
    pub network: String,
    /// Container ID.
    pub container_id: String,
    /// Interface inside the container.
    pub ifname: String,
    /// The container's addresses with their prefix (the prefix gives the subnet spared).
    pub addrs: Vec<IpNetwork>,
    /// The backend that installed them.
    #[serde(default)]
    pub backend: Backend,
}

impl MasqRules {
    /// The subnet of each address, host bits cleared.
    pub fn subnets(&self) -> impl Iterator<Item = (IpNetwork, IpNetwork)> + '_ {
        self.addrs.iter().map(|a| (*a, IpNetwork::new(a.network(), a.prefix()).unwrap_or(*a)))
    }
}

/// The multicast range of an address's family, never masqueraded.
pub fn multicast(v6: bool) -> IpNetwork {
    if v6 {
        IpNetwork::new(std::net::Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0).into(), 8)
    } else {
        IpNetwork::new(std::net::Ipv4Addr::new(224, 0, 0, 0).into(), 4)
    }
    .unwrap_or(IpNetwork::V4(ipnetwork::Ipv4Network::from(std::net::Ipv4Addr::UNSPECIFIED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_host_if_reads_as_legacy_and_none_stays_none() {
        let json = r#"{"network":"n","container_id":"c","ifname":"eth0","addrs":["172.17.0.2/16"],"mappings":[],"snat":true,"conditions_v4":[],"conditions_v6":[]}"#;
        let old: PortRules = serde_json::from_str(json).unwrap();
        assert_eq!(old.host_if.as_deref(), Some(LEGACY_HOST_IF));
        assert!(LEGACY_HOST_IF.len() > 15, "could be an interface name");
        let none = PortRules { host_if: None, ..old };
        let back: PortRules = serde_json::from_str(&serde_json::to_string(&none).unwrap()).unwrap();
        assert_eq!(back.host_if, None);
    }
}
