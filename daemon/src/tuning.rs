//! Tuning an attachment's interface inside the container's network namespace (the CNI
//! `tuning` plugin): network sysctls, MAC, MTU, promiscuous and all-multicast modes and the
//! transmit queue length. The interface's values before the change are kept in a backup
//! file so that DEL restores them; the file has the reference plugin's name and format, so
//! either implementation can undo what the other did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::netlink::{Link, Socket};
use crate::netns::NetNs;

/// Where the reference plugin (and so berth) keeps backups by default.
pub const DEFAULT_DATA_DIR: &str = "/run/cni/tuning";
/// The reference plugin's sysctl allowlist: when it exists, every key must match one of its
/// lines (regular expressions, unanchored, as Go's `regexp.MatchString`).
pub const ALLOWLIST: &str = "/etc/cni/tuning/allowlist.conf";
/// Overrides [`ALLOWLIST`] in debug (test) builds only: a release plugin reads the
/// administrator's file whatever its caller's environment says.
pub const ALLOWLIST_ENV: &str = "BERTH_TUNING_ALLOWLIST";

/// The allowlist in force: the administrator's file (or the test override, see
/// [`ALLOWLIST_ENV`]).
fn allowlist_path() -> PathBuf {
    #[cfg(debug_assertions)]
    if let Some(p) = std::env::var_os(ALLOWLIST_ENV) {
        return PathBuf::from(p);
    }
    PathBuf::from(ALLOWLIST)
}

/// What to change, validated: sysctl keys are paths below `/proc/sys/net`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Sysctls as written in the config (`net.core.somaxconn`, `IFNAME` placeholders) and
    /// their values.
    pub sysctls: BTreeMap<String, String>,
    /// New hardware address.
    pub mac: Option<[u8; 6]>,
    /// New MTU.
    pub mtu: Option<u32>,
    /// Turn promiscuous mode on (the reference only ever turns it on).
    pub promisc: bool,
    /// Set all-multicast mode.
    pub allmulti: Option<bool>,
    /// New transmit queue length.
    pub tx_queue_len: Option<u32>,
}

/// The reference plugin's backup file: only the attributes that were changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// MAC before.
    #[serde(rename = "mac", default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// MTU before.
    #[serde(rename = "mtu", default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    /// Promiscuous mode before.
    #[serde(rename = "promisc", default, skip_serializing_if = "Option::is_none")]
    pub promisc: Option<bool>,
    /// All-multicast mode before.
    #[serde(rename = "allmulti", default, skip_serializing_if = "Option::is_none")]
    pub allmulti: Option<bool>,
    /// Queue length before.
    #[serde(rename = "txQLen", default, skip_serializing_if = "Option::is_none")]
    pub tx_queue_len: Option<u32>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn bad(msg: String) -> Error {
    Error::BadTuning(msg)
}

/// Parses "aa:bb:cc:dd:ee:ff" (or with dashes); a multicast address is refused, as the
/// kernel would refuse it for an Ethernet device.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(bad(format!("invalid MAC address {s:?}")));
    }
    for (b, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(bad(format!("invalid MAC address {s:?}")));
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad(format!("invalid MAC address {s:?}")))?;
    }
    if mac[0] & 1 == 1 {
        return Err(bad(format!("MAC address {s:?} is a multicast address")));
    }
    Ok(mac)
}

/// The file below `/proc/sys` a key names for interface `ifname`: dots (or slashes)
/// separate components, `IFNAME` is the attachment's interface; only `net/...` is
/// allowed, since only that is per network namespace.
pub fn sysctl_path(key: &str, ifname: &str) -> Result<String> {
    if key.contains(char::is_control) || key.is_empty() {
        return Err(bad(format!("invalid sysctl key {key:?}")));
    }
    let parts: Vec<String> = key.split(['.', '/']).map(|p| if p == "IFNAME" { ifname.to_string() } else { p.to_string() }).collect();
    if parts.iter().any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(bad(format!("invalid sysctl key {key:?}")));
    }
    if parts[0] != "net" || parts.len() < 2 {
        return Err(bad(format!("invalid net sysctl key {key:?}: only net.* sysctls belong to the container's network namespace")));
    }
    Ok(parts.join("/"))
}

