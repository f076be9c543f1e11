//! Unpacking layer tarballs (plain or gzip) into directories overlayfs can use as lower
//! layers: OCI whiteouts become overlay whiteouts (`.wh.x` → char device 0:0 `x`,
//! `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory). Every entry is
//! written with `*at` calls beneath the layer's directory (see [`crate::beneath`]).

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, futimens, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::beneath;
use crate::error::{Error, Result};

/// sha256 of a file, as `sha256:<hex>`.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io("read", path, e))?;
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    Ok(f.read(&mut magic).map_err(|e| Error::io("read", path, e))? == 2 && magic == [0x1f, 0x8b])
}

/// Opens a tarball, transparently gunzipping it.
pub fn open_tar(path: &Path) -> Result<Box<dyn Read>> {
    let f = BufReader::new(File::open(path).map_err(|e| Error::io("open", path, e))?);
    Ok(if is_gzip(path)? { Box::new(GzDecoder::new(f)) } else { Box::new(f) })
}

/// Why a layer entry was refused.
fn refused(tarball: &Path, entry: &Path, why: impl std::fmt::Display) -> Error {
    Error::BadArchive { path: tarball.to_path_buf(), why: format!("entry {}: {why}", entry.display()) }
}

/// Removes `name` in `dir` whatever it is (a directory with its content), without
/// following symlinks; missing is fine.
fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<()> {
    match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {
            let sub = beneath::open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW, Mode::empty())?;
            // Listed through the descriptor's own path, never re-resolved from the root.
            let names: Vec<OsString> = fs::read_dir(beneath::fd_path(&sub))?.flatten().map(|e| e.file_name()).collect();
            for n in names {
                remove_at(sub.as_fd(), &n)?;
            }
            unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}

/// Image xattrs worth keeping: user ones and file capabilities. Never `trusted.*`
/// (overlayfs reads `trusted.overlay.*` as instructions) nor other security labels.
fn keep_xattr(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability"
}

fn set_xattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> std::io::Result<()> {
    let c = CString::new(name).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "xattr name with NUL"))?;
    // SAFETY: valid descriptor, C string and buffer.
    if unsafe { libc::fsetxattr(fd.as_raw_fd(), c.as_ptr(), value.as_ptr().cast(), value.len(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Applies owner, mode, times and xattrs of a header to an opened file or directory.
fn apply_meta<R: Read>(fd: BorrowedFd<'_>, entry: &mut tar::Entry<'_, R>) -> std::io::Result<()> {
    let h = entry.header();
    let (uid, gid) = (h.uid()? as u32, h.gid()? as u32);
    let mode = h.mode()? & 0o7777;
    let mtime = h.mtime()? as i64;
    fchown(fd.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    // After chown, which clears set-id bits.
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    let t = TimeSpec::new(mtime, 0);
    futimens(fd.as_raw_fd(), &t, &t)?;
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.").filter(|n| keep_xattr(n)) {
                set_xattr(fd, name, ext.value_bytes())?;
            }
        }
    }
    Ok(())
}

/// Writes one entry (not a whiteout) beneath `root`.
fn write_entry<R: Read>(root: &beneath::Root, rel: &Path, entry: &mut tar::Entry<'_, R>) -> std::io::Result<()> {
    let kind = entry.header().entry_type();
    if kind.is_dir() {
        let d = root.dir(rel, true)?;
        return apply_meta(d.as_fd(), entry);
    }
    let (dir, name) = root.parent(rel, true)?;
    let d = dir.as_raw_fd();
    remove_at(dir.as_fd(), &name)?;
    let h = entry.header();
    let (uid, gid) = (Some(Uid::from_raw(h.uid()? as u32)), Some(Gid::from_raw(h.gid()? as u32)));
    match kind {
        EntryType::Regular | EntryType::Continuous => {
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let fd = beneath::open_at(dir.as_fd(), &name, flags, Mode::from_bits_truncate(0o600))?;
            let mut f = File::from(fd);
            std::io::copy(entry, &mut f)?;
            apply_meta(f.as_fd(), entry)
        }
        EntryType::Symlink => {
            let target =
                entry.link_name()?.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "symlink without target"))?;
            symlinkat(target.as_ref(), Some(d), name.as_os_str())?;
            fchownat(Some(d), name.as_os_str(), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(Into::into)
        }
        EntryType::Link => {
            // The link's source is another member, addressed beneath the same root.
            let target =
                entry.link_name()?.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "hard link without target"))?;
            let (sdir, sname) = root.parent(&target, false)?;
            linkat(Some(sdir.as_raw_fd()), sname.as_os_str(), Some(d), name.as_os_str(), AtFlags::empty()).map_err(Into::into)
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let dev = libc::makedev(h.device_major()?.unwrap_or(0), h.device_minor()?.unwrap_or(0));
            mknodat(Some(d), name.as_os_str(), sflag, Mode::from_bits_truncate(h.mode()? & 0o7777), dev)?;
            fchownat(Some(d), name.as_os_str(), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(Into::into)
        }
        // PAX and GNU long-name headers are consumed by the reader; others carry nothing.
        _ => Ok(()),
    }
}

/// A whiteout: `.wh..wh..opq` marks its directory opaque, `.wh.NAME` hides NAME. Both
/// land only in directories reached without symlinks.
fn whiteout(root: &beneath::Root, parent: &Path, name: &str) -> std::io::Result<()> {
    let dir = root.dir(parent, true)?;
    if name == ".wh..wh..opq" {
        return set_xattr(dir.as_fd(), "trusted.overlay.opaque", b"y");
    }
    let hidden = name.strip_prefix(".wh.").unwrap_or_default();
    if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.starts_with(".wh.") {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid whiteout name"));
    }
    remove_at(dir.as_fd(), OsStr::new(hidden))?;
    mknodat(Some(dir.as_raw_fd()), hidden, SFlag::S_IFCHR, Mode::from_bits_truncate(0o600), libc::makedev(0, 0)).map_err(Into::into)
}

/// Unpacks `tarball` into `dest` (created), converting whiteouts. Every entry is written
/// beneath `dest` without following symlinks; an entry that would escape is an error.
/// `progress` is called with the bytes unpacked so far.
pub fn unpack_layer(tarball: &Path, dest: &Path, progress: &mut dyn FnMut(u64)) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io("create", dest, e))?;
    let root = beneath::Root::open(dest).map_err(|e| Error::io("open", dest, e))?;
    let mut archive = tar::Archive::new(open_tar(tarball)?);
    let bad = |why: String| Error::BadArchive { path: tarball.to_path_buf(), why };
    let mut read = 0u64;
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        read += entry.size();
        progress(read);
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let rel = beneath::relative(&path).map_err(|_| refused(tarball, &path, "escapes the layer"))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let res = if name.starts_with(".wh.") { whiteout(&root, &parent, &name) } else { write_entry(&root, &rel, &mut entry) };
        res.map_err(|e| refused(tarball, &path, e))?;
    }
    Ok(())
}
