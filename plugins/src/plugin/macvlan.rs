//! The macvlan plugin over the engine's [`netd::network::macvlan`]: keys `master`
//! (default: the interface of the default route), `mode`, `mtu`, `mac`, `linkInContainer`
//! and an optional `ipam` (without one the link is only brought up, as the reference's).
//! The MAC comes from `runtimeConfig.mac`, else CNI_ARGS `MAC=`, else `mac`.

use ipnetwork::IpNetwork;
use netd::netns::NetNs;
use netd::network::bridge::{self, IfaceConfig};
use netd::network::macvlan::{self, Mode, Spec};
use serde::Deserialize;

use crate::exec::delegate;
use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Interface, IpConfig, NetConf};

/// The macvlan plugin.
pub struct Macvlan;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MacvlanConf {
    #[serde(default)]
    master: String,
    #[serde(default)]
    mode: String,
    mtu: Option<u32>,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    link_in_container: bool,
    #[serde(default)]
    ipam: serde_json::Value,
}

struct Ctx {
    spec: Spec,
    ipam_type: Option<String>,
}

fn invalid(msg: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

fn ctx(args: &Args, conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: MacvlanConf = conf.plugin()?;
    let master = (!c.master.is_empty()).then_some(c.master.clone());
    if let Some(m) = &master {
        netd::name::Name::interface(m).map_err(|e| invalid(format!("macvlan: master: {e}")))?;
    }
    let mode: Mode = c.mode.parse().map_err(|e| invalid(format!("macvlan: {e}")))?;
    let mac = conf
        .raw
        .pointer("/runtimeConfig/mac")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| args.args.iter().find(|(k, _)| k == "MAC").map(|(_, v)| v.clone()))
        .or((!c.mac.is_empty()).then_some(c.mac.clone()));
    let mac = mac.map(|m| netd::tuning::parse_mac(&m).map_err(|e| invalid(format!("macvlan: mac {m:?}: {e}")))).transpose()?;
    let ipam_type = c.ipam.get("type").and_then(|t| t.as_str()).filter(|t| !t.is_empty()).map(str::to_string);
    Ok(Ctx { spec: Spec { master, mode, mtu: c.mtu, mac, link_in_container: c.link_in_container }, ipam_type })
}

fn netns(args: &Args) -> Result<NetNs, CniError> {
    Ok(NetNs::open(args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?)?)
}

/// A route without a gateway goes through the gateway of its family, as the reference's.
pub(crate) fn iface_config(ipam: &CniResult) -> IfaceConfig {
    let gw = |dst: &IpNetwork| ipam.ips.iter().find(|i| i.address.is_ipv4() == dst.is_ipv4()).and_then(|i| i.gateway);
    IfaceConfig {
        addrs: ipam.ips.iter().map(|i| i.address).collect(),
        routes: ipam.routes.iter().map(|r| (r.dst, r.gw.or_else(|| gw(&r.dst)))).collect(),
    }
}

impl Plugin for Macvlan {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(args, conf)?;
        let ns = netns(args)?;
        let ipam = match &c.ipam_type {
            Some(t) => Some(delegate(t, "ADD", args)?.ok_or_else(|| CniError::new(code::INTERNAL, "IPAM returned no result"))?),
            None => None,
        };
        let cfg = ipam.as_ref().map(iface_config);
        let link = match macvlan::attach(&c.spec, &ns, &args.ifname, cfg.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                // Undo: the address goes back to the pool.
                if let Some(t) = &c.ipam_type {
                    let _ = delegate(t, "DEL", args);
                }
                return Err(e.into());
            }
        };
        let mtu = (crate::types::version::at_least(&conf.cni_version, "1.1.0") && link.mtu > 0).then_some(link.mtu);
        let ipam = ipam.unwrap_or_default();
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            interfaces: vec![Interface { name: link.name.clone(), mac: link.mac.clone(), mtu, sandbox: ns.path().display().to_string() }],
            ips: ipam.ips.iter().map(|i| IpConfig { interface: Some(0), ..i.clone() }).collect(),
            routes: ipam.routes.clone(),
            dns: ipam.dns.clone(),
        })
    }

    /// The address is released, then the link goes; a netns or link already gone is fine.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "DEL", args)?;
        }
        bridge::detach(args.netns.as_deref(), &args.ifname)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| invalid("macvlan: CHECK requires prevResult".into()))?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "CHECK", args)?;
        }
        let ns = netns(args)?;
        let found = bridge::inspect(&ns, &args.ifname)?;
        let bridge::Inspected { link, addrs, .. } = found
            .filter(|f| f.link.kind.as_deref() == Some("macvlan"))
            .ok_or_else(|| CniError::new(code::INTERNAL, format!("macvlan: no macvlan {} in {}", args.ifname, ns.path().display())))?;
        for want in prev.container_ips() {
            if !addrs.contains(&want) {
                return Err(CniError::new(code::INTERNAL, format!("macvlan: {} lacks address {want}", link.name)));
            }
        }
        Ok(())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "GC", args)?;
        }
        Ok(())
    }

    fn status(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "STATUS", args)?;
        }
        Ok(())
    }
}
