//! The dummy plugin over the engine's [`netd::network::dummy`]: an interface with the
//! addresses of its (optional) `ipam` and no wire. On a kernel without the dummy kind, ADD
//! fails with code 50 naming the kind, and the address is given back.

use netd::network::{bridge, dummy};
use serde::Deserialize;

use super::one_link::{self, ipam, netns};
use crate::skel::{Args, Plugin};
use crate::types::{CniError, CniResult, NetConf};

/// The dummy plugin.
pub struct Dummy;

#[derive(Debug, Deserialize, Default)]
struct DummyConf {
    #[serde(default)]
    ipam: serde_json::Value,
}

fn ipam_type(conf: &NetConf) -> Result<Option<String>, CniError> {
    conf.require_name()?;
    let c: DummyConf = conf.plugin()?;
    Ok(one_link::ipam_type(&c.ipam))
}

impl Plugin for Dummy {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let t = ipam_type(conf)?;
        let ns = netns(args)?;
        one_link::add(args, conf, t.as_deref(), &ns, |cfg| dummy::attach(&ns, &args.ifname, cfg))
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(ipam_type(conf)?.as_deref(), "DEL", args)?;
        bridge::detach(args.netns.as_deref(), &args.ifname)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(ipam_type(conf)?.as_deref(), "CHECK", args)?;
        let ns = netns(args)?;
        if bridge::inspect(&ns, &args.ifname)?.is_none_or(|f| f.link.kind.as_deref() != Some("dummy")) {
            return Err(CniError::new(crate::types::code::INTERNAL, format!("dummy: no dummy {} in {}", args.ifname, ns.path().display())));
        }
        Ok(())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(ipam_type(conf)?.as_deref(), "GC", args)?;
        Ok(())
    }
}
