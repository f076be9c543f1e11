//! The build context: its files as `.dockerignore` leaves them, read beneath the context's
//! root without following symlinks out of it, and the digest of what a COPY takes.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use sha2::{Digest, Sha256};

use crate::beneath::Root;
use crate::error::{Error, Result};
use crate::image::unpack::hex;

/// The context's files (relative paths, sorted) that `.dockerignore` does not exclude.
pub(super) fn context_files(ctx: &Path, root: &Root) -> Result<Vec<PathBuf>> {
    let mut rules: Vec<(bool, GlobMatcher)> = Vec::new();
    if let Ok(text) = read_context_file(root, Path::new(".dockerignore")).map(|b| String::from_utf8_lossy(&b).into_owned()) {
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (keep, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, l),
            };
            let pat = pat.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
            let g =
                GlobBuilder::new(pat).literal_separator(true).build().map_err(|e| Error::State(format!(".dockerignore: {l:?}: {e}")))?;
            rules.push((keep, g.compile_matcher()));
        }
    }
    // A path is excluded if the last rule matching it or one of its parents excludes it.
    let excluded = |rel: &Path| {
        let mut out = false;
        for (keep, g) in &rules {
            if rel.ancestors().filter(|a| !a.as_os_str().is_empty()).any(|a| g.is_match(a)) {
                out = !keep;
            }
        }
        out
    };
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = ctx.join(&rel);
        for e in fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))?.flatten() {
            let r = rel.join(e.file_name());
            if excluded(&r) {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(r.clone());
            }
            files.push(r);
        }
    }
    files.sort();
    Ok(files)
}

/// The context entries a COPY source names: a path (a directory brings what is under
/// it) or a glob, whose `*` and `?` never cross a `/` (as Docker's filepath.Match).
pub fn sources(files: &[PathBuf], src: &str) -> Result<Vec<PathBuf>> {
    let clean = crate::beneath::clean_in_root(src);
    if src.contains(['*', '?', '[']) {
        // Go's filepath.Match has no `**`: a run of stars is one star (found by fuzzing:
        // globset reads `**` as "any depth").
        let mut pattern = clean.to_string_lossy().into_owned();
        while pattern.contains("**") {
            pattern = pattern.replace("**", "*");
        }
        let g =
            GlobBuilder::new(&pattern).literal_separator(true).build().map_err(|e| Error::State(format!("{src}: {e}")))?.compile_matcher();
        // One path component per pattern component: a class like `[!a]` matches `/` in
        // globset (found by fuzzing), so the depth is checked too.
        let depth = Path::new(&pattern).components().count();
        return Ok(files.iter().filter(|f| f.components().count() == depth && g.is_match(f)).cloned().collect());
    }
    if clean.as_os_str().is_empty() {
        return Ok(vec![PathBuf::new()]);
    }
    Ok(if files.contains(&clean) { vec![clean] } else { Vec::new() })
}

/// A context entry's status, not following a symlink at `rel` or on the way to it.
pub(super) fn context_stat(root: &Root, rel: &Path) -> std::io::Result<FileStat> {
    if rel.as_os_str().is_empty() {
        return fstat(root.fd().as_raw_fd()).map_err(Into::into);
    }
    let (dir, name) = root.parent(rel, false)?;
    fstatat(Some(dir.as_raw_fd()), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(Into::into)
}

/// Opens regular file `name` of directory `dir` (a symlink there is refused).
pub(super) fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<fs::File> {
    let fd = crate::beneath::open_at(dir, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK, Mode::empty())?;
    if fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(fs::File::from(fd))
}

/// Opens the regular file `rel` of the context (a symlink there is refused).
pub(super) fn open_context_file(root: &Root, rel: &Path) -> std::io::Result<fs::File> {
    let (dir, name) = root.parent(rel, false)?;
    open_file_at(dir.as_fd(), &name)
}

pub(super) fn read_context_file(root: &Root, rel: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut open_context_file(root, rel)?, &mut out)?;
    Ok(out)
}

/// Digest of what a COPY brings: names, modes and contents, in order.
pub(super) fn content_digest(ctx: &Path, root: &Root, files: &[PathBuf], roots: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    for f in files.iter().filter(|f| roots.iter().any(|r| f.starts_with(r) || r.as_os_str().is_empty())) {
        let p = ctx.join(f);
        let io = |e: std::io::Error| Error::io("read", &p, e);
        // The entry's directory resolved once, then everything relative to it.
        let (dir, name) = root.parent(f, false).map_err(io)?;
        let st = fstatat(Some(dir.as_raw_fd()), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| io(e.into()))?;
        h.update(f.to_string_lossy().as_bytes());
        h.update(st.st_mode.to_le_bytes());
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => drop(std::io::copy(&mut open_file_at(dir.as_fd(), &name).map_err(io)?, &mut h).map_err(io)?),
            libc::S_IFLNK => h.update(readlinkat(Some(dir.as_raw_fd()), name.as_os_str()).map_err(|e| io(e.into()))?.as_bytes()),
            _ => {}
        }
        h.update(b"\0");
    }
    Ok(hex(&h.finalize()))
}
