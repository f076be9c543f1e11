//! The long-lived part of a detached container's monitor, kept small: once the container
//! runs, the monitor execs `berth __wait ROOT RUN ID PID` (same PID, so PID 1 stays its
//! child), which only waits; when PID 1 exits it execs `berth __reap ... CODE`, a
//! short-lived process that records the exit and cleans up (network, cgroup, `--rm`).
//! `main` dispatches `__wait` before anything else runs: no argument parser, no logging,
//! no allocation-heavy start-up, so the pages it touches are few.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// The argument that selects the waiter.
pub const WAIT: &str = "__wait";

/// Replaces this process (the monitor, parent of `pid`) with the waiter. Returns only
/// if the exec failed.
pub fn become_waiter(lib: &Path, run: &Path, id: &str, pid: Pid) -> std::io::Error {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    std::process::Command::new(exe).arg(WAIT).arg(lib).arg(run).arg(id).arg(pid.as_raw().to_string()).exec()
}

/// `berth __wait LIB RUN ID PID`: waits for `PID` and hands over to `__reap` with its exit
/// code. Never returns.
pub fn wait_main(args: &[OsString]) -> ! {
    let [lib, run, id, pid] = args else { std::process::exit(125) };
    let Some(pid) = std::str::from_utf8(pid.as_bytes()).ok().and_then(|p| p.parse::<i32>().ok()) else { std::process::exit(125) };
    let code = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => break 125,
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let err = std::process::Command::new(exe)
        .arg(OsStr::new("--root"))
        .arg(lib)
        .arg("--run-root")
        .arg(run)
        .arg("__reap")
        .arg(id)
        .arg(code.to_string())
        .exec();
    // The exec failed: the next `ps`, `rm` or netd's GC cleans up after a dead monitor.
    eprintln!("berth: cannot hand over to the reaper: {err}");
    std::process::exit(code)
}
