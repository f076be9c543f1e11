//! The bandwidth plugin over the engine's [`netd::network::bandwidth`]: chained after an
//! interface plugin whose container interface is a veth with its peer on the host
//! (bridge, ptp). Limits from the top-level `ingressRate`/`ingressBurst`/`egressRate`/
//! `egressBurst` (bits per second, bits), else `runtimeConfig.bandwidth` (kubelet's
//! `kubernetes.io/ingress-bandwidth` annotations arrive there); no limit passes the
//! previous result through. The result is the previous one plus the ifb, if any.

use std::path::PathBuf;

use netd::netlink::Socket;
use netd::network::bandwidth::{self, Limit, Shaped};
use netd::state::file_key;
use serde::Deserialize;

use super::one_link::netns;
use crate::skel::{Args, Plugin};
use crate::types::{code, gojson, CniError, CniResult, Interface, NetConf};

/// The bandwidth plugin.
pub struct Bandwidth;

#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    ingress_rate: i64,
    #[serde(default)]
    ingress_burst: i64,
    #[serde(default)]
    egress_rate: i64,
    #[serde(default)]
    egress_burst: i64,
}

const KEYS: [&str; 4] = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"];

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Dirs {
    /// Where the ifb records live (berth's run directory).
    state_dir: Option<String>,
}

fn run_dir(conf: &NetConf) -> Result<PathBuf, CniError> {
    let d: Dirs = conf.plugin()?;
    Ok(PathBuf::from(d.state_dir.unwrap_or_else(|| "/run/berth".into())))
}

/// (ingress, egress) limits, the top-level entry first.
fn limits(conf: &NetConf) -> Result<(Option<Limit>, Option<Limit>), CniError> {
    let top = KEYS.iter().any(|k| conf.get(k).is_some());
    let entry: Entry = if top {
        conf.plugin()?
    } else {
        match conf.pointer("/runtimeConfig/bandwidth") {
            Some(v) => gojson::decode(v.clone()).map_err(|e| CniError::invalid(format!("bandwidth: runtimeConfig.bandwidth: {e}")))?,
            None => Entry::default(),
        }
    };
    let one = |r, b| Limit::new(r, b).map_err(|e| CniError::invalid(format!("bandwidth: {e}")));
    Ok((one(entry.ingress_rate, entry.ingress_burst)?, one(entry.egress_rate, entry.egress_burst)?))
}

fn prev(conf: &NetConf) -> Result<CniResult, CniError> {
    conf.prev_result.clone().ok_or_else(|| CniError::invalid("bandwidth: must be called as a chained plugin (no prevResult)"))
}

/// The host end of the container's veth: the previous result's host interface whose
/// index is the container interface's peer.
fn host_end(args: &Args, prev: &CniResult) -> Result<netd::netlink::Link, CniError> {
    let ns = netns(args)?;
    let peer = ns
        .run(|| Ok(Socket::open()?.link_by_name(&args.ifname)?))?
        .and_then(|l| l.peer)
        .ok_or_else(|| CniError::new(code::INVALID_CONFIG, format!("bandwidth: {} in the container is not a veth", args.ifname)))?;
    let mut sock = Socket::open().map_err(netd::Error::from)?;
    for i in prev.interfaces.iter().filter(|i| i.sandbox.is_empty()) {
        if let Some(l) =
            sock.link_by_name(&i.name).map_err(netd::Error::from)?.filter(|l| l.index == peer && l.kind.as_deref() == Some("veth"))
        {
            return Ok(l);
        }
    }
    Err(CniError::new(code::INVALID_CONFIG, "bandwidth: failed to find the host end of the container's veth in prevResult"))
}

impl Plugin for Bandwidth {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let name = conf.require_name()?.to_string();
        let (ingress, egress) = limits(conf)?;
        let mut result = prev(conf)?;
        result.cni_version = conf.cni_version.clone();
        if ingress.is_none() && egress.is_none() {
            return Ok(result);
        }
        let host = host_end(args, &result)?;
        let att = Shaped::new(&name, &args.container_id, &args.ifname);
        if let Some(ifb) = bandwidth::apply(&run_dir(conf)?, &host, ingress, egress, &att)? {
            let mtu = (crate::types::version::at_least(&conf.cni_version, "1.1.0") && ifb.mtu > 0).then_some(ifb.mtu);
            result.interfaces.push(Interface { name: ifb.name, mac: ifb.mac, mtu, sandbox: String::new() });
        }
        Ok(result)
    }

    /// The ifb goes with its record; a missing one (or a netns already gone) is fine.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let name = conf.require_name()?;
        bandwidth::detach(&run_dir(conf)?, &Shaped::new(name, &args.container_id, &args.ifname))?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let name = conf.require_name()?.to_string();
        let (ingress, egress) = limits(conf)?;
        let p = prev(conf)?;
        if ingress.is_none() && egress.is_none() {
            return Ok(());
        }
        let host = host_end(args, &p)?;
        bandwidth::check(&host, ingress, egress, &bandwidth::ifb_name(&name, &args.container_id))?;
        Ok(())
    }

    /// The ifbs of the network's attachments that are not valid any more go (an ADD
    /// whose runtime died before it could DEL).
    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let name = conf.require_name()?;
        let valid: Vec<String> = conf.valid_attachments.iter().flatten().map(|a| file_key(&[name, &a.container_id, &a.ifname])).collect();
        bandwidth::gc(&run_dir(conf)?, name, &valid)?;
        Ok(())
    }
}
