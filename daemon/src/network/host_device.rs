//! host-device: a host interface moved into a container under the CNI interface name,
//! and moved back on DEL. The old name is kept in the interface's alias, as the reference
//! keeps it (so either implementation moves the other's back); unlike the reference
//! (its #754), the addresses and up state it had on the host are recorded before the
//! move and restored after it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::bridge::{bring_up_on, configure_container_on, IfaceConfig};
use crate::error::{Error, Result};
use crate::netlink::{format_mac, Link, Socket};
use crate::netns::NetNs;
use crate::state::{file_key, write_atomic};

/// How the device is named in the config (the first given wins, as the reference's order).
#[derive(Debug, Clone, Default)]
pub struct Which {
    /// `device`: its name.
    pub device: Option<String>,
    /// `hwaddr`: its MAC.
    pub hwaddr: Option<[u8; 6]>,
    /// `kernelpath`: its sysfs device path (`/sys/devices/...`).
    pub kernelpath: Option<String>,
    /// `pciBusID` or runtimeConfig `deviceID`: its PCI address.
    pub pci: Option<String>,
}

/// What the device had on the host, to give it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Saved {
    /// Its name on the host.
    pub name: String,
    /// Its addresses there.
    pub addrs: Vec<IpNetwork>,
    /// Whether it was up.
    pub up: bool,
}

fn not_found(what: &str, value: String) -> Error {
    Error::BadOption { key: what.into(), value, why: "no such host interface" }
}

/// The interface below a sysfs device directory (`<dir>/net/<name>`).
fn net_name_under(dir: &Path) -> Option<String> {
    std::fs::read_dir(dir.join("net")).ok()?.flatten().next().map(|e| e.file_name().to_string_lossy().into_owned())
}

/// Finds the device in the host netns.
fn find(sock: &mut Socket, which: &Which) -> Result<Link> {
    if let Some(name) = &which.device {
        return sock.link_by_name(name)?.ok_or_else(|| not_found("device", name.clone()));
    }
    if let Some(mac) = &which.hwaddr {
        let want = format_mac(mac);
        return sock.links()?.into_iter().find(|l| l.mac == want).ok_or_else(|| not_found("hwaddr", want));
    }
    let dir = match (&which.kernelpath, &which.pci) {
        (Some(k), _) => {
            let p = PathBuf::from(k);
            if !p.starts_with("/sys/devices") || k.contains("..") {
                return Err(Error::BadOption { key: "kernelpath".into(), value: k.clone(), why: "a path under /sys/devices" });
            }
            p
        }
        (None, Some(pci)) => {
            if pci.contains('/') || pci.contains("..") {
                return Err(Error::BadOption { key: "pciBusID".into(), value: pci.clone(), why: "a PCI address like 0000:00:1f.6" });
            }
            Path::new("/sys/bus/pci/devices").join(pci)
        }
        (None, None) => {
            return Err(Error::BadOption {
                key: "device".into(),
                value: String::new(),
                why: "one of device, hwaddr, kernelpath, pciBusID (or runtimeConfig deviceID) is required",
            })
        }
    };
    let name = net_name_under(&dir).ok_or_else(|| not_found("kernelpath/pciBusID", dir.display().to_string()))?;
    sock.link_by_name(&name)?.ok_or_else(|| not_found("device", name))
}

fn record(run: &Path, id: &str, ifname: &str) -> PathBuf {
    run.join("host-device").join(file_key(&[id, ifname]))
}

/// Moves the device into `netns` as `ifname`, configured with `cfg` (None: only up).
/// The record is written before the move, so a crash leaves what DEL needs.
pub fn attach(run: &Path, which: &Which, netns: &NetNs, id: &str, ifname: &str, cfg: Option<&IfaceConfig>) -> Result<Link> {
    let mut sock = Socket::open()?;
    let dev = find(&mut sock, which)?;
    let saved = Saved { name: dev.name.clone(), addrs: sock.addresses(dev.index)?, up: dev.up };
    let file = record(run, id, ifname);
    let bytes = serde_json::to_vec(&saved).map_err(|_| Error::Internal("host-device record not serialisable"))?;
    write_atomic(&file, &bytes)?;
    sock.set_down(dev.index)?;
    sock.set_alias(dev.index, &dev.name)?;
    sock.set_netns(dev.index, netns.fd())?;
    let result = netns.run(|| {
        let mut sock = Socket::open()?;
        if sock.link_by_name(ifname)?.is_some() && ifname != dev.name {
            return Err(Error::LinkExists(format!("{ifname} in {}", netns.path().display())));
        }
        let link = sock.link_by_name(&dev.name)?.ok_or_else(|| Error::LinkExists(dev.name.clone()))?;
        if ifname != dev.name {
            sock.rename(link.index, ifname)?;
        }
        match cfg {
            Some(cfg) => configure_container_on(&mut sock, ifname, cfg, false),
            None => bring_up_on(&mut sock, ifname),
        }
    });
    if result.is_err() {
        let _ = detach(run, Some(netns.path()), id, ifname);
        let _ = detach(run, Some(netns.path()), id, &dev.name);
    }
    result
}

/// Moves the device back to the host under its old name with what it had there. A netns
/// or device already gone is success (a physical device returns to the host by itself
/// when its netns goes).
pub fn detach(run: &Path, netns_path: Option<&Path>, id: &str, ifname: &str) -> Result<()> {
    let file = record(run, id, ifname);
    let saved: Option<Saved> = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let host = std::fs::File::open("/proc/self/ns/net").map_err(|e| Error::io("open", "/proc/self/ns/net", e))?;
    let netns = match netns_path.map(NetNs::open) {
        Some(Ok(ns)) => Some(ns),
        Some(Err(Error::Netns { .. })) | None => None,
        Some(Err(e)) => return Err(e),
    };
    let moved = match &netns {
        Some(ns) => ns.run(|| {
            let mut sock = Socket::open()?;
            let Some(link) = sock.link_by_name(ifname)? else { return Ok(None) };
            let name = saved.as_ref().map(|s| s.name.clone()).or(link.alias.clone()).unwrap_or_else(|| ifname.to_string());
            for a in sock.addresses(link.index)? {
                sock.del_address(link.index, a)?;
            }
            sock.set_down(link.index)?;
            if name != ifname {
                sock.rename(link.index, &name)?;
            }
            sock.set_netns(link.index, host.as_raw_fd())?;
            Ok(Some(name))
        })?,
        None => None,
    };
    if let (Some(name), Some(saved)) = (moved.or(saved.as_ref().map(|s| s.name.clone())), &saved) {
        let mut sock = Socket::open()?;
        if let Some(link) = sock.link_by_name(&name)? {
            let have = sock.addresses(link.index)?;
            for a in saved.addrs.iter().filter(|a| !have.contains(a)) {
                sock.add_address(link.index, *a)?;
            }
            if saved.up {
                sock.set_up(link.index)?;
            }
        }
    }
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", file, e)),
        _ => Ok(()),
    }
}
