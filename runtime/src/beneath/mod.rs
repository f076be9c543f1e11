//! Paths from images, archives and users resolved beneath a root directory without
//! following symlinks: each component is opened with `O_NOFOLLOW` relative to the one
//! before (a securejoin-style walk), so a symlink planted by an image can never redirect
//! a write, a whiteout, an xattr or a mount point outside the root. Every image and
//! rootfs path goes through here.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

pub mod copy;

/// A directory everything is resolved beneath.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

fn sys(e: Errno) -> io::Error {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => {
            io::Error::new(io::ErrorKind::InvalidInput, "a path component is a symlink or not a directory; refusing to follow it")
        }
        e => io::Error::from(e),
    }
}

/// The path relative to the root: `.` and leading `/` dropped, `..` refused.
pub fn relative(p: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "path contains '..'"));
            }
        }
    }
    Ok(out)
}

/// Lexically cleaned absolute path inside a root: `..` stops at the root, as a path
/// resolved with RESOLVE_IN_ROOT would (for user-given container paths like `-v` targets).
pub fn clean_in_root(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `/proc/self/fd/N`: a path naming exactly the opened object, for mount(2) and the
/// few APIs that take paths (it is never re-resolved through the image's symlinks).
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `openat(2)` returning an owned descriptor.
pub fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag, mode: Mode) -> Result<OwnedFd, Errno> {
    let fd = openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_CLOEXEC, mode)?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW, Mode::empty())
}

impl Root {
    /// Opens the root itself (a trusted path of berth's own).
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(io::Error::from)?;
        // SAFETY: a new descriptor that nothing else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// The root's own descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens directory `rel` beneath the root, creating missing components (mode 0755)
    /// when `create`; a symlink or non-directory on the way is an error.
    pub fn dir(&self, rel: &Path, create: bool) -> io::Result<OwnedFd> {
        let rel = relative(rel)?;
        let mut cur: OwnedFd = self.fd.try_clone()?;
        for c in rel.components() {
            let name = c.as_os_str();
            let next = match open_dir_at(cur.as_fd(), name) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(Some(cur.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys(e)),
                    }
                    open_dir_at(cur.as_fd(), name)
                }
                r => r,
            };
            cur = next.map_err(sys)?;
        }
        Ok(cur)
    }

    /// The parent directory of `rel` (created when `create`) and the final name, which
    /// the caller then uses with the `*at` syscalls. The root itself has no name.
    pub fn parent(&self, rel: &Path, create: bool) -> io::Result<(OwnedFd, OsString)> {
        let rel = relative(rel)?;
        let name = rel.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path names the root itself"))?.to_os_string();
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok((self.dir(parent, create)?, name))
    }

    /// Opens (creating, mode 0644) the regular file `rel` for use as a mount point; a
    /// symlink in its place is removed first, anything else but a file is refused.
    pub fn mount_file(&self, rel: &Path) -> io::Result<OwnedFd> {
        let (dir, name) = self.parent(rel, true)?;
        if let Ok(st) = nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                nix::unistd::unlinkat(Some(dir.as_raw_fd()), name.as_os_str(), nix::unistd::UnlinkatFlags::NoRemoveDir).map_err(sys)?;
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let fd = open_at(dir.as_fd(), name.as_os_str(), flags, Mode::from_bits_truncate(0o644)).map_err(sys)?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_clean() {
        assert_eq!(relative(Path::new("/a/./b")).unwrap(), PathBuf::from("a/b"));
        assert!(relative(Path::new("a/../../b")).is_err());
        assert_eq!(clean_in_root("/../../etc/x"), PathBuf::from("etc/x"));
        assert_eq!(clean_in_root("/a/b/../c"), PathBuf::from("a/c"));
    }

    #[test]
    fn symlinks_are_never_followed() {
        let dir = std::env::temp_dir().join(format!("beneath-{}", std::process::id()));
        let outside = dir.join("outside");
        let root = dir.join("root");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("real/file")).unwrap();
        let r = Root::open(&root).unwrap();
        assert!(r.dir(Path::new("link/sub"), true).is_err());
        assert!(!outside.join("sub").exists());
        assert!(r.dir(Path::new("real/new/deeper"), true).is_ok());
        assert!(root.join("real/new/deeper").is_dir());
        // A symlink where a mount point file goes is replaced, not followed.
        r.mount_file(Path::new("/real/file")).unwrap();
        assert!(!root.join("real/file").is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
