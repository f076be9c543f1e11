//! Driving the `berth` CLI as a user does.

use std::process::Command;

use super::plugin::bin_dir;

/// What one `berth` call returned.
#[derive(Debug)]
pub struct Out {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Out {
    /// Panics unless it succeeded; returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "berth failed ({}): {}{}", self.code, self.stdout, self.stderr);
        self.stdout
    }
}

/// Runs `berth ARGS` with the test host's default state roots.
pub fn berth(args: &[&str]) -> Out {
    berth_env(args, &[])
}

/// [`berth`] with `env` added to its environment.
pub fn berth_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = Command::new(bin_dir().join("berth")).args(args).envs(env.iter().copied()).output().expect("run berth");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Imports the busybox image (serving `page` from /www) as "busybox".
pub fn import_busybox(page: &str) {
    let tar = super::image::busybox_tar(page);
    berth(&["import", tar.to_str().unwrap(), "busybox"]).ok();
}

/// `berth inspect NAME` parsed.
pub fn inspect(name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&berth(&["inspect", name]).ok()).expect("inspect JSON");
    v[0].clone()
}

/// How many addresses berth's default `bridge` network has allocated (its host-local store).
pub fn bridge_allocations() -> usize {
    std::fs::read_dir("/var/lib/berth/ipam/bridge")
        .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("172.")).count())
        .unwrap_or(0)
}

/// The cgroup directories of container `id`, each with its hierarchy's root, found by
/// name under each mounted hierarchy (`/sys/fs/cgroup` itself on v2). It never walks the
/// host's tree: tests running in parallel remove groups from it while a walk reads it.
pub fn cgroup_dirs(id: &str) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        // Symlinks (cpu -> cpu,cpuacct) name a hierarchy already listed.
        hierarchies.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
    }
    hierarchies
        .into_iter()
        .map(|h| {
            let dir = h.join("berth").join(id);
            (h, dir)
        })
        .filter(|(_, dir)| dir.is_dir())
        .collect()
}
