//! Writes to `/proc/sys` in the calling thread's network namespace.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where host-wide changes are remembered so `netd cleanup` can undo them: the run root
/// (`BERTH_RUN_ROOT`, `/run/berth`).
pub fn state_root() -> PathBuf {
    std::env::var_os("BERTH_RUN_ROOT").map(PathBuf::from).unwrap_or_else(|| "/run/berth".into())
}

/// Host-wide keys (not an interface of berth's own, which goes with it) keep their value
/// before berth's first change in `<run>/sysctls/`.
fn remember(key: &str, before: &str) {
    let per_iface = key.contains("/conf/") && !key.contains("/conf/all/") && !key.contains("/conf/default/");
    if per_iface {
        return;
    }
    let file = state_root().join("sysctls").join(key.replace('/', "%"));
    if !file.exists() {
        let _ = crate::state::write_atomic(&file, before.trim().as_bytes());
    }
}

/// Restores every host-wide sysctl berth changed to its value before berth (`netd
/// cleanup`); returns the keys restored.
pub fn restore_all(run: &Path) -> Result<Vec<String>> {
    let dir = run.join("sysctls");
    let mut done = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let key = e.file_name().to_string_lossy().replace('%', "/");
        let before = std::fs::read_to_string(e.path()).map_err(|err| Error::io("read", e.path(), err))?;
        set(&key, before.trim())?;
        let _ = std::fs::remove_file(e.path());
        done.push(key);
    }
    Ok(done)
}

/// Sets a sysctl such as `net/ipv4/ip_forward`; skips the write if the value is already set.
pub fn set(key: &str, value: &str) -> Result<()> {
    if key.split('/').any(|p| p.is_empty() || p == "." || p == "..") || key.contains(char::is_control) {
        return Err(crate::Error::BadSysctl(key.to_string()));
    }
    let path = PathBuf::from("/proc/sys").join(key);
    if let Ok(cur) = std::fs::read_to_string(&path) {
        if cur.trim() == value {
            return Ok(());
        }
        remember(key, &cur);
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
