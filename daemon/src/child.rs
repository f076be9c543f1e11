//! Child processes of the engine (iptables-restore, delegated CNI plugins) die with the
//! process that started them. Otherwise a plugin killed mid-operation leaves a child that
//! finishes the work after the runtime's clean-up DEL has already run.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arranges for the command's process to get SIGKILL when its parent dies.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe; they run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may already be gone, before the death signal was armed.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        })
    }
}
