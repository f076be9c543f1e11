//! A detached container's terminal (`-t`): its monitor holds the pty's leader end, copies
//! what the container writes into its log (which `logs` and attach follow), and lends the
//! leader over a socket in the container's directory to whoever attaches (stdin) or
//! resizes it.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use super::log::{Stream, Writer};
use super::Container;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::process::console;
use crate::process::monitor::{self, Started};

fn socket_path(paths: &Paths, id: &str) -> PathBuf {
    paths.container(id).join("tty.sock")
}

/// The monitor of a container with a terminal: logs the leader's output, lends the
/// leader on `tty.sock`, supervises PID 1; returns its exit code.
pub(crate) fn serve_and_supervise(paths: &Paths, c: &Container, mut started: Started) -> i32 {
    let Some(leader) = started.tty.take() else { return monitor::supervise(paths, c, started, true) };
    if let (Ok(mut reader), Ok(log)) = (leader.try_clone().map(std::fs::File::from), c.log(paths)) {
        let mut out = Writer::new(log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            // EIO once PID 1 and everything holding the follower end are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || out.write(Stream::Stdout, &buf[..n]).is_err() {
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
                let _ = console::send(conn.as_raw_fd(), fd);
            }
        });
    }
    let code = monitor::supervise(paths, c, started, true);
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
        console::receive(conn.as_raw_fd())
            .map_err(|e| Error::io("receive the terminal from", &sock, e))?
            .ok_or_else(|| Error::State(format!("container {} has no terminal", self.name)))
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
