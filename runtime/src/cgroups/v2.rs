//! cgroup v2: one directory in the unified hierarchy.

use std::path::{Path, PathBuf};

use super::devices::Devices;
use super::write;
use crate::container::Limits;
use crate::error::{Error, Result};

/// Creates `<parent>/<id>` with memory, pids and cpu enabled and limits written.
pub fn create(parent: &Path, id: &str, limits: &Limits, devices: Devices) -> Result<PathBuf> {
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create cgroup", parent, e))?;
    for dir in [parent.parent().unwrap_or(parent), parent] {
        // Enabling may fail for controllers the kernel lacks; limits below then fail clearly.
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
    }
    // A limit whose controller this hierarchy cannot give a child is refused, by name,
    // before anything is made (v2 hierarchies can lack controllers bound to v1).
    let usable = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let wanted = [("memory", limits.memory.is_some()), ("pids", limits.pids.is_some()), ("cpu", limits.cpus.is_some())];
    if let Some((ctrl, _)) = wanted.iter().find(|(c, w)| *w && !usable.split_whitespace().any(|u| u == *c)) {
        return Err(Error::NoController(ctrl.to_string()));
    }
    let dir = parent.join(id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create cgroup", &dir, e))?;
    if let Some(m) = limits.memory {
        write(&dir.join("memory.max"), &m.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.is_file() {
            write(&swap, "0")?;
        }
    }
    if let Some(p) = limits.pids {
        write(&dir.join("pids.max"), &if p > 0 { p.to_string() } else { "max".into() })?;
    }
    if let Some(c) = limits.cpus {
        write(&dir.join("cpu.max"), &format!("{} 100000", (c * 100_000.0) as i64))?;
    }
    super::devices::apply_v2(&dir, devices)?;
    Ok(dir)
}
