//! The macvlan plugin over the engine's [`netd::network::child`]: keys `master`
//! (default: the interface of the default route), `mode`, `mtu`, `mac`, `linkInContainer`
//! and an optional `ipam` (without one the link is only brought up, as the reference's).
//! The MAC comes from `runtimeConfig.mac`, else CNI_ARGS `MAC=`, else `mac`.

use netd::network::child::{self, Spec};
use netd::network::macvlan::Mode;
use serde::Deserialize;

use super::one_link::{self, ipam, netns};
use crate::skel::{Args, Plugin};
use crate::types::{CniError, CniResult, NetConf};

/// The macvlan plugin.
pub struct Macvlan;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MacvlanConf {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    mac: String,
}

struct Ctx {
    spec: Spec,
    ipam_type: Option<String>,
}

fn ctx(args: &Args, conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: MacvlanConf = conf.plugin()?;
    let on: one_link::OnMaster = conf.plugin()?;
    let master = on.master("macvlan")?;
    let mode: Mode = c.mode.parse().map_err(|e| CniError::invalid(format!("macvlan: {e}")))?;
    let mac = one_link::mac("macvlan", args, conf, &c.mac)?;
    Ok(Ctx { spec: on.spec(master, mode.kind(), mac), ipam_type: one_link::ipam_type(&on.ipam) })
}

impl Plugin for Macvlan {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(args, conf)?;
        let ns = netns(args)?;
        let make = |cfg: Option<&_>| child::attach(&c.spec, &ns, &args.ifname, cfg);
        one_link::with_config_dns(
            conf,
            one_link::add(args, conf, c.ipam_type.as_deref(), &ns, make, || one_link::unlink(&ns, &args.ifname))?,
        )
    }

    /// The address is released, then the link goes; a netns or link already gone is fine.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::del(args, ctx(args, conf)?.ipam_type.as_deref())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("macvlan: CHECK requires prevResult"))?;
        one_link::check("macvlan", "macvlan", args, c.ipam_type.as_deref(), Some(prev))
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        ipam(c.ipam_type.as_deref(), "GC", args)?;
        Ok(())
    }

    fn status(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(args, conf)?;
        ipam(c.ipam_type.as_deref(), "STATUS", args)?;
        Ok(())
    }
}
