//! COPY and ADD: files of the context or of another image's root into a stage directory,
//! with their owner.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::sys::stat::fstatat;

use crate::beneath::{copy, Root};
use crate::error::{Error, Result};

/// `--chown=UID[:GID]` (numeric, or root).
pub(super) fn chown(flag: Option<&str>) -> Result<(u32, u32)> {
    let Some(v) = flag else { return Ok((0, 0)) };
    let num = |s: &str| {
        if s == "root" {
            Ok(0)
        } else {
            s.parse::<u32>().map_err(|_| Error::State(format!("--chown={v}: use numeric UID[:GID]")))
        }
    };
    let (u, g) = v.split_once(':').unwrap_or((v, v));
    Ok((num(u)?, num(g)?))
}

/// Copies context entry `rel` to `to` beneath the stage (see [`crate::beneath::copy`]): a
/// directory is created, not descended (the caller walks the context's file list, which
/// .dockerignore filtered), owned by `owner` as COPY does.
pub(super) fn copy_one(ctx: &Root, rel: &Path, stage: &Root, to: &Path, owner: (u32, u32)) -> Result<()> {
    let io = |e| Error::io("copy", rel, e);
    let (sdir, sname) = ctx.parent(rel, false).map_err(io)?;
    let (ddir, dname) = stage.parent(to, true).map_err(io)?;
    copy::entry(sdir.as_fd(), &sname, ddir.as_fd(), &dname, Some(owner)).map(drop).map_err(io)
}

/// COPY --from: `srcs` out of an image's merged root, resolved beneath it and copied
/// without following its symlinks (a stage's link to `/etc/shadow` stays a link).
pub(super) fn copy_out_of(
    root: &Path,
    srcs: &[String],
    stage: &Root,
    target: &Path,
    dir_dest: bool,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let r = Root::open(root).map_err(|e| Error::io("open", root, e))?;
    for src in srcs {
        let rel = crate::beneath::clean_in_root(src);
        let bad = |e: std::io::Error| Error::State(format!("COPY --from: {src}: {e}"));
        if rel.as_os_str().is_empty() {
            let to = stage.dir(target, true).map_err(bad)?;
            copy::tree(r.fd(), to.as_fd(), owner).map_err(bad)?;
            continue;
        }
        let not_found = |e: std::io::Error| Error::State(format!("COPY --from: {src} not found: {e}"));
        let (sdir, name) = r.parent(&rel, false).map_err(not_found)?;
        let st = fstatat(Some(sdir.as_raw_fd()), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| not_found(e.into()))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let from = copy::open_dir(sdir.as_fd(), &name).map_err(bad)?;
            let to = stage.dir(target, true).map_err(bad)?;
            copy::tree(from.as_fd(), to.as_fd(), owner).map_err(bad)?;
        } else {
            let to = if dir_dest { target.join(&name) } else { target.to_path_buf() };
            let (ddir, dname) = stage.parent(&to, true).map_err(bad)?;
            copy::entry(sdir.as_fd(), &name, ddir.as_fd(), &dname, owner).map_err(bad)?;
        }
    }
    Ok(())
}

/// Whether an opened file starts like a tar or a gzip stream.
pub(super) fn is_tar(f: &mut fs::File) -> bool {
    let mut magic = [0u8; 262];
    let n = std::io::Read::read(f, &mut magic).unwrap_or(0);
    (n >= 2 && magic[..2] == [0x1f, 0x8b]) || (n >= 262 && &magic[257..262] == b"ustar")
}
