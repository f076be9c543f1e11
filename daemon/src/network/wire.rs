//! Wiring one attachment: the bridge (made if missing, with its gateway addresses), the
//! veth into the container's netns, and the network's firewall rules held in the endpoint
//! registry; and unwiring it again. The runtime's attach and the CNI bridge plugin both
//! come through here, so a veth and a network rule set are each made in one place.

use std::path::Path;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::firewall::{Firewall, NetworkRules};
use crate::netlink::Socket;
use crate::netns::NetNs;
use crate::network::bridge::{self, Attached, BridgeSpec, IfaceConfig};
use crate::network::shared;
use crate::records::Record;
use crate::state::{file_key, StateDir};

/// What one attachment needs wired.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The network (rule comments, registry prefix).
    pub network: String,
    /// The bridge and how to treat it.
    pub spec: BridgeSpec,
    /// Gateway addresses the bridge carries (with `spec.is_gateway`).
    pub gateways: Vec<IpNetwork>,
    /// The container interface's addresses and routes.
    pub iface: IfaceConfig,
    /// The network's rule sets, one per subnet.
    pub rules: Vec<NetworkRules>,
}

/// What one attachment wired on the host side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wired {
    /// The bridge.
    pub spec: BridgeSpec,
    /// Its gateway addresses (when `spec.is_gateway`).
    pub gateways: Vec<IpNetwork>,
    /// The host end of the veth.
    pub host: String,
}

/// What each attachment wired on the host (beside the registry), so that netd can put
/// back a bridge, its addresses and its ports after someone removed them.
fn links_dir(registry: &StateDir) -> Result<StateDir> {
    Record::Links.open(registry.path().parent().unwrap_or(registry.path()))
}

/// The host-side records of attachments under run directory `run` that the registry
/// still holds (a record outliving its attachment never brings a bridge back).
pub fn wired(run: &Path) -> Vec<Wired> {
    let (Ok(dir), Ok(registry)) = (Record::Links.open(run), shared::registry(run)) else { return Vec::new() };
    let held: std::collections::HashSet<String> = registry.keys().into_iter().collect();
    dir.keys().into_iter().filter(|k| held.contains(k)).filter_map(|k| dir.load(&k)).collect()
}

/// Forgets attachment `key` of `network` without touching its veth (CNI GC: the netns
/// is gone): its registry entry (and the network's rules if it was the last) and its
/// host-side record.
pub fn forget(registry: &StateDir, fw: &dyn Firewall, network: &str, key: &str) -> Result<()> {
    shared::release(registry, fw, network, key, &[])?;
    links_dir(registry)?.remove(key)
}

/// The registry key of an attachment.
pub fn key(network: &str, id: &str, ifname: &str) -> String {
    file_key(&[network, id, ifname])
}

/// Wires container `id`'s netns `ns` as `ifname`; on failure nothing of it is left.
pub fn wire(registry: &StateDir, fw: &dyn Firewall, id: &str, ns: &NetNs, ifname: &str, w: &Wiring) -> Result<Attached> {
    let mut sock = Socket::open()?;
    let br = bridge::ensure_bridge(&mut sock, &w.spec)?;
    if w.spec.is_gateway {
        bridge::ensure_gateways(&mut sock, &br, &w.gateways, w.spec.force_address)?;
        let addrs = &w.iface.addrs;
        bridge::enable_forwarding(addrs.iter().any(|a| a.is_ipv4()), addrs.iter().any(|a| a.is_ipv6()))?;
    }
    let att = bridge::attach(&mut sock, &br, &w.spec, ns, ifname, &w.iface)?;
    crate::fault::point("wire-attached");
    let k = key(&w.network, id, ifname);
    let record = Wired { spec: w.spec.clone(), gateways: w.gateways.clone(), host: att.host.name.clone() };
    let held = links_dir(registry).and_then(|d| d.save(&k, &record)).and_then(|()| shared::hold(registry, fw, &w.network, &k, &w.rules));
    if let Err(e) = held {
        let _ = links_dir(registry).and_then(|d| d.remove(&k));
        let _ = sock.delete_link(att.host.index);
        return Err(e);
    }
    crate::fault::point("wire-held");
    Ok(att)
}

/// Unwires: the veth goes (through the netns while it exists, else by the host ends
/// named in `host_veths` that are ports of `bridge`: a dead netns frees its veth only
/// later, in a kernel work queue), and the network's rules are released; when the record
/// is gone, `fallback` names them from the addresses the interface had. Idempotent.
#[allow(clippy::too_many_arguments)]
pub fn unwire(
    registry: &StateDir,
    fw: &dyn Firewall,
    network: &str,
    id: &str,
    netns: Option<&Path>,
    ifname: &str,
    bridge_name: &str,
    host_veths: &[String],
    fallback: &dyn Fn(&[IpNetwork]) -> Vec<NetworkRules>,
) -> Result<()> {
    let k = key(network, id, ifname);
    let dir = links_dir(registry)?;
    let mut hosts = host_veths.to_vec();
    hosts.extend(dir.load::<Wired>(&k).map(|w| w.host));
    let addrs = bridge::detach(netns, ifname)?;
    bridge::delete_host_veths(bridge_name, &hosts)?;
    crate::fault::point("unwire-detached");
    shared::release(registry, fw, network, &k, &fallback(&addrs))?;
    dir.remove(&k)
}
