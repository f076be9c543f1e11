//! Child processes of the engine. Those that do the caller's work (iptables-restore,
//! delegated CNI plugins) die with the process that started them: otherwise a plugin
//! killed mid-operation leaves a child that finishes the work after the runtime's clean-up
//! DEL has already run. Those that only sit out the kernel's clean-up behind finished work
//! ([`detached`]) outlive it on purpose.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
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

/// Runs `body` in a detached grandchild that holds only the descriptors in `keep` (its
/// stdio on /dev/null), in a session of its own, SIGPIPE ignored: nobody waits for it or
/// reaps it, and a runtime reading the caller's stdout to its end is not held up by it.
/// For work whose result the caller already has but whose system call has not returned
/// (the kernel's clean-up after a deleted link or nf_tables object). Returns once the
/// intermediate child is reaped; if the grandchild cannot be forked, the intermediate runs
/// `body` itself and this waits for it.
///
/// # Safety
/// `body` runs between fork and `_exit` in a copy of a possibly multi-threaded process: it
/// must make only async-signal-safe calls (raw system calls) on memory that exists before
/// this call.
pub unsafe fn detached(keep: &[RawFd], body: impl FnOnce()) -> io::Result<()> {
    let devnull = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let null = devnull.as_raw_fd();
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let pid = libc::fork();
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        if libc::fork() > 0 {
            libc::_exit(0);
        }
        libc::setsid();
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        let mut first = 3;
        for &fd in &keep {
            close_range(first, fd - 1);
            first = first.max(fd + 1);
        }
        close_range(first, libc::c_int::MAX);
        body();
        libc::_exit(0);
    }
    let mut status = 0;
    // An error (a SIGCHLD handler reaped it already) is harmless.
    libc::waitpid(pid, &mut status, 0);
    Ok(())
}

/// Closes descriptors `first..=last`; nothing if the range is empty or the kernel is older
/// than close_range (the grandchild then holds a few descriptors longer).
unsafe fn close_range(first: RawFd, last: RawFd) {
    if first <= last {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0 as libc::c_uint);
    }
}
