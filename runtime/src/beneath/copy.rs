//! The one copy of image, context, stage and volume content: every entry is read through
//! a descriptor of its source directory and written through a descriptor of its
//! destination directory, one name at a time (`openat`/`mkdirat`/`symlinkat` with
//! `O_NOFOLLOW`, files created `O_EXCL`, owner and mode set with `fchown`/`fchmod` on
//! the new file's own descriptor). No path is ever resolved twice, so a symlink already
//! at the destination, or one planted there while the copy runs (a second container
//! sharing a volume), is replaced or refused — never written through.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::{fd_path, open_at};

/// What a copied entry was, so that a caller walking a tree knows to descend.
#[derive(Debug)]
pub enum Copied {
    /// A directory: its source and destination descriptors, for the caller to fill.
    Dir(OwnedFd, OwnedFd),
    /// A file, a symlink, or something skipped (devices, sockets, fifos).
    Leaf,
}

fn kind(st: &FileStat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Opens directory `name` in `dir` without following a symlink there.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW, Mode::empty()).map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => refused("a path component is a symlink or not a directory; refusing to follow it"),
        e => io::Error::from(e),
    })
}

/// The names in an opened directory (read through its descriptor, never by path).
pub fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let mut v: Vec<_> = std::fs::read_dir(fd_path(&dir.as_raw_fd()))?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// Makes room for a new non-directory `name` in `dir`: a symlink or file there is
/// unlinked (never followed); a directory is refused (its content is not ours to drop).
fn clear(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if kind(&st) == libc::S_IFDIR => {
            Err(refused(&format!("{}: a directory is in the way of a file", String::from_utf8_lossy(name.as_bytes()))))
        }
        Ok(_) => match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        },
    }
}

/// Creates directory `name` in `dir` (an existing directory is kept; a symlink or file
/// there is refused) and opens it.
pub fn make_dir(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<OwnedFd> {
    match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_dir(dir, name)
}

/// Owner, then mode (chown clears set-id bits), on the entry's own descriptor.
fn own(fd: BorrowedFd<'_>, st: &FileStat, owner: Option<(u32, u32)>) -> io::Result<()> {
    let (uid, gid) = owner.unwrap_or((st.st_uid, st.st_gid));
    fchown(fd.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    Ok(())
}

/// Copies entry `name` of directory `src` to `dst_name` in directory `dst`, keeping its
/// mode and owner or giving it `owner`. A directory is created (or kept) and handed back
/// open for the caller to descend; a symlink is copied as a link; a regular file is
/// created anew (`O_EXCL`) after whatever non-directory stood at its name is removed.
/// Devices, sockets and fifos are skipped.
pub fn entry(src: BorrowedFd<'_>, name: &OsStr, dst: BorrowedFd<'_>, dst_name: &OsStr, owner: Option<(u32, u32)>) -> io::Result<Copied> {
    let st = fstatat(Some(src.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    match kind(&st) {
        libc::S_IFDIR => {
            let from = open_dir(src, name)?;
            let to = make_dir(dst, dst_name, 0o700)?;
            own(to.as_fd(), &fstat(from.as_raw_fd())?, owner)?;
            Ok(Copied::Dir(from, to))
        }
        libc::S_IFLNK => {
            let target = readlinkat(Some(src.as_raw_fd()), name)?;
            clear(dst, dst_name)?;
            symlinkat(target.as_os_str(), Some(dst.as_raw_fd()), dst_name)?;
            let (uid, gid) = owner.unwrap_or((st.st_uid, st.st_gid));
            fchownat(Some(dst.as_raw_fd()), dst_name, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)), AtFlags::AT_SYMLINK_NOFOLLOW)?;
            Ok(Copied::Leaf)
        }
        libc::S_IFREG => {
            let from = open_at(src, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK, Mode::empty())?;
            let fst = fstat(from.as_raw_fd())?;
            if kind(&fst) != libc::S_IFREG {
                return Err(refused("the source changed while it was copied"));
            }
            clear(dst, dst_name)?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let to = open_at(dst, dst_name, flags, Mode::from_bits_truncate(0o600))?;
            let (mut r, mut w) = (File::from(from), File::from(to));
            io::copy(&mut r, &mut w)?;
            own(w.as_fd(), &fst, owner)?;
            Ok(Copied::Leaf)
        }
        _ => Ok(Copied::Leaf),
    }
}

/// Copies everything in directory `src` into directory `dst`, recursively, through
/// descriptors only (see the module doc).
pub fn tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, owner: Option<(u32, u32)>) -> io::Result<()> {
    for n in names(src)? {
        if let Copied::Dir(from, to) = entry(src, &n, dst, &n, owner)? {
            tree(from.as_fd(), to.as_fd(), owner)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    fn dir_fd(p: &Path) -> OwnedFd {
        super::super::Root::open(p).unwrap().dir(Path::new(""), false).unwrap()
    }

    #[test]
    fn a_symlink_at_the_destination_is_replaced_not_written_through() {
        let base = std::env::temp_dir().join(format!("copy-{}", std::process::id()));
        let (src, dst, outside) = (base.join("src"), base.join("dst"), base.join("outside"));
        for d in [&src, &dst, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(outside.join("canary"), b"keep").unwrap();
        std::fs::set_permissions(outside.join("canary"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(src.join("d")).unwrap();
        std::fs::write(src.join("d/f"), b"new").unwrap();
        std::fs::set_permissions(src.join("d/f"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        // The destination already has d/f -> outside/canary, and a d2 -> outside link.
        std::fs::create_dir(dst.join("d")).unwrap();
        std::os::unix::fs::symlink(outside.join("canary"), dst.join("d/f")).unwrap();
        std::os::unix::fs::symlink(&outside, dst.join("d2")).unwrap();
        std::fs::create_dir(src.join("d2")).unwrap();
        std::fs::write(src.join("d2/x"), b"x").unwrap();
        let res = tree(dir_fd(&src).as_fd(), dir_fd(&dst).as_fd(), None);
        assert!(res.is_err(), "a symlinked directory in the way is refused");
        assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"keep");
        assert_eq!(std::fs::metadata(outside.join("canary")).unwrap().mode() & 0o7777, 0o644);
        assert!(!outside.join("x").exists());
        let f = std::fs::symlink_metadata(dst.join("d/f")).unwrap();
        assert!(f.is_file());
        assert_eq!(f.mode() & 0o7777, 0o4755);
        assert_eq!(std::fs::read(dst.join("d/f")).unwrap(), b"new");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
