//! A container's terminal, made the way runc makes it: the process opens a pty in the
//! container's own devpts (so `tty` names `/dev/pts/0` and the follower belongs to the
//! container), makes it its controlling terminal and stdio, and sends the leader end
//! over a unix socket (the console socket) to whoever serves it — the monitor for PID 1,
//! netd for `exec -t`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Opens a pty under the current `/dev` (the container's, after pivot_root or chroot),
/// gives the follower to `owner`, makes it this process's controlling terminal and
/// stdin/out/err in a new session, and sends the leader over `socket`. Runs in the
/// container's process before exec: syscalls and small allocations only.
pub fn open_in_container(socket: RawFd, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let leader = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::unlockpt(&leader)?;
    let name = nix::pty::ptsname_r(&leader)?;
    let follower = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    let follower = unsafe { OwnedFd::from_raw_fd(follower) };
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(follower.as_raw_fd(), Some(uid.into()), Some(gid.into()))?;
    }
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY on a terminal descriptor we own; 0 steals nothing.
    if unsafe { libc::ioctl(follower.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for fd in 0..3 {
        nix::unistd::dup2(follower.as_raw_fd(), fd)?;
    }
    send(socket, leader.as_fd().as_raw_fd())
}

/// Sends descriptor `fd` over the unix socket `socket`.
pub fn send(socket: RawFd, fd: RawFd) -> std::io::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket, &[IoSlice::new(b"t")], &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives one descriptor sent with [`send`] on `socket`; `None` if the other end
/// closed without sending (it failed before its terminal was made).
pub fn receive(socket: RawFd) -> std::io::Result<Option<OwnedFd>> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut b = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut b)];
    let msg = loop {
        match recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r?,
        }
    };
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel installed this descriptor for us just now.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(*fd) }));
            }
        }
    }
    Ok(None)
}
