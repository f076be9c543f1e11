//! The sbr plugin over the engine's [`netd::network::sbr`]: chained after the plugin
//! that made `CNI_IFNAME`, it routes each of the interface's addresses from the previous
//! result by source (per-address tables from 100 up, or the configured `table`). DEL
//! deletes the rules; it is fine when the interface or the netns is gone. CHECK finds a
//! rule per address (the reference's CHECK checks nothing).

use std::net::IpAddr;

use netd::network::sbr::{self, Source};
use serde::Deserialize;

use super::one_link::netns;
use crate::skel::{Args, Plugin};
use crate::types::{CniError, CniResult, NetConf};

/// The sbr plugin.
pub struct Sbr;

#[derive(Debug, Deserialize, Default)]
struct SbrConf {
    /// A table of the caller's: rules only, no routes moved.
    #[serde(default)]
    table: Option<u32>,
}

fn table(conf: &NetConf) -> Result<Option<u32>, CniError> {
    let c: SbrConf = conf.plugin()?;
    match c.table {
        Some(t) if t == 0 || (253..=255).contains(&t) => {
            Err(CniError::invalid(format!("sbr: table {t} is reserved (0 unspec, 253 default, 254 main, 255 local)")))
        }
        t => Ok(t),
    }
}

fn prev(conf: &NetConf) -> Result<&CniResult, CniError> {
    conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("sbr: must be called as a chained plugin (no prevResult)"))
}

/// The previous result's addresses on `ifname` (an address naming no interface counts,
/// as in the reference).
fn sources(prev: &CniResult, ifname: &str) -> Result<Vec<Source>, CniError> {
    if prev.ips.is_empty() {
        return Err(CniError::invalid(format!("sbr: no IP addresses supplied on interface {ifname}")));
    }
    Ok(prev
        .ips
        .iter()
        .filter(|ip| ip.interface.and_then(|i| prev.interfaces.get(i)).is_none_or(|i| i.name == ifname))
        .map(|ip| Source { addr: ip.address, gateway: ip.gateway.filter(|g: &IpAddr| g.is_ipv4() == ip.address.is_ipv4()) })
        .collect())
}

impl Plugin for Sbr {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let table = table(conf)?;
        let mut result = prev(conf)?.clone();
        let sources = sources(&result, &args.ifname)?;
        let ns = netns(args)?;
        ns.lock()?;
        let ifname = args.ifname.clone();
        ns.run(move || sbr::apply(&ifname, &sources, table))?;
        result.cni_version = conf.cni_version.clone();
        Ok(result)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let table = table(conf)?;
        let Ok(ns) = netns(args) else { return Ok(()) };
        ns.lock()?;
        let ifname = args.ifname.clone();
        ns.run(move || sbr::remove(&ifname, table))?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let table = table(conf)?;
        let sources = sources(prev(conf)?, &args.ifname)?;
        netns(args)?.run(move || sbr::check(&sources, table))?;
        Ok(())
    }

    /// Rules live in the container's netns and go with it: nothing to collect.
    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        table(conf).map(|_| ())
    }
}
