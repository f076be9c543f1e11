//! A container's changes as a layer: its overlay upper directory written as a tar with
//! OCI whiteouts (an overlay whiteout, a 0:0 character device `x`, becomes `.wh.x`; an
//! opaque directory gets `.wh..wh..opq`). What berth itself puts there for the run
//! (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`) is left out, as Docker leaves it out.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The files the runtime mounts per container, never part of an image.
pub const INIT_FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

fn opaque(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    let mut buf = [0u8; 4];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: valid NUL-terminated strings and a buffer of the given length.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 1 && buf[0] == b'y' {
            return true;
        }
    }
    false
}

fn header(meta: &fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(meta.mtime().max(0) as u64);
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

    fn dir(&mut self, rel: &Path) -> Result<()> {
        let abs = self.root.join(rel);
        let mut entries: Vec<_> = fs::read_dir(&abs).map_err(|e| self.io("read", rel, e))?.flatten().map(|e| e.file_name()).collect();
        entries.sort();
        if !rel.as_os_str().is_empty() && opaque(&abs) {
            self.append(&mut empty_file(), &rel.join(".wh..wh..opq"), std::io::empty())?;
        }
        for name in entries {
            let rel = rel.join(&name);
            if INIT_FILES.iter().any(|f| Path::new(f) == rel) {
                continue;
            }
            let abs = self.root.join(&rel);
            let meta = fs::symlink_metadata(&abs).map_err(|e| self.io("stat", &rel, e))?;
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
                self.append(&mut empty_file(), &wh, std::io::empty())?;
            } else if ft.is_dir() {
                self.append(&mut header(&meta, tar::EntryType::Directory, 0), &rel, std::io::empty())?;
                self.dir(&rel)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&abs).map_err(|e| self.io("read link", &rel, e))?;
                let mut h = header(&meta, tar::EntryType::Symlink, 0);
                self.tar.append_link(&mut h, &rel, &target).map_err(|e| self.io("archive", &rel, e))?;
            } else if ft.is_file() {
                let f = fs::File::open(&abs).map_err(|e| self.io("open", &rel, e))?;
                self.append(&mut header(&meta, tar::EntryType::Regular, meta.len()), &rel, f)?;
            } else {
                let kind = if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    continue; // sockets are not archived
                };
                let mut h = header(&meta, kind, 0);
                let dev = meta.rdev();
                let _ = h.set_device_major(libc::major(dev));
                let _ = h.set_device_minor(libc::minor(dev));
                self.append(&mut h, &rel, std::io::empty())?;
            }
        }
        Ok(())
    }
}

/// Writes the changes in `upper` as a layer tar to `out`.
pub fn write_layer(upper: &Path, out: &Path) -> Result<()> {
    let f = fs::File::create(out).map_err(|e| Error::io("create", out, e))?;
    let mut w = Walk { tar: tar::Builder::new(std::io::BufWriter::new(f)), root: upper };
    w.tar.mode(tar::HeaderMode::Complete);
    w.dir(Path::new(""))?;
    let mut inner = w.tar.into_inner().map_err(|e| Error::io("finish", out, e))?;
    inner.flush().map_err(|e| Error::io("write", out, e))
}