/// Checks every key against the allowlist file, if there is one.
pub fn check_allowlist(sysctls: &BTreeMap<String, String>) -> Result<()> {
    let path = allowlist_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let patterns: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let mut compiled = Vec::new();
    for p in &patterns {
        compiled.push(regex_lite::Regex::new(p).map_err(|e| bad(format!("{}: bad pattern {p:?}: {e}", path.display())))?);
    }
    for key in sysctls.keys() {
        if !compiled.iter().any(|r| r.is_match(key)) {
            return Err(bad(format!("sysctl {key} is not allowed by {}; allowed: {patterns:?}", path.display())));
        }
    }
    Ok(())
}

impl Tuning {
    /// Validates what is not checked at parse time: sysctl keys and values, the allowlist.
    pub fn validate(&self, ifname: &str) -> Result<()> {
        for (k, v) in &self.sysctls {
            sysctl_path(k, ifname)?;
            if v.contains(|c: char| c.is_control() && c != '\t') {
                return Err(bad(format!("sysctl {k}: value {v:?} has control characters")));
            }
        }
        if self.mtu == Some(0) {
            return Err(bad("mtu must be positive".into()));
        }
        check_allowlist(&self.sysctls)
    }

    /// Applies the change to `ifname` in `netns`, saving the attributes it changes in
    /// `data_dir/<id>_<ifname>.json` first (a repeated ADD keeps the first backup, so DEL
    /// still restores the values from before berth). Returns the interface's MAC after.
    pub fn apply(&self, netns: &Path, ifname: &str, data_dir: &Path, id: &str) -> Result<String> {
        self.validate(ifname)?;
        let ns = NetNs::open(netns)?;
        let file = backup_file(data_dir, id, ifname);
        ns.run(|| {
            for (k, v) in &self.sysctls {
                let path = Path::new("/proc/sys").join(sysctl_path(k, ifname)?);
                std::fs::write(&path, v).map_err(|e| Error::io("write sysctl", path, e))?;
            }
            let mut sock = Socket::open()?;
            let link = find(&mut sock, ifname, netns)?;
            let mut backup = Backup::default();
            if let Some(mac) = self.mac {
                backup.mac = link.mac.clone();
                sock.set_mac(link.index, &mac)?;
            }
            if let Some(mtu) = self.mtu {
                backup.mtu = link.mtu;
                sock.set_mtu(link.index, mtu)?;
            }
            if self.promisc {
                backup.promisc = Some(link.promisc);
                sock.set_promisc(link.index, true)?;
            }
            if let Some(on) = self.allmulti {
                backup.allmulti = Some(link.allmulti);
                sock.set_allmulti(link.index, on)?;
            }
            if let Some(q) = self.tx_queue_len {
                backup.tx_queue_len = Some(link.tx_queue_len);
                sock.set_tx_queue_len(link.index, q)?;
            }
            if backup != Backup::default() && !file.exists() {
                let json = serde_json::to_vec(&backup).map_err(|e| Error::io("encode", &file, e.into()))?;
                crate::state::write_atomic(&file, &json)?;
            }
            Ok(find(&mut sock, ifname, netns)?.mac)
        })
    }

    /// Fails with what differs if the interface does not have the tuned values.
    pub fn check(&self, netns: &Path, ifname: &str) -> Result<()> {
        self.validate(ifname)?;
        let ns = NetNs::open(netns)?;
        ns.run(|| {
            for (k, v) in &self.sysctls {
                let path = Path::new("/proc/sys").join(sysctl_path(k, ifname)?);
                let cur = std::fs::read_to_string(&path).map_err(|e| Error::io("read sysctl", &path, e))?;
                if cur.split_whitespace().ne(v.split_whitespace()) {
                    return Err(Error::Check(format!("sysctl {k} is {:?}, expected {v:?}", cur.trim())));
                }
            }
            let link = find(&mut Socket::open()?, ifname, netns)?;
            let differs = |what: &str, have: String, want: String| Error::Check(format!("{ifname}: {what} is {have}, expected {want}"));
            if let Some(mac) = self.mac {
                let want = crate::netlink::format_mac(&mac);
                if link.mac != want {
                    return Err(differs("mac", link.mac, want));
                }
            }
            if let Some(mtu) = self.mtu.filter(|m| *m != link.mtu) {
                return Err(differs("mtu", link.mtu.to_string(), mtu.to_string()));
            }
            if self.promisc && !link.promisc {
                return Err(differs("promisc", "off".into(), "on".into()));
            }
            if let Some(on) = self.allmulti.filter(|a| *a != link.allmulti) {
                return Err(differs("allmulti", link.allmulti.to_string(), on.to_string()));
            }
            if let Some(q) = self.tx_queue_len.filter(|q| *q != link.tx_queue_len) {
                return Err(differs("txqueuelen", link.tx_queue_len.to_string(), q.to_string()));
            }
            Ok(())
        })
    }
}

