//! A container's changes as a layer: its overlay upper directory written as a tar with
//! OCI whiteouts (an overlay whiteout, a 0:0 character device `x`, becomes `.wh.x`; an
//! opaque directory gets `.wh..wh..opq`). What berth itself puts there for the run
//! (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`) is left out, as Docker leaves it out.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};

use crate::beneath::{self, copy};
use crate::error::{Error, Result};

/// The files the runtime mounts per container, never part of an image.
pub const INIT_FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

fn opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: a valid descriptor, NUL-terminated name and a buffer of the given length.
        let n = unsafe { libc::fgetxattr(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 1 && buf[0] == b'y' {
            return true;
        }
    }
    false
}

fn header(st: &FileStat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(size);
    h
}

/// The header of an empty regular file (a whiteout marker).
fn empty_file() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_mtime(0);
    h
}

/// The walk: every directory is read through its own descriptor and every entry opened
/// relative to it with `O_NOFOLLOW`, so a directory swapped for a symlink meanwhile is
/// archived as the symlink it became (or refused), never followed out of the upper dir.
struct Walk<'a, W: Write> {
    tar: tar::Builder<W>,
    root: &'a Path,
}

impl<W: Write> Walk<'_, W> {
    fn io(&self, what: &'static str, p: &Path, e: std::io::Error) -> Error {
        Error::io(what, self.root.join(p), e)
    }

    fn append(&mut self, h: &mut tar::Header, rel: &Path, data: impl std::io::Read) -> Result<()> {
        self.tar.append_data(h, rel, data).map_err(|e| self.io("archive", rel, e))
    }

    fn dir(&mut self, fd: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        let entries = copy::names(fd).map_err(|e| self.io("read", rel, e))?;
        if !rel.as_os_str().is_empty() && opaque(fd) {
            self.append(&mut empty_file(), &rel.join(".wh..wh..opq"), std::io::empty())?;
        }
        for name in entries {
            let rel = rel.join(&name);
            if INIT_FILES.iter().any(|f| Path::new(f) == rel) {
                continue;
            }
            self.entry(fd, &name, &rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<()> {
        let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.io("stat", rel, e.into()))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFCHR if st.st_rdev == 0 => {
                let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
                self.append(&mut empty_file(), &wh, std::io::empty())
            }
            libc::S_IFDIR => {
                let sub = copy::open_dir(dir, name).map_err(|e| self.io("open", rel, e))?;
                let st = fstat(sub.as_raw_fd()).map_err(|e| self.io("stat", rel, e.into()))?;
                self.append(&mut header(&st, tar::EntryType::Directory, 0), rel, std::io::empty())?;
                self.dir(sub.as_fd(), rel)
            }
            libc::S_IFLNK => {
                let target = readlinkat(Some(dir.as_raw_fd()), name).map_err(|e| self.io("read link", rel, e.into()))?;
                let mut h = header(&st, tar::EntryType::Symlink, 0);
                self.tar.append_link(&mut h, rel, &target).map_err(|e| self.io("archive", rel, e))
            }
            libc::S_IFREG => {
                let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
                let fd = beneath::open_at(dir, name, flags, Mode::empty()).map_err(|e| self.io("open", rel, e.into()))?;
                let st = fstat(fd.as_raw_fd()).map_err(|e| self.io("stat", rel, e.into()))?;
                if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Err(self.io("open", rel, std::io::Error::other("changed while it was read")));
                }
                // Exactly the size in the header, even if the file changed meanwhile.
                let size = st.st_size as u64;
                let data = std::io::Read::chain(std::io::Read::take(fs::File::from(fd), size), std::io::repeat(0));
                self.append(&mut header(&st, tar::EntryType::Regular, size), rel, std::io::Read::take(data, size))
            }
            kind => {
                let kind = match kind {
                    libc::S_IFIFO => tar::EntryType::Fifo,
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => return Ok(()), // sockets are not archived
                };
                let mut h = header(&st, kind, 0);
                let _ = h.set_device_major(libc::major(st.st_rdev));
                let _ = h.set_device_minor(libc::minor(st.st_rdev));
                self.append(&mut h, rel, std::io::empty())
            }
        }
    }
}

/// Writes the changes in `upper` as a layer tar to `out`.
pub fn write_layer(upper: &Path, out: &Path) -> Result<()> {
    let root = beneath::Root::open(upper).map_err(|e| Error::io("open", upper, e))?;
    let f = fs::File::create(out).map_err(|e| Error::io("create", out, e))?;
    let mut w = Walk { tar: tar::Builder::new(std::io::BufWriter::new(f)), root: upper };
    w.tar.mode(tar::HeaderMode::Complete);
    w.dir(root.fd(), Path::new(""))?;
    let mut inner = w.tar.into_inner().map_err(|e| Error::io("finish", out, e))?;
    inner.flush().map_err(|e| Error::io("write", out, e))
}
