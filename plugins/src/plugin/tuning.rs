//! tuning: changes the attachment's interface and network sysctls inside the container's
//! namespace, chained after an interface plugin; DEL restores the interface.

use std::collections::BTreeMap;
use std::path::PathBuf;

use netd::tuning::{self, Tuning};
use serde::Deserialize;

use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, NetConf};

/// The tuning plugin.
pub struct Tune;

#[derive(Debug, Deserialize, Default)]
struct MacArg {
    #[serde(default)]
    mac: String,
}

#[derive(Debug, Deserialize, Default)]
struct ArgsCni {
    #[serde(default)]
    cni: MacArg,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TuningConf {
    #[serde(default)]
    sysctl: BTreeMap<String, String>,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    mtu: i64,
    #[serde(default)]
    promisc: bool,
    allmulti: Option<bool>,
    #[serde(rename = "txQLen")]
    tx_q_len: Option<i64>,
    data_dir: Option<String>,
    #[serde(default)]
    runtime_config: MacArg,
    #[serde(default)]
    args: ArgsCni,
}

/// The validated change and where backups go. The MAC comes, last wins, from the config,
/// `args.cni.mac`, `runtimeConfig.mac` and `CNI_ARGS` `MAC=`.
fn parse(conf: &NetConf, args: &Args) -> Result<(Tuning, PathBuf), CniError> {
    let c: TuningConf = conf.plugin()?;
    let mut mac = c.mac.clone();
    for m in [&c.args.cni.mac, &c.runtime_config.mac] {
        if !m.is_empty() {
            mac = m.clone();
        }
    }
    if let Some((_, m)) = args.args.iter().find(|(k, _)| k == "MAC") {
        mac = m.clone();
    }
    let mtu = match c.mtu {
        0 => None,
        m if (68..=65535).contains(&m) => Some(m as u32),
        m => return Err(CniError::invalid(format!("tuning: mtu {m} out of range 68-65535"))),
    };
    let tx_queue_len = match c.tx_q_len {
        None => None,
        Some(q) if (0..=u32::MAX as i64).contains(&q) => Some(q as u32),
        Some(q) => return Err(CniError::invalid(format!("tuning: txQLen {q} out of range"))),
    };
    let t = Tuning {
        sysctls: c.sysctl,
        mac: if mac.is_empty() { None } else { Some(tuning::parse_mac(&mac)?) },
        mtu,
        promisc: c.promisc,
        allmulti: c.allmulti,
        tx_queue_len,
    };
    t.validate(&args.ifname)?;
    Ok((t, PathBuf::from(c.data_dir.unwrap_or_else(|| tuning::DEFAULT_DATA_DIR.into()))))
}

fn netns(args: &Args) -> Result<PathBuf, CniError> {
    args.netns.clone().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))
}

impl Plugin for Tune {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let (t, dir) = parse(conf, args)?;
        let mut prev =
            conf.prev_result.clone().ok_or_else(|| CniError::invalid("tuning: must be called as a chained plugin (no prevResult)"))?;
        let ns = netns(args)?;
        let mac = t.apply(&ns, &args.ifname, &dir, &args.container_id)?;
        if t.mac.is_some() {
            let sandbox = ns.to_string_lossy();
            for i in prev.interfaces.iter_mut().filter(|i| i.name == args.ifname && i.sandbox == sandbox) {
                i.mac = mac.clone();
            }
        }
        Ok(prev)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let (_, dir) = parse(conf, args)?;
        tuning::restore(args.netns.as_deref(), &args.ifname, &dir, &args.container_id)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let (t, _) = parse(conf, args)?;
        conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("tuning: must be called as a chained plugin (no prevResult)"))?;
        t.check(&netns(args)?, &args.ifname)?;
        Ok(())
    }

    /// Backups hold no resource (the namespace takes the interface with it) and are named
    /// per attachment, not per network, so there is nothing to collect.
    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        conf.plugin::<TuningConf>()?;
        Ok(())
    }
}
