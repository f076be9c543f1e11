//! The tap plugin over the engine's [`netd::network::tap`]: keys `mac` (runtimeConfig >
//! CNI_ARGS `MAC=` > config), `mtu`, `multiQueue`, `owner`, `group`, `bridge` (inside the
//! container's netns) and an optional `ipam`. `selinuxContext` is refused: berth does not
//! label the device.

use netd::network::tap::{self, Spec};
use serde::Deserialize;

use super::one_link::{self, ipam, netns};
use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, NetConf};

/// The tap plugin.
pub struct Tap;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TapConf {
    #[serde(default)]
    mac: String,
    mtu: Option<u32>,
    #[serde(default)]
    multi_queue: bool,
    owner: Option<u32>,
    group: Option<u32>,
    #[serde(default)]
    bridge: String,
    #[serde(default)]
    selinux_context: String,
    #[serde(default)]
    ipam: serde_json::Value,
}

struct Ctx {
    spec: Spec,
    ipam_type: Option<String>,
}

fn ctx(args: &Args, conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: TapConf = conf.plugin()?;
    if !c.selinux_context.is_empty() {
        return Err(CniError::new(code::UNSUPPORTED_FIELD, "tap: selinuxContext is not supported"));
    }
    let bridge = (!c.bridge.is_empty()).then_some(c.bridge.clone());
    if let Some(b) = &bridge {
        netd::name::Name::interface(b).map_err(|e| CniError::invalid(format!("tap: bridge: {e}")))?;
    }
    let mac = one_link::mac("tap", args, conf, &c.mac)?;
    if c.mtu.is_some_and(|m| !(68..=65521).contains(&m)) {
        return Err(CniError::invalid(format!("tap: mtu {}: from 68 to 65521", c.mtu.unwrap_or_default())));
    }
    let ipam_type = one_link::ipam_type(&c.ipam);
    Ok(Ctx { spec: Spec { mtu: c.mtu, mac, multi_queue: c.multi_queue, owner: c.owner, group: c.group, bridge }, ipam_type })
}

impl Plugin for Tap {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(args, conf)?;
        let ns = netns(args)?;
        let make = |cfg: Option<&_>| tap::attach(&c.spec, &ns, &args.ifname, cfg);
        one_link::add(args, conf, c.ipam_type.as_deref(), &ns, make, || one_link::unlink(&ns, &args.ifname))
    }

    /// The address is released, then the tap goes; a netns or tap already gone is fine.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::del(args, ctx(args, conf)?.ipam_type.as_deref())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::check("tap", "tun", args, ctx(args, conf)?.ipam_type.as_deref(), conf.prev_result.as_ref())
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
