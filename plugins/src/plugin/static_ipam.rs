//! static IPAM: the addresses, routes and DNS the configuration (or the runtime) names, as
//! the reference's `static`. The list comes from `ipam.addresses`, plus CNI_ARGS
//! `IP=cidr[,cidr]` (with `GATEWAY=ip[,ip]` set on the address that contains it); a
//! non-empty `args.cni.ips` replaces it, and `runtimeConfig.ips` replaces that. Every
//! address needs its prefix length. Nothing is kept: DEL and GC have nothing to release.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Dns, IpConfig, NetConf, RouteConfig};

/// The static plugin.
pub struct Static;

#[derive(Debug, Deserialize)]
struct AddressConf {
    address: String,
    gateway: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RouteConf {
    dst: String,
    gw: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct IpamConf {
    #[serde(default)]
    addresses: Vec<AddressConf>,
    #[serde(default)]
    routes: Vec<RouteConf>,
    #[serde(default)]
    dns: Dns,
}

/// One address to report, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The address with its prefix length (host bits kept).
    pub address: IpNetwork,
    /// Its gateway, if any.
    pub gateway: Option<IpAddr>,
}

/// static's parsed, validated configuration.
#[derive(Debug)]
pub struct Parsed {
    /// The addresses, in the order they are reported.
    pub addresses: Vec<Address>,
    /// Routes to report.
    pub routes: Vec<RouteConfig>,
    /// DNS to report.
    pub dns: Dns,
}

/// An address in CIDR form; a bare IP is refused with the form it needs.
fn address(from: &str, s: &str) -> Result<IpNetwork, CniError> {
    let s = s.trim();
    if !s.contains('/') {
        if let Ok(ip) = s.parse::<IpAddr>() {
            let len = if ip.is_ipv4() { 24 } else { 64 };
            return Err(CniError::invalid(format!("static: {from} {s:?} has no prefix length: write it as a CIDR, e.g. {ip}/{len}")));
        }
    }
    s.parse::<IpNetwork>().map_err(|_| CniError::invalid(format!("static: {from} {s:?} is not a CIDR")))
}

fn gateway(from: &str, s: &str) -> Result<IpAddr, CniError> {
    s.trim().parse().map_err(|_| CniError::invalid(format!("static: invalid {from} {s:?}: not an IP address")))
}

/// The addresses a list of CIDR strings names (from `args.cni.ips` or `runtimeConfig.ips`).
fn listed(from: &str, v: &serde_json::Value) -> Result<Option<Vec<Address>>, CniError> {
    let Some(items) = v.as_array().filter(|a| !a.is_empty()) else { return Ok(None) };
    items
        .iter()
        .map(|i| {
            let s = i.as_str().ok_or_else(|| CniError::invalid(format!("static: {from} holds {i}, not a string")))?;
            Ok(Address { address: address(from, s)?, gateway: None })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Parses the `ipam` section with the reference's precedence (see the module doc).
pub fn parse(args: &Args, conf: &NetConf) -> Result<Parsed, CniError> {
    let raw = conf.get("ipam").ok_or_else(|| CniError::invalid("static: IPAM config missing 'ipam' key"))?;
    let c: IpamConf =
        crate::types::gojson::decode(raw.clone()).map_err(|e| CniError::invalid(format!("static: invalid ipam configuration: {e}")))?;
    let mut addresses = c
        .addresses
        .iter()
        .map(|a| {
            let gateway = a.gateway.as_deref().filter(|g| !g.is_empty()).map(|g| gateway("gateway", g)).transpose()?;
            Ok(Address { address: address("address", &a.address)?, gateway })
        })
        .collect::<Result<Vec<_>, CniError>>()?;
    for (k, v) in &args.args {
        if k == "IP" && !v.is_empty() {
            for s in v.split(',') {
                addresses.push(Address { address: address("CNI_ARGS IP", s)?, gateway: None });
            }
        }
    }
    for (k, v) in &args.args {
        if k == "GATEWAY" && !v.is_empty() {
            for s in v.split(',') {
                let gw = gateway("CNI_ARGS GATEWAY", s)?;
                for a in addresses.iter_mut().filter(|a| a.address.contains(gw)) {
                    a.gateway = Some(gw);
                }
            }
        }
    }
    if let Some(v) = conf.pointer("/args/cni/ips") {
        addresses = listed("args.cni.ips", v)?.unwrap_or(addresses);
    }
    if let Some(v) = conf.pointer("/runtimeConfig/ips") {
        addresses = listed("runtimeConfig.ips", v)?.unwrap_or(addresses);
    }
    let routes = c
        .routes
        .iter()
        .map(|r| {
            let dst = Some(&r.dst)
                .filter(|d| d.contains('/'))
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| CniError::invalid(format!("static: invalid route dst {:?}: not a CIDR", r.dst)))?;
            let gw = r.gw.as_deref().filter(|g| !g.is_empty()).map(|g| gateway("route gw", g)).transpose()?;
            Ok(RouteConfig { dst, gw })
        })
        .collect::<Result<_, CniError>>()?;
    Ok(Parsed { addresses, routes, dns: c.dns })
}

impl Plugin for Static {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let p = parse(args, conf)?;
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            ips: p.addresses.iter().map(|a| IpConfig { address: a.address, gateway: a.gateway, interface: None }).collect(),
            routes: p.routes,
            dns: p.dns,
            ..Default::default()
        })
    }

    /// Nothing was allocated: nothing to release, whatever the configuration says (as
    /// the reference's).
    fn del(&self, _args: &Args, _conf: &NetConf) -> Result<(), CniError> {
        Ok(())
    }

    /// Every configured address is in the previous result, with its gateway if one is set.
    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(args, conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("static: CHECK needs a prevResult"))?;
        for a in &p.addresses {
            if let Some(got) = prev.ips.iter().find(|i| i.address.ip() == a.address.ip()) {
                if a.gateway.is_some() && a.gateway != got.gateway {
                    return Err(CniError::new(
                        code::INTERNAL,
                        format!("static: Failed to match addr {} on interface {}", a.address.ip(), args.ifname),
                    ));
                }
            }
        }
        Ok(())
    }

    fn gc(&self, _args: &Args, _conf: &NetConf) -> Result<(), CniError> {
        Ok(())
    }
}
