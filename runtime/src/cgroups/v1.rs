//! cgroup v1: one directory per controller (memory, pids, cpu, devices, freezer).

use std::path::{Path, PathBuf};

use super::devices::Devices;
use super::write;
use crate::container::Limits;
use crate::error::{Error, Result};

/// The controllers berth uses.
pub const CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "devices", "freezer"];

/// The directories [`create`] makes: `<root>/<ctrl>/<parent>/<id>` for every mounted
/// controller.
pub fn dirs(root: &Path, parent: &str, id: &str) -> Vec<PathBuf> {
    CONTROLLERS.iter().filter(|c| mounted(root, c)).map(|c| root.join(c).join(parent).join(id)).collect()
}

/// Whether controller `ctrl`'s hierarchy is mounted under `root`.
fn mounted(root: &Path, ctrl: &str) -> bool {
    root.join(ctrl).join("cgroup.procs").is_file()
}

/// Creates `<root>/<ctrl>/<parent>/<id>` for every mounted controller and writes limits.
pub fn create(root: &Path, parent: &str, id: &str, limits: &Limits, devices: Devices) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for ctrl in CONTROLLERS {
        if !mounted(root, ctrl) {
            let wanted = match *ctrl {
                "memory" => limits.memory.is_some(),
                "pids" => limits.pids.is_some(),
                "devices" => devices != Devices::All,
                "freezer" => false,
                _ => limits.cpus.is_some(),
            };
            if wanted {
                return Err(Error::NoController(ctrl.to_string()));
            }
            continue;
        }
        let dir = root.join(ctrl).join(parent).join(id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create cgroup", &dir, e))?;
        dirs.push(dir.clone());
        match *ctrl {
            "memory" => {
                if let Some(m) = limits.memory {
                    write(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
                    let swap = dir.join("memory.memsw.limit_in_bytes");
                    if swap.is_file() {
                        write(&swap, &m.to_string())?;
                    }
                }
            }
            "pids" => {
                if let Some(p) = limits.pids {
                    write(&dir.join("pids.max"), &if p > 0 { p.to_string() } else { "max".into() })?;
                }
            }
            "cpu" => {
                if let Some(c) = limits.cpus {
                    write(&dir.join("cpu.cfs_period_us"), "100000")?;
                    write(&dir.join("cpu.cfs_quota_us"), &((c * 100_000.0) as i64).to_string())?;
                }
            }
            "devices" => super::devices::apply_v1(&dir, devices)?,
            _ => {}
        }
    }
    Ok(dirs)
}
