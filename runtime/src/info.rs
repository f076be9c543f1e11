//! The system's state as `berth info` prints it and `GET /info` answers it: counts of
//! containers, images and networks, the firewall backend, cgroups, storage.

use serde_json::{json, Value};

use crate::container::{self, Status};
use crate::error::Result;
use crate::paths::Paths;

/// The running kernel's release.
pub fn kernel() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().to_string()).unwrap_or_default()
}

/// The host's memory in bytes (MemTotal), 0 if /proc does not say.
pub fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The info document: Docker's keys, and berth's own (`Root`, `RunRoot`).
pub fn info(paths: &Paths) -> Result<Value> {
    let all = container::all(paths)?;
    let count = |s: Status| all.iter().filter(|c| c.effective_status() == s).count();
    let images = crate::image::list(paths)?.len();
    let nets = paths.networking();
    let networks = nets.networks()?.len();
    let backend = nets.firewall_backend(&paths.run).map(|b| b.to_string()).unwrap_or_else(|e| format!("unavailable: {e}"));
    let v2 = crate::cgroups::is_v2();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = mem_total();
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(json!({
        "ID": "berth",
        "Name": host,
        "Containers": all.len(),
        "ContainersRunning": count(Status::Running),
        "ContainersPaused": 0,
        "ContainersCreated": count(Status::Created),
        "ContainersStopped": count(Status::Exited),
        "Images": images,
        "Networks": networks,
        // Docker 28's shape: {"Driver": "iptables"}.
        "FirewallBackend": {"Driver": backend},
        "Driver": "overlay2",
        "StorageDriver": "overlay",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if v2 { "2" } else { "1" },
        "DockerRootDir": paths.lib.display().to_string(),
        "Root": paths.lib.display().to_string(),
        "RunRoot": paths.run.display().to_string(),
        "KernelVersion": kernel(),
        "Kernel": kernel(),
        "OperatingSystem": "berth",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": cpus,
        "MemTotal": mem,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Version": env!("CARGO_PKG_VERSION"),
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "ControlAvailable": false},
        "Runtimes": {"berth": {"path": "berth"}},
        "DefaultRuntime": "berth",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "macvlan", "ipvlan", "null"], "Log": ["json-file"]},
        "LoggingDriver": "json-file",
        "Debug": false,
        "Warnings": null,
    }))
}
