//! Writes to `/proc/sys` in the calling thread's network namespace.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Sets a sysctl such as `net/ipv4/ip_forward`; skips the write if the value is already set.
pub fn set(key: &str, value: &str) -> Result<()> {
    if key.split('/').any(|p| p.is_empty() || p == "." || p == "..") || key.contains(char::is_control) {
        return Err(crate::Error::InvalidConfig(format!("invalid sysctl key {key:?}")));
    }
    let path = PathBuf::from("/proc/sys").join(key);
    if let Ok(cur) = std::fs::read_to_string(&path) {
        if cur.trim() == value {
            return Ok(());
        }
    }
    std::fs::write(&path, value).map_err(|e| Error::io("write sysctl", path, e))
}

/// Disables IPv6 on an interface before it comes up, so it sends no DAD, MLD or RS
/// multicast that the bridge would flood to every port. A kernel without IPv6 is fine.
pub fn disable_ipv6(ifname: &str) -> Result<()> {
    let key = format!("net/ipv6/conf/{ifname}/disable_ipv6");
    if !PathBuf::from("/proc/sys").join(&key).exists() {
        return Ok(());
    }
    set(&key, "1")
}
