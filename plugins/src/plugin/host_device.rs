//! The host-device plugin over the engine's [`netd::network::host_device`]: keys
//! `device`, `hwaddr`, `kernelpath`, `pciBusID` (and runtimeConfig `deviceID`, a PCI
//! address), an optional `ipam`, and berth's `stateDir` (default `/run/berth`) where what
//! the device had on the host is recorded until DEL gives it back.

use std::path::PathBuf;

use netd::network::host_device::{self, Which};
use serde::Deserialize;

use super::one_link::{self, ipam, netns};
use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, NetConf};

/// The host-device plugin.
pub struct HostDevice;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HostDeviceConf {
    #[serde(default)]
    device: String,
    #[serde(default)]
    hwaddr: String,
    #[serde(default)]
    kernelpath: String,
    #[serde(default, rename = "pciBusID")]
    pci_bus_id: String,
    #[serde(default)]
    ipam: serde_json::Value,
    state_dir: Option<String>,
}

struct Ctx {
    which: Which,
    ipam_type: Option<String>,
    run: PathBuf,
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: HostDeviceConf = conf.plugin()?;
    if let Some(d) = nonempty(&c.device) {
        netd::name::Name::interface(&d).map_err(|e| CniError::invalid(format!("host-device: device: {e}")))?;
    }
    let hwaddr = nonempty(&c.hwaddr)
        .map(|m| netd::tuning::parse_mac(&m).map_err(|e| CniError::invalid(format!("host-device: hwaddr {m:?}: {e}"))))
        .transpose()?;
    let pci = conf.pointer("/runtimeConfig/deviceID").and_then(|v| v.as_str()).and_then(nonempty).or(nonempty(&c.pci_bus_id));
    let which = Which { device: nonempty(&c.device), hwaddr, kernelpath: nonempty(&c.kernelpath), pci };
    let ipam_type = one_link::ipam_type(&c.ipam);
    Ok(Ctx { which, ipam_type, run: PathBuf::from(c.state_dir.unwrap_or_else(|| "/run/berth".into())) })
}

impl Plugin for HostDevice {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let ns = netns(args)?;
        let make = |cfg: Option<&_>| host_device::attach(&c.run, &c.which, &ns, &args.container_id, &args.ifname, cfg);
        let unmake = || {
            let _ = host_device::detach(&c.run, Some(ns.path()), &args.container_id, &args.ifname);
        };
        one_link::add(args, conf, c.ipam_type.as_deref(), &ns, make, unmake)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        ipam(c.ipam_type.as_deref(), "DEL", args)?;
        host_device::detach(&c.run, args.netns.as_deref(), &args.container_id, &args.ifname)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        ipam(c.ipam_type.as_deref(), "CHECK", args)?;
        let ns = netns(args)?;
        if netd::network::bridge::inspect(&ns, &args.ifname)?.is_none() {
            return Err(CniError::new(code::INTERNAL, format!("host-device: no {} in {}", args.ifname, ns.path().display())));
        }
        Ok(())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        ipam(c.ipam_type.as_deref(), "GC", args)?;
        Ok(())
    }
}
