//! The host-device plugin over the engine's [`netd::network::host_device`]: keys
//! `device`, `hwaddr`, `kernelpath`, `pciBusID` (and runtimeConfig `deviceID`, a PCI
//! address), an optional `ipam`, and berth's `stateDir` (default `/run/berth`) where what
//! the device had on the host is recorded until DEL gives it back.

use std::path::PathBuf;

use netd::netns::NetNs;
use netd::network::host_device::{self, Which};
use serde::Deserialize;

use crate::exec::delegate;
use crate::plugin::macvlan::iface_config;
use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Interface, IpConfig, NetConf};

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

fn invalid(msg: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: HostDeviceConf = conf.plugin()?;
    if let Some(d) = nonempty(&c.device) {
        netd::name::Name::interface(&d).map_err(|e| invalid(format!("host-device: device: {e}")))?;
    }
    let hwaddr = nonempty(&c.hwaddr)
        .map(|m| netd::tuning::parse_mac(&m).map_err(|e| invalid(format!("host-device: hwaddr {m:?}: {e}"))))
        .transpose()?;
    let pci = conf.raw.pointer("/runtimeConfig/deviceID").and_then(|v| v.as_str()).and_then(nonempty).or(nonempty(&c.pci_bus_id));
    let which = Which { device: nonempty(&c.device), hwaddr, kernelpath: nonempty(&c.kernelpath), pci };
    let ipam_type = c.ipam.get("type").and_then(|t| t.as_str()).and_then(nonempty);
    Ok(Ctx { which, ipam_type, run: PathBuf::from(c.state_dir.unwrap_or_else(|| "/run/berth".into())) })
}

impl Plugin for HostDevice {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let ns = NetNs::open(args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?)?;
        let ipam = match &c.ipam_type {
            Some(t) => Some(delegate(t, "ADD", args)?.ok_or_else(|| CniError::new(code::INTERNAL, "IPAM returned no result"))?),
            None => None,
        };
        let cfg = ipam.as_ref().map(iface_config);
        let link = match host_device::attach(&c.run, &c.which, &ns, &args.container_id, &args.ifname, cfg.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                if let Some(t) = &c.ipam_type {
                    let _ = delegate(t, "DEL", args);
                }
                return Err(e.into());
            }
        };
        let mtu = (crate::types::version::at_least(&conf.cni_version, "1.1.0") && link.mtu > 0).then_some(link.mtu);
        let ipam = ipam.unwrap_or_default();
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            interfaces: vec![Interface { name: link.name.clone(), mac: link.mac.clone(), mtu, sandbox: ns.path().display().to_string() }],
            ips: ipam.ips.iter().map(|i| IpConfig { interface: Some(0), ..i.clone() }).collect(),
            routes: ipam.routes.clone(),
            dns: ipam.dns.clone(),
        })
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "DEL", args)?;
        }
        host_device::detach(&c.run, args.netns.as_deref(), &args.container_id, &args.ifname)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "CHECK", args)?;
        }
        let ns = NetNs::open(args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?)?;
        if netd::network::bridge::inspect(&ns, &args.ifname)?.is_none() {
            return Err(CniError::new(code::INTERNAL, format!("host-device: no {} in {}", args.ifname, ns.path().display())));
        }
        Ok(())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        if let Some(t) = &c.ipam_type {
            delegate(t, "GC", args)?;
        }
        Ok(())
    }
}
