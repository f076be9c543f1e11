//! Every kind of record berth keeps under its run directory (`/run/berth`), in one place:
//! where each lives, which of them describe firewall rules (what reconcile re-installs),
//! which `netd cleanup` removes, and the lock that keeps reconcile from reading records
//! while an attachment is between writing its record and installing its rules. The
//! runtime, the daemon and every plugin open records through here, so a new kind cannot
//! be missed by cleanup, reconcile or GC.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::state::StateDir;

/// A kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The endpoint registry: which network rule sets each attachment holds.
    Endpoints,
    /// What each attachment wired on the host (bridge, host veth), for link repair.
    Links,
    /// Endpoint names and aliases, for the resolver.
    Aliases,
    /// Ports published by the runtime and the daemon.
    EndpointPorts,
    /// Ports published by the CNI portmap plugin.
    CniPortmap,
    /// Host ports claimed, shared by both publishers.
    PortClaims,
    /// Interfaces a 127.0.0.1 mapping needs `route_localnet` on.
    RouteLocalnet,
    /// The CNI firewall plugin's rules per attachment.
    CniFirewall,
    /// ptp's `ipMasq` rules per attachment.
    CniMasq,
    /// bandwidth's ifb per attachment.
    CniBandwidth,
    /// The bridge's MAC spoof check per attachment.
    CniSpoofchk,
    /// Devices host-device moved into containers (kept by cleanup: they belong back on
    /// the host).
    HostDevice,
    /// Network rules as earlier versions recorded them (read, never written).
    LegacyEndpointNetwork,
    /// Network rules as earlier versions' bridge plugin recorded them.
    LegacyCniBridge,
}

impl Record {
    /// Every kind.
    pub const ALL: [Record; 14] = [
        Record::Endpoints,
        Record::Links,
        Record::Aliases,
        Record::EndpointPorts,
        Record::CniPortmap,
        Record::PortClaims,
        Record::RouteLocalnet,
        Record::CniFirewall,
        Record::CniMasq,
        Record::CniBandwidth,
        Record::CniSpoofchk,
        Record::HostDevice,
        Record::LegacyEndpointNetwork,
        Record::LegacyCniBridge,
    ];

    /// Records of network rule sets (`NetworkRules`), newest first.
    pub const NETWORK_RULES: [Record; 3] = [Record::Endpoints, Record::LegacyCniBridge, Record::LegacyEndpointNetwork];

    /// Records of port publications (`PortRules`).
    pub const PORT_RULES: [Record; 2] = [Record::CniPortmap, Record::EndpointPorts];

    /// Every kind whose records stand for firewall rules berth installed.
    pub const FIREWALL: [Record; 7] = [
        Record::Endpoints,
        Record::LegacyCniBridge,
        Record::LegacyEndpointNetwork,
        Record::CniPortmap,
        Record::EndpointPorts,
        Record::CniFirewall,
        Record::CniMasq,
    ];

    /// Its directory under the run directory.
    pub fn dir(self) -> &'static str {
        match self {
            Record::Endpoints => "endpoints",
            Record::Links => "endpoint-links",
            Record::Aliases => "endpoint-aliases",
            Record::EndpointPorts => "endpoint-ports",
            Record::CniPortmap => "cni-portmap",
            Record::PortClaims => "ports",
            Record::RouteLocalnet => "route-localnet",
            Record::CniFirewall => "cni-firewall",
            Record::CniMasq => "cni-masq",
            Record::CniBandwidth => "cni-bandwidth",
            Record::CniSpoofchk => "cni-spoofchk",
            Record::HostDevice => "host-device",
            Record::LegacyEndpointNetwork => "endpoint-network",
            Record::LegacyCniBridge => "cni-bridge",
        }
    }

    /// Its directory under `run`.
    pub fn path(self, run: &Path) -> PathBuf {
        run.join(self.dir())
    }

    /// Its records under `run` (the directory made private if missing).
    pub fn open(self, run: &Path) -> Result<StateDir> {
        StateDir::open(self.path(run))
    }

    /// Whether `netd cleanup` removes this kind: everything but the devices host-device
    /// must still move back.
    pub fn cleaned_up(self) -> bool {
        self != Record::HostDevice
    }
}

const CHANGING: &str = "records.lock";

/// Held (shared) while an attachment's records and rules change: by every attach and
/// detach of the runtime, the daemon and the plugins.
pub fn changing(run: &Path) -> Result<std::fs::File> {
    crate::state::lock_shared(&run.join(CHANGING))
}

/// Held (exclusive) by reconcile while it compares records with the firewall.
pub fn quiet(run: &Path) -> Result<std::fs::File> {
    crate::state::lock_file(&run.join(CHANGING))
}

/// Whether any record under `run` stands for installed firewall rules.
pub fn any_firewall(run: &Path) -> bool {
    Record::FIREWALL.iter().any(|r| StateDir::open(r.path(run)).map(|s| !s.keys().is_empty()).unwrap_or(false))
}

/// Removes every record kind `netd cleanup` removes; returns the directories removed.
pub fn remove_all(run: &Path) -> Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for r in Record::ALL.into_iter().filter(|r| r.cleaned_up()) {
        let p = r.path(run);
        match std::fs::remove_dir_all(&p) {
            Ok(()) => done.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::error::Error::io("remove records", &p, e)),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_directory_and_the_rule_lists_are_kinds() {
        let mut dirs: Vec<&str> = Record::ALL.iter().map(|r| r.dir()).collect();
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), Record::ALL.len());
        for r in Record::NETWORK_RULES.iter().chain(&Record::PORT_RULES) {
            assert!(Record::FIREWALL.contains(r), "{r:?}");
        }
    }
}
