//! Sending one netlink request from a detached process, so that the caller can go on as
//! soon as the kernel has made the change while the sender sits out the kernel's clean-up
//! behind it (for a deleted link, an RCU barrier of 13–40 ms here).
//!
//! Works from any process, threaded (netd) or not (a plugin): between `fork` and `_exit`
//! the children make only async-signal-safe system calls on memory prepared before the
//! fork. A grandchild does the sending so that nobody waits for it or has to reap it; it
//! keeps no descriptor of the caller's but the socket and a pipe, so a runtime reading a
//! plugin's stdout to its end is not held up either.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A request on its way: `done` becomes readable when the sender has finished (one byte if
/// the request was sent, end-of-file alone if the sender died before sending it).
pub(super) struct Sender {
    pid: libc::pid_t,
    /// The read end of the sender's pipe.
    pub done: OwnedFd,
}

impl Sender {
    /// Forks the sender of `request` on the netlink socket `sock`.
    pub fn spawn(sock: RawFd, request: &[u8]) -> io::Result<Self> {
        let devnull = OpenOptions::new().read(true).write(true).open("/dev/null")?;
        let (done, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        // SAFETY: the child runs `send_detached`, which makes only async-signal-safe calls on
        // descriptors and a buffer that exist before the fork, and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe { send_detached(sock, request, devnull.as_raw_fd(), done_w.as_raw_fd()) }
        }
        Ok(Self { pid, done })
    }
}

impl Drop for Sender {
    /// Reaps the intermediate child, which exits at once (or, if it could not fork the
    /// grandchild, after sending the request itself).
    fn drop(&mut self) {
        // SAFETY: waits for our own child; an error (already reaped by a SIGCHLD handler) is harmless.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}

/// The children's side: fork once more and let the grandchild send.
///
/// # Safety
/// Only to be called in a child just forked; makes async-signal-safe calls only.
unsafe fn send_detached(sock: RawFd, request: &[u8], devnull: RawFd, done: RawFd) -> ! {
    // If this fork fails the child sends itself, and the caller's reap waits for it.
    if libc::fork() > 0 {
        libc::_exit(0);
    }
    libc::setsid();
    // The caller stops reading once it has its answer; the byte then has no reader.
    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    for fd in 0..3 {
        libc::dup2(devnull, fd);
    }
    let (low, high) = if sock < done { (sock, done) } else { (done, sock) };
    close_range(3, low - 1);
    close_range(low + 1, high - 1);
    close_range(high + 1, libc::c_int::MAX);
    if libc::send(sock, request.as_ptr().cast(), request.len(), 0) >= 0 {
        libc::write(done, b"s".as_ptr().cast(), 1);
    }
    libc::_exit(0)
}

/// Closes descriptors `first..=last`; nothing if the range is empty or the kernel is older
/// than close_range (the sender then only holds a few descriptors longer).
unsafe fn close_range(first: RawFd, last: RawFd) {
    if first <= last {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0 as libc::c_uint);
    }
}
