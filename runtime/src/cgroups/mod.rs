//! cgroups for `--memory`, `--cpus` and `--pids-limit`, v1 or v2 detected at run time
//! (a hybrid host, with v1 controllers and an empty unified tree, is driven as v1).

pub mod devices;
mod usage;
mod v1;

pub use usage::Usage;
mod v2;

use std::path::{Path, PathBuf};

use crate::container::Limits;
use crate::error::{Error, Result};

/// The cgroup(s) of one container.
#[derive(Debug, Clone)]
pub enum Cgroup {
    /// One directory per v1 controller.
    V1(Vec<PathBuf>),
    /// One directory in the unified hierarchy.
    V2(PathBuf),
}

const ROOT: &str = "/sys/fs/cgroup";

/// A frozen group; thawed on drop.
#[derive(Debug)]
pub struct Frozen<'a> {
    cgroup: &'a Cgroup,
    file: PathBuf,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let thawed = if matches!(self.cgroup, Cgroup::V1(_)) { "THAWED" } else { "0" };
        if let Err(e) = write(&self.file, thawed) {
            tracing::warn!(error = %e, "container not thawed");
        }
    }
}

/// The v1 controllers berth limits (and mounts inside containers).
pub const V1_CONTROLLERS: &[&str] = v1::CONTROLLERS;

/// The parent group under which containers are created (BERTH_CGROUP_PARENT, "berth").
fn parent() -> String {
    std::env::var("BERTH_CGROUP_PARENT").unwrap_or_else(|_| "berth".into())
}

/// Whether the host runs the unified (v2) hierarchy with controllers.
pub fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").is_file()
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::io("write cgroup file", path, e))
}

impl Cgroup {
    /// Creates the container's cgroup with its limits and device allowlist applied;
    /// on failure nothing is left.
    pub fn create(id: &str, limits: &Limits, devices: devices::Devices) -> Result<Self> {
        let res = if is_v2() {
            v2::create(&Path::new(ROOT).join(parent()), id, limits, devices).map(Cgroup::V2)
        } else {
            v1::create(Path::new(ROOT), &parent(), id, limits, devices).map(Cgroup::V1)
        };
        if res.is_err() {
            Cgroup::existing(id).remove();
        }
        res
    }

    /// The files through which a container's PID 1 moves itself into its group before it
    /// execs, on cgroup v1: a thread writing "0" to a hierarchy's `tasks` moves only
    /// itself and skips the global threadgroup lock, whose writer waits for an RCU grace
    /// period (4–25 ms a start here, where a thread of ours would wait for it once per
    /// hierarchy). Empty on v2, where [`Cgroup::add`] moves it (`cgroup.procs`).
    pub fn tasks_files(id: &str) -> Vec<PathBuf> {
        if is_v2() {
            return Vec::new();
        }
        v1::dirs(Path::new(ROOT), &parent(), id).into_iter().map(|d| d.join("tasks")).collect()
    }

    /// Whether the container's PID 1 joins this group by itself ([`Cgroup::tasks_files`]).
    pub fn joined_by_pid1(&self) -> bool {
        matches!(self, Cgroup::V1(_))
    }

    /// Moves `pid` into the group.
    pub fn add(&self, pid: i32) -> Result<()> {
        match self {
            Cgroup::V1(dirs) => dirs.iter().try_for_each(|d| write(&d.join("cgroup.procs"), &pid.to_string())),
            Cgroup::V2(d) => write(&d.join("cgroup.procs"), &pid.to_string()),
        }
    }

    /// Removes the group once its processes are gone; already gone is success.
    pub fn remove(&self) {
        let dirs: Vec<&PathBuf> = match self {
            Cgroup::V1(d) => d.iter().collect(),
            Cgroup::V2(d) => vec![d],
        };
        for d in dirs {
            for _ in 0..50 {
                match std::fs::remove_dir(d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(10)),
                    _ => break,
                }
            }
        }
    }

    /// Freezes (`pause`) or thaws (`unpause`) every process of the group and waits until
    /// the kernel says it is done.
    pub fn set_frozen(&self, on: bool) -> Result<()> {
        if on {
            std::mem::forget(self.freeze()?);
            return Ok(());
        }
        let (file, off) = match self {
            Cgroup::V1(dirs) => {
                let d = dirs
                    .iter()
                    .find(|d| d.starts_with(Path::new(ROOT).join("freezer")))
                    .ok_or_else(|| Error::NoController("freezer".into()))?;
                (d.join("freezer.state"), "THAWED")
            }
            Cgroup::V2(d) => (d.join("cgroup.freeze"), "0"),
        };
        write(&file, off)
    }

    /// Whether the group is frozen (paused).
    pub fn frozen(&self) -> bool {
        match self {
            Cgroup::V1(dirs) => dirs
                .iter()
                .find(|d| d.starts_with(Path::new(ROOT).join("freezer")))
                .and_then(|d| std::fs::read_to_string(d.join("freezer.state")).ok())
                .is_some_and(|s| s.trim() == "FROZEN"),
            Cgroup::V2(d) => std::fs::read_to_string(d.join("cgroup.events")).is_ok_and(|s| s.lines().any(|l| l.trim() == "frozen 1")),
        }
    }

    /// Freezes every process of the group (v1 `freezer.state`, v2 `cgroup.freeze`) until
    /// the guard returned is dropped, so that a walk of the container's files (commit)
    /// sees them still: Docker pauses a container the same way for `commit`.
    pub fn freeze(&self) -> Result<Frozen<'_>> {
        let (file, on, done): (PathBuf, &str, fn(&str) -> bool) = match self {
            Cgroup::V1(dirs) => {
                let d = dirs
                    .iter()
                    .find(|d| d.starts_with(Path::new(ROOT).join("freezer")))
                    .ok_or_else(|| Error::NoController("freezer".into()))?;
                (d.join("freezer.state"), "FROZEN", |s| s.trim() == "FROZEN")
            }
            Cgroup::V2(d) => (d.join("cgroup.freeze"), "1", |s| s.lines().any(|l| l.trim() == "frozen 1")),
        };
        let state = match self {
            Cgroup::V1(_) => file.clone(),
            Cgroup::V2(d) => d.join("cgroup.events"),
        };
        write(&file, on)?;
        let guard = Frozen { cgroup: self, file };
        for _ in 0..500 {
            if std::fs::read_to_string(&state).is_ok_and(|s| done(&s)) {
                return Ok(guard);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(Error::State(format!("the processes of {} did not freeze", state.display())))
    }

    /// The group a container would have, without creating it (for cleanup after a crash).
    pub fn existing(id: &str) -> Self {
        if is_v2() {
            Cgroup::V2(Path::new(ROOT).join(parent()).join(id))
        } else {
            Cgroup::V1(v1::CONTROLLERS.iter().map(|c| Path::new(ROOT).join(c).join(parent()).join(id)).collect())
        }
    }
}
