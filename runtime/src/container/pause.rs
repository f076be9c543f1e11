//! `pause`/`unpause` (the cgroup freezer, as Docker's) and `stats` (the cgroup's usage and
//! the container's interfaces, in Docker's stats document).

use serde_json::{json, Value};

use super::{Container, Status};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::paths::Paths;

impl Container {
    fn running_cgroup(&self) -> Result<Cgroup> {
        if !self.alive() {
            return Err(Error::State(format!("container {} is not running", self.name)));
        }
        Ok(Cgroup::existing(&self.id))
    }

    /// Whether its processes are frozen.
    pub fn paused(&self) -> bool {
        self.state.status == Status::Running && self.alive() && Cgroup::existing(&self.id).frozen()
    }

    /// Freezes every process of the container.
    pub fn pause(&self) -> Result<()> {
        let cg = self.running_cgroup()?;
        if cg.frozen() {
            return Err(Error::State(format!("container {} is already paused", self.name)));
        }
        cg.set_frozen(true)
    }

    /// Thaws it.
    pub fn unpause(&self) -> Result<()> {
        let cg = self.running_cgroup()?;
        if !cg.frozen() {
            return Err(Error::State(format!("container {} is not paused", self.name)));
        }
        cg.set_frozen(false)
    }

    /// Thaws a paused container before it is signalled: a frozen process does not die.
    pub(crate) fn thaw_for_signal(&self) {
        let cg = Cgroup::existing(&self.id);
        if cg.frozen() {
            let _ = cg.set_frozen(false);
        }
    }

    /// One sample of Docker's stats document (`precpu_stats` is filled by the caller
    /// from the previous sample).
    pub fn stats(&self, _paths: &Paths) -> Result<Value> {
        let cg = self.running_cgroup()?;
        let u = cg.usage();
        let system = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let l = s.lines().next()?.to_string();
                Some(l.split_whitespace().skip(1).filter_map(|x| x.parse::<u64>().ok()).sum::<u64>())
            })
            .unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut networks = serde_json::Map::new();
        if let Some(pid) = self.state.pid {
            for l in std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default().lines().skip(2) {
                let Some((name, rest)) = l.split_once(':') else { continue };
                let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if name.trim() == "lo" || f.len() < 16 {
                    continue;
                }
                networks.insert(
                    name.trim().to_string(),
                    json!({"rx_bytes": f[0], "rx_packets": f[1], "rx_errors": f[2], "rx_dropped": f[3],
                           "tx_bytes": f[8], "tx_packets": f[9], "tx_errors": f[10], "tx_dropped": f[11]}),
                );
            }
        }
        // No limit: the host's memory, as Docker shows it.
        let mem_limit = u.memory_limit.unwrap_or_else(crate::info::mem_total);
        Ok(json!({
            "read": netd::clock::rfc3339(crate::clock::now()),
            "name": format!("/{}", self.name),
            "id": self.id,
            "pids_stats": {"current": u.pids},
            "cpu_stats": {
                "cpu_usage": {"total_usage": u.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "system_cpu_usage": system * 1_000_000_000 / hz,
                "online_cpus": cpus,
            },
            "memory_stats": {"usage": u.memory, "limit": mem_limit, "stats": {}},
            "networks": networks,
        }))
    }
}
