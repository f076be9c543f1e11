//! Starting netd on demand, as podman starts aardvark-dns: the first container on a user
//! network needs its resolver. A netd already serving the socket is used as it is.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::Paths;

/// The API socket under the run root.
pub fn socket(paths: &Paths) -> PathBuf {
    paths.run.join("netd.sock")
}

/// Whether a netd answers `_ping` on `sock`.
pub fn alive(sock: &Path) -> bool {
    netd::engine::client::Client::connect(sock).is_some_and(|c| c.ping(Duration::from_millis(500)))
}

/// The netd binary: beside this `berth`, else on PATH.
fn binary() -> PathBuf {
    std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("netd"))).filter(|p| p.is_file()).unwrap_or_else(|| "netd".into())
}

/// Makes sure netd serves; starts it detached if not. False (with a warning) when it
/// cannot be started: containers then get the host's resolvers.
pub fn ensure(paths: &Paths) -> bool {
    let sock = socket(paths);
    if alive(&sock) {
        return true;
    }
    let _lock = netd::state::lock_file(&paths.run.join("netd.start.lock"));
    if alive(&sock) {
        return true;
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(paths.run.join("netd.log"));
    let mut cmd = Command::new(binary());
    cmd.arg("--root").arg(&paths.lib).arg("--run-root").arg(&paths.run).arg("--socket").arg(&sock);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    if let Ok(f) = log {
        cmd.stderr(f);
    }
    // SAFETY: setsid is async-signal-safe; netd must outlive this process and its session.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    if let Err(e) = cmd.spawn() {
        eprintln!("WARNING: cannot start netd ({e}): container names will not resolve");
        return false;
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if alive(&sock) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("WARNING: netd did not start (see {}): container names will not resolve", paths.run.join("netd.log").display());
    false
}
