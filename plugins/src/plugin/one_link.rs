//! What the plugins that give a container one link of its own (macvlan, ipvlan, vlan,
//! host-device, dummy, tap)
//! share: an optional IPAM plugin delegated to, the link made with the addresses and
//! routes it returned (or only brought up without one), the address given back if the
//! link cannot be made, and a result naming that one interface.

use ipnetwork::IpNetwork;
use netd::netlink::Link;
use netd::netns::NetNs;
use netd::network::bridge::IfaceConfig;

use crate::exec::delegate;
use crate::skel::Args;
use crate::types::{code, CniError, CniResult, Interface, IpConfig, NetConf};

/// Passes `command` to the IPAM plugin, if the config names one.
pub fn ipam(ipam_type: Option<&str>, command: &str, args: &Args) -> Result<Option<CniResult>, CniError> {
    match ipam_type {
        Some(t) => delegate(t, command, args),
        None => Ok(None),
    }
}

/// The container side of an IPAM result: its addresses, and its routes with a route
/// without a gateway sent through the gateway of its family, as the reference plugins do.
pub fn iface_config(ipam: &CniResult) -> IfaceConfig {
    let gw = |dst: &IpNetwork| ipam.ips.iter().find(|i| i.address.is_ipv4() == dst.is_ipv4()).and_then(|i| i.gateway);
    IfaceConfig {
        addrs: ipam.ips.iter().map(|i| i.address).collect(),
        routes: ipam.routes.iter().map(|r| (r.dst, r.gw.or_else(|| gw(&r.dst)))).collect(),
        // The reference plugins leave IPv6 as the kernel has it.
        keep_ipv6: true,
    }
}

/// ADD: with an IPAM plugin that needs no link to answer (any but `dhcp`), the address
/// first, then `make` the link in `ns` with it — one trip into the netns; the address
/// goes back if the link cannot be made. With `dhcp`, whose client asks on the link, the
/// reference plugins' order: `make` the link (up, no address), IPAM, then the addresses
/// and routes it returned; on failure the address goes back and `unmake` removes the link.
pub fn add(
    args: &Args,
    conf: &NetConf,
    ipam_type: Option<&str>,
    ns: &NetNs,
    make: impl FnOnce(Option<&IfaceConfig>) -> netd::Result<Link>,
    unmake: impl FnOnce(),
) -> Result<CniResult, CniError> {
    if let Some(t) = ipam_type.filter(|t| *t != "dhcp") {
        let r = delegate(t, "ADD", args)?.ok_or_else(|| CniError::new(code::INTERNAL, "IPAM returned no result"))?;
        return match make(Some(&iface_config(&r))) {
            Ok(link) => Ok(result(conf, ns, &link, r)),
            Err(e) => {
                let _ = delegate(t, "DEL", args);
                Err(e.into())
            }
        };
    }
    let link = make(None)?;
    let ipam = match ipam(ipam_type, "ADD", args) {
        Ok(Some(r)) => Some(r),
        Ok(None) if ipam_type.is_none() => None,
        Ok(None) => {
            unmake();
            return Err(CniError::new(code::INTERNAL, "IPAM returned no result"));
        }
        Err(e) => {
            unmake();
            return Err(e);
        }
    };
    let link = match &ipam {
        Some(r) => match netd::network::bridge::configure(ns, &link.name, &iface_config(r)) {
            Ok(l) => l,
            Err(e) => {
                let _ = ipam_type.map(|t| delegate(t, "DEL", args));
                unmake();
                return Err(e.into());
            }
        },
        None => link,
    };
    Ok(result(conf, ns, &link, ipam.unwrap_or_default()))
}

/// The result's DNS as the reference macvlan, ipvlan and vlan report it: the config's
/// own `dns`, whatever the IPAM plugin said.
pub fn with_config_dns(conf: &NetConf, mut r: CniResult) -> Result<CniResult, CniError> {
    r.dns = match conf.get("dns") {
        Some(d) => crate::types::gojson::decode(d.clone()).map_err(|e| CniError::invalid(format!("dns: {e}")))?,
        None => Default::default(),
    };
    Ok(r)
}

/// The usual `unmake`: the link in the container's netns is deleted.
pub fn unlink(ns: &NetNs, ifname: &str) {
    let _ = netd::network::bridge::detach(Some(ns.path()), ifname);
}

/// ADD chained without IPAM (ipvlan's way): the addresses and routes of the previous
/// result `prev` go on the new link, and the result names it in place of prev's.
pub fn add_chained(
    conf: &NetConf,
    prev: CniResult,
    ns: &NetNs,
    make: impl FnOnce(Option<&IfaceConfig>) -> netd::Result<Link>,
) -> Result<CniResult, CniError> {
    let link = make(Some(&iface_config(&prev)))?;
    Ok(result(conf, ns, &link, prev))
}

