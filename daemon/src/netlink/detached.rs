//! Sending one netlink request from a detached process ([`crate::child::detached`]), so
//! that the caller can go on as soon as the kernel has made the change while the sender
//! sits out the kernel's clean-up behind it (for a deleted link, an RCU barrier of
//! 13–40 ms here).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A request on its way: `done` becomes readable when the sender has finished (one byte if
/// the request was sent, end-of-file alone if the sender died before sending it).
pub(super) struct Sender {
    /// The read end of the sender's pipe.
    pub done: OwnedFd,
}

impl Sender {
    /// Starts the sender of `request` on the netlink socket `sock`.
    pub fn spawn(sock: RawFd, request: &[u8]) -> io::Result<Self> {
        let (done, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let w = done_w.as_raw_fd();
        // SAFETY: the body makes only raw system calls (send, write) on the socket, the
        // pipe and `request`, all made before the fork.
        unsafe {
            crate::child::detached(&[sock, w], || {
                if libc::send(sock, request.as_ptr().cast(), request.len(), 0) >= 0 {
                    libc::write(w, b"s".as_ptr().cast(), 1);
                }
            })?;
        }
        Ok(Self { done })
    }
}
