//! Network namespaces by path (`/run/netns/X`, `/proc/PID/ns/net`).
//!
//! Work inside another netns runs on a fresh thread that enters it with `setns` and then
//! ends, so no shared or async thread is ever left in the wrong namespace.

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

    /// Runs `f` on a dedicated thread inside this namespace and returns its result.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> Result<T> + Send,
    {
        let file = &self.file;
        let path = &self.path;
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns { path: path.clone(), source: e.into() })?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Netns { path: path.clone(), source: std::io::Error::other("worker thread panicked") }))
        })
    }
}
