//! A `netd` daemon for a test: serving on the default socket, logging to
//! /run/berth/netd.log, killed when the handle is dropped.

use std::process::{Child, Command, Stdio};

use super::{bin_dir, try_sh, wait_for};

/// The daemon's API socket.
pub const SOCK: &str = "/run/berth/netd.sock";

/// netd serving on [`SOCK`], killed when dropped.
pub struct Netd(Child);

impl Netd {
    /// Starts netd logging at debug level (a failed test's log says what it did) and
    /// waits until its socket answers.
    pub fn start() -> Self {
        Self::start_logging("netd=debug,netd_server=debug")
    }

    /// For a benchmark: netd as installed, logging warnings only (its default).
    pub fn start_quiet() -> Self {
        Self::start_logging("warn")
    }

    /// Starts netd with RUST_LOG `filter` (BERTH_NETD_LOG overrides it).
    fn start_logging(filter: &str) -> Self {
        let log = std::fs::File::create("/run/berth/netd.log").expect("netd log");
        let c = Command::new(bin_dir().join("netd"))
            .args(["--socket", SOCK])
            .env("RUST_LOG", std::env::var("BERTH_NETD_LOG").unwrap_or_else(|_| filter.into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn netd");
        wait_for("netd's socket", || try_sh(&format!("curl -sf --unix-socket {SOCK} http://x/_ping")).0);
        Netd(c)
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Netd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