/// The result of an ADD: the one interface `link` in `ns`, the addresses on it.
fn result(conf: &NetConf, ns: &NetNs, link: &Link, ipam: CniResult) -> CniResult {
    let mtu = (crate::types::version::at_least(&conf.cni_version, "1.1.0") && link.mtu > 0).then_some(link.mtu);
    CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces: vec![Interface { name: link.name.clone(), mac: link.mac.clone(), mtu, sandbox: ns.path().display().to_string() }],
        ips: ipam.ips.iter().map(|i| IpConfig { interface: Some(0), ..i.clone() }).collect(),
        routes: ipam.routes,
        dns: ipam.dns,
    }
}

/// The keys every plugin making a link on a master reads (macvlan, ipvlan, vlan), decoded
/// on their own beside each kind's keys (not flattened: Go's key matching needs the
/// field names, which serde does not give for a flattened struct).
#[derive(Debug, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OnMaster {
    /// The master's name (empty: the plugin's default).
    #[serde(default)]
    pub master: String,
    /// MTU, at most the master's.
    pub mtu: Option<u32>,
    /// The master is in the container's netns.
    #[serde(default)]
    pub link_in_container: bool,
    /// The IPAM config.
    #[serde(default)]
    pub ipam: serde_json::Value,
}

impl OnMaster {
    /// The master, checked as an interface name; None when not given.
    pub fn master(&self, plugin: &str) -> Result<Option<String>, CniError> {
        if self.master.is_empty() {
            return Ok(None);
        }
        netd::name::Name::interface(&self.master).map_err(|e| CniError::invalid(format!("{plugin}: master: {e}")))?;
        Ok(Some(self.master.clone()))
    }

    /// The engine's spec for a link of `kind` with `mac` on this master.
    pub fn spec(&self, master: Option<String>, kind: netd::netlink::ChildKind, mac: Option<[u8; 6]>) -> netd::network::child::Spec {
        netd::network::child::Spec { master, kind, mtu: self.mtu, mac, link_in_container: self.link_in_container }
    }
}

/// The IPAM plugin a config's `ipam` names, if any.
pub fn ipam_type(ipam: &serde_json::Value) -> Option<String> {
    crate::types::gojson::get(ipam, "type").and_then(|t| t.as_str()).filter(|t| !t.is_empty()).map(str::to_string)
}

/// The MAC to give the link: `runtimeConfig.mac`, else CNI_ARGS `MAC=`, else the config's
/// `configured` (the reference plugins' precedence); refused if not a unicast MAC.
pub fn mac(plugin: &str, args: &Args, conf: &NetConf, configured: &str) -> Result<Option<[u8; 6]>, CniError> {
    let mac = conf
        .pointer("/runtimeConfig/mac")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| args.args.iter().find(|(k, _)| k == "MAC").map(|(_, v)| v.clone()))
        .or((!configured.is_empty()).then(|| configured.to_string()));
    mac.map(|m| netd::tuning::parse_mac(&m).map_err(|e| CniError::invalid(format!("{plugin}: mac {m:?}: {e}")))).transpose()
}

/// DEL of a link the plugin made: the address is released, then the link goes; a netns
/// or link already gone is fine.
pub fn del(args: &Args, ipam_type: Option<&str>) -> Result<(), CniError> {
    ipam(ipam_type, "DEL", args)?;
    netd::network::bridge::detach(args.netns.as_deref(), &args.ifname)?;
    Ok(())
}

/// CHECK of a link the plugin made: IPAM agrees, and `CNI_IFNAME` is there, of `kind`,
/// with every address of `prev` (when given).
pub fn check(plugin: &str, kind: &str, args: &Args, ipam_type: Option<&str>, prev: Option<&CniResult>) -> Result<(), CniError> {
    ipam(ipam_type, "CHECK", args)?;
    let ns = netns(args)?;
    let found = netd::network::bridge::inspect(&ns, &args.ifname)?.filter(|f| f.link.kind.as_deref() == Some(kind));
    let f =
        found.ok_or_else(|| CniError::new(code::INTERNAL, format!("{plugin}: no {kind} {} in {}", args.ifname, ns.path().display())))?;
    for want in prev.into_iter().flat_map(|p| p.container_ips()) {
        if !f.addrs.contains(&want) {
            return Err(CniError::new(code::INTERNAL, format!("{plugin}: {} lacks address {want}", f.link.name)));
        }
    }
    Ok(())
}

/// The container's netns, which ADD and CHECK need.
pub fn netns(args: &Args) -> Result<NetNs, CniError> {
    Ok(NetNs::open(args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?)?)
}
