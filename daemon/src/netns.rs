//! Network namespaces by path (`/run/netns/X`, `/proc/PID/ns/net`).
//!
//! Work inside another netns runs on the calling thread, which enters it with `setns` and
//! returns to its own namespace afterwards, also when the work fails or panics; a thread
//! that cannot return aborts the process, so no thread is ever left in the wrong
//! namespace. (A fresh thread per trip costs ~0.1 ms: a plugin makes one or two trips.)

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::error::{Error, Result};

/// An open handle on a network namespace; keeps it alive while held.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens the namespace at `path`; fails if it does not exist or is not a netns.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| Error::Netns { path: path.clone(), source })?;
        // NS_GET_NSTYPE would be exact; a statfs magic check is enough to refuse plain files.
        let st = nix::sys::statfs::fstatfs(file.as_fd()).map_err(|e| Error::Netns { path: path.clone(), source: e.into() })?;
        if st.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
            return Err(Error::Netns { path, source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a network namespace") });
        }
        Ok(Self { file, path })
    }

    /// The path this handle was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes an exclusive `flock` on the namespace file, held until this handle drops:
    /// plugins that read then change a namespace's routing (sbr) serialise on it, as
    /// the reference plugins do on the same path.
    pub fn lock(&self) -> Result<()> {
        crate::state::flock_open(&self.file, &self.path, libc::LOCK_EX)
    }

    /// The file descriptor, e.g. for `IFLA_NET_NS_FD`.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` inside this namespace on the calling thread and returns its result; the
    /// thread is back in its own namespace when this returns or unwinds.
    pub fn run<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let home = File::open("/proc/thread-self/ns/net").map_err(|e| Error::io("open", "/proc/thread-self/ns/net", e))?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns { path: self.path.clone(), source: e.into() })?;
        let _back = Back(home);
        f()
    }
}

/// Returns the thread to the namespace `.0` when dropped; a thread that cannot go back
/// would do the caller's later work in a container's namespace, so the process aborts.
struct Back(File);

impl Drop for Back {
    fn drop(&mut self) {
        if setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
            std::process::abort();
        }
    }
}
