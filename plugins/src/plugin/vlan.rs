//! The vlan plugin over the engine's [`netd::network::child`]: keys `master` (required),
//! `vlanId` 0–4094, `mtu` (at most the master's), `linkInContainer`, and a required
//! `ipam`. One link per master and VID: a second ADD on the same VLAN is refused (code 18,
//! the address given back). On a kernel without 802.1Q, ADD fails with code 50 naming the
//! kind.

use netd::network::child::{self, Spec};
use serde::Deserialize;

use super::one_link::{self, ipam, netns};
use crate::skel::{Args, Plugin};
use crate::types::{CniError, CniResult, NetConf};

/// The vlan plugin.
pub struct Vlan;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VlanConf {
    #[serde(default)]
    vlan_id: i64,
}

struct Ctx {
    spec: Spec,
    ipam_type: String,
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: VlanConf = conf.plugin()?;
    let on: one_link::OnMaster = conf.plugin()?;
    let master = on.master("vlan")?.ok_or_else(|| CniError::invalid("vlan: \"master\" is required: the interface to make the VLAN on"))?;
    let kind = netd::network::vlan::kind(c.vlan_id).map_err(|e| CniError::invalid(format!("vlan: {e}")))?;
    let ipam_type = one_link::ipam_type(&on.ipam).ok_or_else(|| CniError::invalid("vlan: \"ipam\" with a \"type\" is required"))?;
    Ok(Ctx { spec: on.spec(Some(master), kind, None), ipam_type })
}

impl Plugin for Vlan {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let ns = netns(args)?;
        let make = |cfg: Option<&_>| child::attach(&c.spec, &ns, &args.ifname, cfg);
        one_link::with_config_dns(conf, one_link::add(args, conf, Some(&c.ipam_type), &ns, make, || one_link::unlink(&ns, &args.ifname))?)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::del(args, Some(&ctx(conf)?.ipam_type))
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("vlan: CHECK requires prevResult"))?;
        one_link::check("vlan", "vlan", args, Some(&c.ipam_type), Some(prev))
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(Some(&ctx(conf)?.ipam_type), "GC", args)?;
        Ok(())
    }

    fn status(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(Some(&ctx(conf)?.ipam_type), "STATUS", args)?;
        Ok(())
    }
}
