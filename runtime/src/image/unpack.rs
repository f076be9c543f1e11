//! Unpacking layer tarballs (plain or gzip) into directories overlayfs can use as lower
//! layers: OCI whiteouts become overlay whiteouts (`.wh.x` → char device 0:0 `x`,
//! `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// sha256 of a file, as "sha256:<hex>".
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

fn mknod_whiteout(path: &Path) -> Result<()> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_dir_all(path);
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Invalid(format!("bad path {}", path.display())))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(0, 0)) } != 0 {
        return Err(Error::io("create whiteout", path, std::io::Error::last_os_error()));
    }
    Ok(())
}

fn set_opaque(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::Invalid(format!("bad path {}", dir.display())))?;
    let (name, val) = (c"trusted.overlay.opaque", b"y");
    // SAFETY: valid C strings and buffer.
    if unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), val.as_ptr().cast(), 1, 0) } != 0 {
        return Err(Error::io("mark opaque", dir, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Refuses absolute paths and `..`, which a hostile layer could use to escape.
fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Unpacks `tarball` into `dest` (created), converting whiteouts. `progress` is called
/// with the bytes unpacked so far.
pub fn unpack_layer(tarball: &Path, dest: &Path, progress: &mut dyn FnMut(u64)) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io("create", dest, e))?;
    let mut archive = tar::Archive::new(open_tar(tarball)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let bad = |why: String| Error::BadArchive { path: tarball.to_path_buf(), why };
    let mut read = 0u64;
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        read += entry.size();
        progress(read);
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let Some(rel) = safe_relative(&path) else {
            return Err(bad(format!("entry {} escapes the layer", path.display())));
        };
        let name = rel.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        if name == ".wh..wh..opq" {
            set_opaque(&dest.join(&parent))?;
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            fs::create_dir_all(dest.join(&parent)).map_err(|e| Error::io("create", dest.join(&parent), e))?;
            mknod_whiteout(&dest.join(&parent).join(hidden))?;
        } else {
            entry.unpack_in(dest).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        }
    }
    Ok(())
}
