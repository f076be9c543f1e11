//! A stock podman (CNI backend) confined to the test host: its configuration, storage and
//! CNI directories all under `/run/berth/podman`, with the plugin directory the caller
//! chooses (berth's only, or the reference plugins).

use std::path::{Path, PathBuf};

use super::{sh, try_sh};

/// One podman setup.
pub struct Podman {
    base: PathBuf,
}

/// Whether podman (and runc, which the setup names) are installed.
pub fn installed() -> bool {
    try_sh("command -v podman && command -v runc").0
}

impl Podman {
    /// Configures podman under `base` with CNI plugins from `plugins`, and imports the
    /// rootfs tarball `image` as `localhost/bb`.
    pub fn new(base: &Path, plugins: &Path, image: &Path) -> Self {
        std::fs::create_dir_all(base).expect("podman dir");
        std::fs::write(
            base.join("containers.conf"),
            format!(
                "[containers]\n# A restricted sandbox refuses podman's default rlimits.\n\
                 default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
                 [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\nnetwork_config_dir = \"{b}/net.d\"\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\ntmp_dir = \"{b}/tmp\"\n",
                plugins.display(),
                b = base.display()
            ),
        )
        .expect("containers.conf");
        std::fs::write(
            base.join("storage.conf"),
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{b}/root\"\nrunroot = \"{b}/runroot\"\n", b = base.display()),
        )
        .expect("storage.conf");
        let p = Self { base: base.to_path_buf() };
        let (ok, out) = p.run(&format!("import {} localhost/bb", image.display()));
        assert!(ok, "podman import: {out}");
        p
    }

    /// The shell command that runs `podman ARGS` with this setup.
    pub fn command(&self, args: &str) -> String {
        format!("CONTAINERS_CONF={b}/containers.conf CONTAINERS_STORAGE_CONF={b}/storage.conf podman {args}", b = self.base.display())
    }

    /// Runs `podman ARGS`: (success, output).
    pub fn run(&self, args: &str) -> (bool, String) {
        try_sh(&self.command(args))
    }

    /// Runs it, panicking on failure; returns the output.
    pub fn ok(&self, args: &str) -> String {
        sh(&self.command(args))
    }
}
