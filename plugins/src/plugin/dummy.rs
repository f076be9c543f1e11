//! The dummy plugin over the engine's [`netd::network::dummy`]: an interface with the
//! addresses of its (optional) `ipam` and no wire. On a kernel without the dummy kind, ADD
//! fails with code 50 naming the kind, and the address is given back.

use netd::network::dummy;
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
        one_link::add(args, conf, t.as_deref(), &ns, |cfg| dummy::attach(&ns, &args.ifname, cfg), || one_link::unlink(&ns, &args.ifname))
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::del(args, ipam_type(conf)?.as_deref())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        one_link::check("dummy", "dummy", args, ipam_type(conf)?.as_deref(), conf.prev_result.as_ref())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(ipam_type(conf)?.as_deref(), "GC", args)?;
        Ok(())
    }
}
