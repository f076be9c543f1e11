//! Where berth keeps state: `/var/lib/berth` (images, layers, containers, IPAM) and
//! `/run/berth` (firewall lock, port claims), both overridable for tests and users.

use std::path::PathBuf;

/// The state roots.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent state.
    pub lib: PathBuf,
    /// Runtime state.
    pub run: PathBuf,
    /// Networking always in this process: set by the daemon, which must not call its own
    /// socket.
    in_process: bool,
}

impl Paths {
    /// The roots given on the command line or in BERTH_ROOT / BERTH_RUN_ROOT.
    pub fn new(lib: PathBuf, run: PathBuf) -> Self {
        Self { lib, run, in_process: false }
    }

    /// The same roots with the engine always in this process (the daemon's view).
    pub fn in_process(self) -> Self {
        Self { in_process: true, ..self }
    }

    /// Creates the roots and tightens modes left by older versions: the state root 0710
    /// (root's group may traverse, others nothing), the run root 0711 (netd's socket is
    /// reached through it), and the directories holding image and volume content 0700 —
    /// a layer's setuid program or a volume's data is never reachable by another user
    /// through the store (Docker's CVE-2021-41091 class).
    pub fn ensure(&self) -> crate::error::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let private = ["containers", "layers", "volumes", "blobs", "images", "tmp", "build-cache"].map(|d| (self.lib.join(d), 0o700));
        for (dir, mode) in [(self.lib.clone(), 0o710), (self.run.clone(), 0o711)].into_iter().chain(private) {
            netd::state::private_dir(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).map_err(|e| crate::error::Error::io("chmod", &dir, e))?;
        }
        Ok(())
    }

    /// Compiled seccomp filters (rebuilt after a reboot empties the run root).
    pub fn seccomp_cache(&self) -> PathBuf {
        self.run.join("seccomp")
    }

    /// Image records.
    pub fn images(&self) -> PathBuf {
        self.lib.join("images")
    }

    /// Unpacked layers, one directory per digest.
    pub fn layers(&self) -> PathBuf {
        self.lib.join("layers")
    }

    /// Container directories.
    pub fn containers(&self) -> PathBuf {
        self.lib.join("containers")
    }

    /// One container's directory.
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    /// The one way the runtime reaches networking: netd's socket when a daemon serves
    /// it, else the engine in-process (networks as conflists in `<root>/networks`,
    /// addresses in `<root>/ipam`). The run root is the CNI plugins' default `stateDir`
    /// too, so host-port claims and the firewall lock are shared with them. The kernel
    /// state is the same either way.
    pub fn networking(&self) -> Box<dyn netd::engine::Networking> {
        if !self.in_process {
            if let Some(client) = netd::engine::client::Client::connect(&crate::daemon::socket(self)) {
                return Box::new(client);
            }
        }
        Box::new(netd::engine::Engine::new(self.lib.join("networks"), self.lib.join("ipam"), self.run.clone()))
    }
}
