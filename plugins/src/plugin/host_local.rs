//! host-local IPAM: allocations from `ranges` in the reference plugin's on-disk layout.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use netd::ipam::{self, Range, RangeSet, Store};
use serde::Deserialize;

use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Dns, IpConfig, NetConf, RouteConfig};

/// The host-local plugin.
pub struct HostLocal;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RangeConf {
    subnet: String,
    range_start: Option<String>,
    range_end: Option<String>,
    gateway: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RouteConf {
    dst: String,
    gw: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IpamConf {
    #[serde(default)]
    ranges: Vec<Vec<RangeConf>>,
    subnet: Option<String>,
    range_start: Option<String>,
    range_end: Option<String>,
    gateway: Option<String>,
    #[serde(default)]
    routes: Vec<RouteConf>,
    data_dir: Option<String>,
}

/// host-local's parsed, validated configuration.
#[derive(Debug)]
pub struct Parsed {
    /// The range sets, one address allocated from each.
    pub sets: Vec<RangeSet>,
    /// Routes to report.
    pub routes: Vec<RouteConfig>,
    /// The store of this network.
    pub store: Store,
}

/// Parses a CIDR, refusing junk with a code-7 error that names the field.
pub fn cidr(field: &str, s: &str) -> Result<IpNetwork, CniError> {
    s.parse::<IpNetwork>().map_err(|_| CniError::invalid(format!("invalid {field} {s:?}: not a CIDR")))
}

fn ip(field: &str, s: &Option<String>) -> Result<Option<IpAddr>, CniError> {
    s.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<IpAddr>().map_err(|_| CniError::invalid(format!("invalid {field} {s:?}: not an IP address"))))
        .transpose()
}

fn range(r: &RangeConf) -> Result<Range, CniError> {
    let subnet = cidr("subnet", &r.subnet)?;
    Ok(Range::new(subnet, ip("rangeStart", &r.range_start)?, ip("rangeEnd", &r.range_end)?, ip("gateway", &r.gateway)?)?)
}

/// Parses the `ipam` section; nothing on disk is touched except creating the store dir.
pub fn parse(conf: &NetConf) -> Result<Parsed, CniError> {
    let name = conf.require_name()?;
    let ipam = conf.get("ipam").cloned().unwrap_or_default();
    let c: IpamConf = crate::types::gojson::decode(ipam).map_err(|e| CniError::invalid(format!("invalid ipam configuration: {e}")))?;
    let mut sets = Vec::new();
    if let Some(subnet) = &c.subnet {
        let legacy = RangeConf {
            subnet: subnet.clone(),
            range_start: c.range_start.clone(),
            range_end: c.range_end.clone(),
            gateway: c.gateway.clone(),
        };
        sets.push(RangeSet::new(vec![range(&legacy)?])?);
    }
    for set in &c.ranges {
        sets.push(RangeSet::new(set.iter().map(range).collect::<Result<_, _>>()?)?);
    }
    if sets.is_empty() {
        return Err(CniError::invalid("ipam has no ranges and no subnet"));
    }
    for (i, a) in sets.iter().enumerate() {
        if sets[i + 1..].iter().any(|b| a.overlaps(b)) {
            return Err(CniError::invalid("ipam range sets overlap"));
        }
    }
    let routes = c
        .routes
        .iter()
        .map(|r| Ok(RouteConfig { dst: cidr("route dst", &r.dst)?, gw: ip("route gw", &r.gw)? }))
        .collect::<Result<_, CniError>>()?;
    let dir = PathBuf::from(c.data_dir.unwrap_or_else(|| "/var/lib/cni/networks".into()));
    let store = Store::open(&dir, name)?;
    Ok(Parsed { sets, routes, store })
}

/// Addresses asked for by CNI_ARGS `IP=` or `runtimeConfig.ips`.
fn requested(args: &Args, conf: &NetConf) -> Result<Vec<IpAddr>, CniError> {
    let mut out = Vec::new();
    for (k, v) in &args.args {
        if k == "IP" {
            for s in v.split(',') {
                out.push(s.parse().map_err(|_| CniError::invalid(format!("invalid CNI_ARGS IP {s:?}")))?);
            }
        }
    }
    if let Some(ips) = conf.pointer("/runtimeConfig/ips").and_then(|v| v.as_array()) {
        for v in ips {
            let s = v.as_str().unwrap_or_default();
            let ip = s.split('/').next().unwrap_or_default();
            out.push(ip.parse().map_err(|_| CniError::invalid(format!("invalid runtimeConfig ip {s:?}")))?);
        }
    }
    Ok(out)
}

impl Plugin for HostLocal {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let p = parse(conf)?;
        let allocs = ipam::allocate(&p.store, &p.sets, &args.container_id, &args.ifname, &requested(args, conf)?)?;
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            ips: allocs.iter().map(|a| IpConfig { address: a.address, gateway: a.gateway, interface: None }).collect(),
            routes: p.routes,
            dns: Dns::default(),
            ..Default::default()
        })
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(conf)?;
        let hints: Vec<IpAddr> = conf.prev_result.iter().flat_map(|r| r.ips.iter().map(|i| i.address.ip())).collect();
        ipam::release(&p.store, &args.container_id, &args.ifname, &hints)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(conf)?;
        let held = ipam::find(&p.store, &args.container_id, &args.ifname)?;
        if held.is_empty() {
            return Err(CniError::new(
                code::UNKNOWN_CONTAINER,
                format!("host-local: no address allocated to container {} ifname {}", args.container_id, args.ifname),
            ));
        }
        if let Some(prev) = &conf.prev_result {
            for ipc in &prev.ips {
                let ip = ipc.address.ip();
                if p.sets.iter().any(|s| s.range_for(ip).is_some()) && !held.contains(&ip) {
                    return Err(CniError::new(
                        code::INTERNAL,
                        format!("host-local: {ip} is not allocated to container {}", args.container_id),
                    ));
                }
            }
        }
        Ok(())
    }

    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(conf)?;
        let valid: HashSet<(String, String)> =
            conf.valid_attachments.iter().flatten().map(|a| (a.container_id.clone(), a.ifname.clone())).collect();
        let freed = ipam::gc(&p.store, &valid)?;
        tracing::info!(count = freed.len(), "host-local gc released addresses");
        Ok(())
    }

    fn status(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(conf)?;
        let probe = p.store.dir().join(".status-probe");
        std::fs::write(&probe, b"").map_err(|e| {
            CniError::new(code::NOT_AVAILABLE, format!("host-local: data directory {} is not writable: {e}", p.store.dir().display()))
        })?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}
