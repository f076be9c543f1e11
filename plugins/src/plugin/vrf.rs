//! The vrf plugin over the engine's [`netd::network::vrf`]: chained after the plugin that
//! made `CNI_IFNAME`, it enslaves it to the VRF `vrfname` of the container's netns (made
//! with `table`, or the lowest free one, on first use; deleted with its last member).
//! CNI 0.3.1 and later, as the reference.

use netd::name::Name;
use netd::network::vrf;
use serde::Deserialize;

use super::one_link::netns;
use crate::skel::{Args, Plugin};
use crate::types::{CniError, CniResult, NetConf};

/// The vrf plugin.
pub struct Vrf;

#[derive(Debug, Deserialize, Default)]
struct VrfConf {
    #[serde(default)]
    vrfname: String,
    #[serde(default)]
    table: u32,
}

/// (VRF name, table if set), checked.
fn parse(conf: &NetConf) -> Result<(String, Option<u32>), CniError> {
    let c: VrfConf = conf.plugin()?;
    if c.vrfname.is_empty() {
        return Err(CniError::invalid("vrf: configuration is expected to have a valid vrf name (vrfname)"));
    }
    let name = Name::interface(&c.vrfname).map_err(|e| CniError::invalid(format!("vrf: vrfname: {e}")))?;
    if (253..=255).contains(&c.table) {
        return Err(CniError::invalid(format!("vrf: table {} is reserved (253 default, 254 main, 255 local)", c.table)));
    }
    Ok((name.as_str().to_string(), (c.table != 0).then_some(c.table)))
}

fn prev(conf: &NetConf) -> Result<&CniResult, CniError> {
    conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("vrf: missing prevResult from earlier plugin"))
}

impl Plugin for Vrf {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let (name, table) = parse(conf)?;
        let mut result = prev(conf)?.clone();
        let ns = netns(args)?;
        ns.lock()?;
        let ifname = args.ifname.clone();
        ns.run(move || vrf::attach(&ifname, &name, table))?;
        result.cni_version = conf.cni_version.clone();
        Ok(result)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let (name, _) = parse(conf)?;
        let Ok(ns) = netns(args) else { return Ok(()) };
        ns.lock()?;
        let ifname = args.ifname.clone();
        ns.run(move || vrf::detach(&ifname, &name))?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let (name, _) = parse(conf)?;
        prev(conf)?;
        let ifname = args.ifname.clone();
        netns(args)?.run(move || vrf::check(&ifname, &name))?;
        Ok(())
    }

    fn oldest(&self) -> &'static str {
        "0.3.1"
    }

    /// The VRF lives in the container's netns and goes with it: nothing to collect.
    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        parse(conf).map(|_| ())
    }
}
