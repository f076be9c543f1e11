//! What a container's processes use, read from its cgroup (v1 or v2): memory, CPU time,
//! tasks — for `stats`.

use std::path::{Path, PathBuf};

use super::{Cgroup, ROOT};

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of memory charged to the group.
    pub memory: u64,
    /// Its memory limit, if one is set.
    pub memory_limit: Option<u64>,
    /// CPU time of its processes, nanoseconds.
    pub cpu_ns: u64,
    /// Tasks in it.
    pub pids: u64,
}

fn num(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// A v1 limit of "no limit" is a huge number (PAGE_COUNTER_MAX pages): shown as none.
fn limit(v: Option<u64>) -> Option<u64> {
    v.filter(|l| *l < (1 << 62))
}

/// User plus system time of the group's processes from /proc, for a v1 host whose
/// cpuacct controller the group does not have.
fn cpu_from_proc(procs: &Path) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let pids = std::fs::read_to_string(procs).unwrap_or_default();
    let ticks: u64 = pids
        .lines()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok())
        .filter_map(|stat| {
            let after = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks * 1_000_000_000 / hz
}

impl Cgroup {
    fn v1_dir(dirs: &[PathBuf], ctrl: &str) -> Option<PathBuf> {
        dirs.iter().find(|d| d.starts_with(Path::new(ROOT).join(ctrl))).cloned()
    }

    /// Reads the group's usage now; what a file does not tell is 0.
    pub fn usage(&self) -> Usage {
        match self {
            Cgroup::V2(d) => {
                let cpu_us = std::fs::read_to_string(d.join("cpu.stat"))
                    .ok()
                    .and_then(|s| s.lines().find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok()))
                    .unwrap_or(0);
                let max = std::fs::read_to_string(d.join("memory.max")).ok().and_then(|s| s.trim().parse().ok());
                Usage {
                    memory: num(&d.join("memory.current")).unwrap_or(0),
                    memory_limit: max,
                    cpu_ns: cpu_us * 1000,
                    pids: num(&d.join("pids.current")).unwrap_or(0),
                }
            }
            Cgroup::V1(dirs) => {
                let mem = Self::v1_dir(dirs, "memory");
                let pids = Self::v1_dir(dirs, "pids");
                let cpu = Self::v1_dir(dirs, "cpu");
                let acct = cpu.as_ref().map(|c| c.join("cpuacct.usage")).filter(|p| p.is_file());
                let cpu_ns = match (acct, &pids) {
                    (Some(a), _) => num(&a).unwrap_or(0),
                    (None, Some(p)) => cpu_from_proc(&p.join("cgroup.procs")),
                    _ => 0,
                };
                Usage {
                    memory: mem.as_ref().and_then(|m| num(&m.join("memory.usage_in_bytes"))).unwrap_or(0),
                    memory_limit: limit(mem.as_ref().and_then(|m| num(&m.join("memory.limit_in_bytes")))),
                    cpu_ns,
                    pids: pids.as_ref().and_then(|p| num(&p.join("pids.current"))).unwrap_or(0),
                }
            }
        }
    }
}
