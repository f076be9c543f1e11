//! The long-lived part of a detached container's monitor, kept small: once the container
//! runs, the monitor execs `berth __wait ROOT RUN ID PID OUT ERR LOG` (same PID, so PID 1
//! stays its child), which copies PID 1's stdout and stderr pipes (descriptors OUT, ERR)
//! into its log (LOG) and then waits; when PID 1 exits it records the exit and cleans up
//! (network, cgroup, `--rm`, the restart policy), as `berth __reap ... CODE` does.
//! `main` dispatches `__wait` before anything else runs: no argument parser, no logging,
//! no allocation-heavy start-up, so the pages it touches are few.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// The argument that selects the waiter.
pub const WAIT: &str = "__wait";

/// Replaces this process (the monitor, parent of `pid`) with the waiter, which copies
/// `output` (PID 1's stdout and stderr) into `log`. Returns only if the exec failed.
pub fn become_waiter(lib: &Path, run: &Path, id: &str, pid: Pid, output: &(OwnedFd, OwnedFd), log: &File) -> std::io::Error {
    let fds = [output.0.as_raw_fd(), output.1.as_raw_fd(), log.as_raw_fd()];
    for fd in fds {
        // Kept across the exec; the waiter owns them from then on.
        if let Err(e) = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())) {
            return e.into();
        }
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(WAIT).arg(lib).arg(run).arg(id).arg(pid.as_raw().to_string());
    cmd.args(fds.map(|f| f.to_string())).exec()
}

/// Unmaps from this process the resident pages of read-only file mappings that it never
/// wrote (the binary's and libraries' code and constants, which exec and fault-around
/// brought in): they stay in the page cache, shared, and the few the wait needs fault
/// back in. A sleeping waiter then holds about half the memory it did. smaps tells which
/// mappings have private copies (`Anonymous`, e.g. relocated read-only data): they stay.
fn release_clean_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    let mut regions: Vec<(usize, usize, bool)> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        match first.split_once('-').filter(|_| !first.ends_with(':')) {
            Some((a, b)) => {
                let perms = f.next().unwrap_or("");
                let inode = f.nth(2).unwrap_or("0");
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                    regions.push((a, b, inode != "0" && !perms.contains('w')));
                }
            }
            None if first == "Anonymous:" && f.next() != Some("0") => {
                if let Some(r) = regions.last_mut() {
                    r.2 = false;
                }
            }
            None => {}
        }
    }
    for (start, end, clean) in regions {
        if clean {
            // SAFETY: the range is a whole read-only, file-backed mapping with no private
            // page: dropping it loses nothing; the next access reads the file again.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
}

/// `berth __wait LIB RUN ID PID OUT ERR LOG`: logs PID 1's output until it is closed,
/// waits for `PID` and reaps the container with its exit code. Never returns.
pub fn wait_main(args: &[OsString]) -> ! {
    let [lib, run, id, pid, out, err, log] = args else { std::process::exit(125) };
    let num = |a: &OsString| std::str::from_utf8(a.as_bytes()).ok().and_then(|p| p.parse::<i32>().ok());
    let (Some(pid), Some(out), Some(err), Some(log)) = (num(pid), num(out), num(err), num(log)) else { std::process::exit(125) };
    release_clean_pages();
    // SAFETY: the monitor passed these descriptors for this process alone to own.
    let (out, err, log) = unsafe { (OwnedFd::from_raw_fd(out), OwnedFd::from_raw_fd(err), File::from(OwnedFd::from_raw_fd(log))) };
    crate::container::log::copy(out, err, &mut crate::container::log::Writer::new(log), &mut release_clean_pages);
    let code = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => break 125,
        }
    };
    // The reaper runs here: the code it needs faults in from the binary this process
    // maps already, where an exec of `berth __reap` (as waiters did) started the whole
    // program again, ~1.5 ms of every container's end before its network was released.
    netd::logging::init();
    let paths = crate::paths::Paths::new(lib.into(), run.into());
    let _ = paths.ensure();
    let reaped = match id.to_str() {
        Some(id) => crate::process::monitor::reap_exited(&paths, id, code),
        None => Err(crate::error::Error::State("the container ID is not UTF-8".into())),
    };
    match reaped {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The next `ps`, `rm` or netd's GC cleans up after a dead monitor.
            eprintln!("berth: cannot reap the container: {e}");
            std::process::exit(code)
        }
    }
}