fn find(sock: &mut Socket, ifname: &str, netns: &Path) -> Result<Link> {
    sock.link_by_name(ifname)?.ok_or_else(|| Error::NoSuchInterface { ifname: ifname.into(), netns: netns.into() })
}

/// The backup file of one attachment, named as the reference plugin names it.
pub fn backup_file(data_dir: &Path, id: &str, ifname: &str) -> PathBuf {
    data_dir.join(format!("{id}_{ifname}.json"))
}

/// Restores what the backup of `id`/`ifname` saved, then removes it. Nothing to restore,
/// a namespace or an interface already gone: success (the netns took the values with it).
pub fn restore(netns: Option<&Path>, ifname: &str, data_dir: &Path, id: &str) -> Result<()> {
    let file = backup_file(data_dir, id, ifname);
    let Ok(text) = std::fs::read(&file) else { return Ok(()) };
    let backup: Backup = serde_json::from_slice(&text).unwrap_or_default();
    if let Some(ns) = netns.and_then(|p| NetNs::open(p).ok()) {
        ns.run(|| {
            let mut sock = Socket::open()?;
            let Some(link) = sock.link_by_name(ifname)? else { return Ok(()) };
            if !backup.mac.is_empty() {
                sock.set_mac(link.index, &parse_mac(&backup.mac)?)?;
            }
            if backup.mtu != 0 {
                sock.set_mtu(link.index, backup.mtu)?;
            }
            if let Some(on) = backup.promisc {
                sock.set_promisc(link.index, on)?;
            }
            if let Some(on) = backup.allmulti {
                sock.set_allmulti(link.index, on)?;
            }
            if let Some(q) = backup.tx_queue_len {
                sock.set_tx_queue_len(link.index, q)?;
            }
            Ok(())
        })?;
    }
    std::fs::remove_file(&file)
        .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(Error::io("remove", file, e)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_allowlist_only_in_debug_builds() {
        std::env::set_var(ALLOWLIST_ENV, "/elsewhere/allow.conf");
        let want = if cfg!(debug_assertions) { "/elsewhere/allow.conf" } else { ALLOWLIST };
        assert_eq!(allowlist_path(), PathBuf::from(want));
        std::env::remove_var(ALLOWLIST_ENV);
        assert_eq!(allowlist_path(), PathBuf::from(ALLOWLIST));
    }

    #[test]
    fn sysctl_keys_stay_below_net() {
        assert_eq!(sysctl_path("net.core.somaxconn", "eth0").unwrap(), "net/core/somaxconn");
        assert_eq!(sysctl_path("net.ipv4.conf.IFNAME.arp_filter", "eth0").unwrap(), "net/ipv4/conf/eth0/arp_filter");
        assert_eq!(sysctl_path("net/ipv4/ip_forward", "eth0").unwrap(), "net/ipv4/ip_forward");
        for bad in ["kernel.pid_max", "net..core", "net/../kernel/x", "net", "", "net.core.x\n", "vm.swappiness", "/net/core/x"] {
            assert!(sysctl_path(bad, "eth0").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn macs_parse_and_multicast_is_refused() {
        assert_eq!(parse_mac("c2:11:22:33:44:55").unwrap(), [0xc2, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("c2:11:22:33:44").is_err());
        assert!(parse_mac("c2:11:22:33:44:5g").is_err());
    }

    #[test]
    fn backup_matches_the_reference_format() {
        let b = Backup { mtu: 1500, promisc: Some(false), ..Default::default() };
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"mtu":1500,"promisc":false}"#);
    }
}
