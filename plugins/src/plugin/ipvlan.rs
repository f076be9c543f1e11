//! The ipvlan plugin over the engine's [`netd::network::child`]: keys `master` (default:
//! the interface of the default route — or, chained without `ipam`, the previous result's
//! single interface), `mode` l2|l3|l3s, `mtu`, `linkInContainer`. Without `ipam` the
//! addresses come from `prevResult`, as the reference's. ipvlan links wear their master's
//! MAC, so there is no `mac` key. On a kernel without ipvlan, ADD fails with code 50
//! naming the kind, and the address is given back.

use netd::network::child::{self, Spec};
use netd::network::ipvlan::{self, Flag, Mode};
use serde::Deserialize;

use super::one_link::{self, ipam, netns};
use crate::skel::{Args, Plugin};
use crate::types::{CniError, CniResult, NetConf};

/// The ipvlan plugin.
pub struct Ipvlan;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IpvlanConf {
    #[serde(default)]
    mode: String,
}

struct Ctx {
    spec: Spec,
    ipam_type: Option<String>,
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: IpvlanConf = conf.plugin()?;
    let on: one_link::OnMaster = conf.plugin()?;
    let ipam_type = one_link::ipam_type(&on.ipam);
    let mut master = on.master("ipvlan")?;
    if master.is_none() && ipam_type.is_none() {
        // Chained: the master is the previous plugin's one interface.
        if let Some(prev) = &conf.prev_result {
            match prev.interfaces.as_slice() {
                [one] if !one.name.is_empty() => master = Some(one.name.clone()),
                _ => return Err(CniError::invalid("ipvlan: chained master failure: prevResult lacks a single named interface")),
            }
        }
    }
    if let Some(m) = &master {
        netd::name::Name::interface(m).map_err(|e| CniError::invalid(format!("ipvlan: master: {e}")))?;
    }
    let mode: Mode = c.mode.parse().map_err(|e| CniError::invalid(format!("ipvlan: {e}")))?;
    let kind = ipvlan::kind(mode, Flag::Bridge);
    Ok(Ctx { spec: on.spec(master, kind, None), ipam_type })
}

impl Plugin for Ipvlan {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let ns = netns(args)?;
        let make = |cfg: Option<&_>| child::attach(&c.spec, &ns, &args.ifname, cfg);
        let r = match (&c.ipam_type, &conf.prev_result) {
            (None, Some(prev)) if !prev.ips.is_empty() => one_link::add_chained(conf, prev.clone(), &ns, make)?,
            (None, _) => return Err(CniError::invalid("ipvlan: IPAM config missing ipam key (and no prevResult with addresses)")),
            (Some(t), _) => one_link::add(args, conf, Some(t), &ns, make, || one_link::unlink(&ns, &args.ifname))?,
        };
        one_link::with_config_dns(conf, r)
    }

    /// The address is released (when an IPAM plugin gave it), then the link goes.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::del(args, ctx(conf)?.ipam_type.as_deref())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("ipvlan: CHECK requires prevResult"))?;
        one_link::check("ipvlan", "ipvlan", args, c.ipam_type.as_deref(), Some(prev))
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(ctx(conf)?.ipam_type.as_deref(), "GC", args)?;
        Ok(())
    }

    fn status(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(ctx(conf)?.ipam_type.as_deref(), "STATUS", args)?;
        Ok(())
    }
}
