//! A detached container's terminal (`-t`): its monitor holds the pty's leader end, copies
//! what the container writes into its log (which `logs` and attach follow), and lends the
//! leader over a socket in the container's directory to whoever attaches (stdin) or
//! resizes it.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use super::Container;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::process::monitor::{self, Started};

fn socket_path(paths: &Paths, id: &str) -> PathBuf {
    paths.container(id).join("tty.sock")
}

/// The monitor of a container with a terminal: logs the leader's output, lends the
/// leader on `tty.sock`, supervises PID 1; returns its exit code.
pub(crate) fn serve_and_supervise(paths: &Paths, c: &Container, mut started: Started) -> i32 {
    let Some(leader) = started.tty.take() else { return monitor::supervise(paths, c, started) };
    let log = paths.container(&c.id).join("container.log");
    if let (Ok(mut reader), Ok(mut out)) =
        (leader.try_clone().map(std::fs::File::from), std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&log))
    {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            // EIO once PID 1 and everything holding the follower end are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let sock = socket_path(paths, &c.id);
    let _ = std::fs::remove_file(&sock);
    if let Ok(listener) = UnixListener::bind(&sock) {
        let fd = leader.as_raw_fd();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let fds = [fd];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                let _ = sendmsg::<()>(conn.as_raw_fd(), &[IoSlice::new(b"t")], &cmsg, MsgFlags::empty(), None);
            }
        });
    }
    let code = monitor::supervise(paths, c, started);
    let _ = std::fs::remove_file(&sock);
    drop(leader);
    code
}

impl Container {
    /// The leader end of its terminal (a container started detached with `-t`), from its
    /// monitor: writes are its input, `resize` sets its size.
    pub fn tty(&self, paths: &Paths) -> Result<OwnedFd> {
        let sock = socket_path(paths, &self.id);
        let conn = UnixStream::connect(&sock).map_err(|e| Error::io("connect", &sock, e))?;
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut b = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut b)];
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| Error::sys("receive the terminal", e))?;
        for c in msg.cmsgs().map_err(|e| Error::sys("receive the terminal", e))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(fd) = fds.first() {
                    // SAFETY: the kernel installed this descriptor for us just now.
                    return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
                }
            }
        }
        Err(Error::State(format!("container {} has no terminal", self.name)))
    }
}

/// Sets a terminal's size.
pub fn resize(tty: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(Error::io("resize", "tty", std::io::Error::last_os_error()));
    }
    Ok(())
}
