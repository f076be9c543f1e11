//! COPY and ADD: what a step copies (its plan, made before the cache is asked, as the
//! copied content is part of the key), and the layer made from it — files of the context
//! or of another image's root copied into a stage directory, with their owner.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::fstatat;
use parse_dockerfile::{Flag, Source, UnescapedString};

use super::context::{content_digest, context_stat, open_context_file, sources};
use super::stage::Stages;
use super::{at, Build};
use crate::beneath::{copy, Root};
use crate::error::{Error, Result};
use crate::image::{self, instr::expand, store, Image};

/// One COPY or ADD, resolved.
pub(super) struct CopyPlan {
    /// ADD (unpacks a context archive) rather than COPY.
    is_add: bool,
    /// The destination as written, variables expanded.
    dest: String,
    /// `--chown`, if given.
    chown: Option<(u32, u32)>,
    /// `--from`: the image and the paths in its root.
    from: Option<(Image, Vec<String>)>,
    /// From the context: each pattern with the context files it matched.
    context: Vec<(String, Vec<PathBuf>)>,
}

impl CopyPlan {
    /// Resolves the sources of a COPY (`is_add` false) or ADD, adding to `key_text`
    /// what they are: the image of `--from`, or the digest of the context files copied.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        b: &Build<'_>,
        stages: &Stages,
        srcs: &[Source<'_>],
        dest: &UnescapedString<'_>,
        opts: &[Flag<'_>],
        is_add: bool,
        line: usize,
        key_text: &mut String,
    ) -> Result<CopyPlan> {
        let x = |s: &str| expand(s, &b.st.vars);
        let flag = |name: &str| opts.iter().find(|f| f.name.value == name).and_then(|f| f.value.as_ref()).map(|v| v.value.to_string());
        let chown = match flag("chown") {
            Some(v) => Some(chown(Some(&v)).map_err(|e| at(line, e))?),
            None => None,
        };
        let mut plan = CopyPlan { is_add, dest: x(&dest.value), chown, from: None, context: Vec::new() };
        if let Some(from) = flag("from").map(|v| x(&v)) {
            let img = stages.image(b.paths, &from, line)?;
            let mut paths = Vec::new();
            for s in srcs {
                let Source::Path(p) = s else { return Err(at(line, "here-documents in COPY are not supported yet")) };
                let p = x(&p.value);
                if p.contains(['*', '?', '[']) {
                    return Err(at(line, format!("COPY --from with a glob ({p}) is not supported yet")));
                }
                paths.push(p);
            }
            key_text.push_str(&img.id);
            plan.from = Some((img, paths));
            return Ok(plan);
        }
        for s in srcs {
            let Source::Path(p) = s else { return Err(at(line, "here-documents in COPY/ADD are not supported yet")) };
            let p = x(&p.value);
            if p.contains("://") {
                return Err(at(line, format!("ADD of a URL ({p}) is not supported; download it with RUN")));
            }
            let found = sources(&b.files, &p)?;
            if found.is_empty() {
                return Err(at(line, format!("{p} not found in the build context (or excluded by .dockerignore)")));
            }
            plan.context.push((p, found));
        }
        let roots: Vec<PathBuf> = plan.context.iter().flat_map(|(_, f)| f.clone()).collect();
        key_text.push_str(&content_digest(&b.o.context, &b.ctx, &b.files, &roots)?);
        Ok(plan)
    }

    /// The step's layer: the sources copied into a scratch directory at the destination
    /// (relative to `workdir`).
    pub(super) fn layer(&self, b: &Build<'_>, workdir: &str) -> Result<store::Layer> {
        let abs = if self.dest.starts_with('/') { self.dest.clone() } else { format!("{}/{}", workdir.trim_end_matches('/'), self.dest) };
        let dir_dest = self.dest.ends_with('/')
            || self.context.iter().map(|(_, f)| f.len()).sum::<usize>() > 1
            || self.from.as_ref().is_some_and(|(_, s)| s.len() > 1);
        let scratch = crate::scratch::Scratch::dir(b.paths, "build")?;
        let stage = scratch.as_path();
        let out = Root::open(stage).map_err(|e| Error::io("open", stage, e))?;
        let target = crate::beneath::clean_in_root(&abs);
        if let Some((img, srcs)) = &self.from {
            image::root::with_root(b.paths, img, |root| copy_out_of(root, srcs, &out, &target, dir_dest, self.chown))?;
        }
        let own = self.chown.unwrap_or((0, 0));
        for (pattern, found) in &self.context {
            for f in found {
                self.copy_context_entry(b, &out, &target, &abs, pattern, f, dir_dest, own)?;
            }
        }
        image::commit::layer_from_dir(b.paths, stage, "Layer")
    }

    /// One context entry `f` that `pattern` matched, into `target` beneath the stage.
    #[allow(clippy::too_many_arguments)]
    fn copy_context_entry(
        &self,
        b: &Build<'_>,
        out: &Root,
        target: &Path,
        abs: &str,
        pattern: &str,
        f: &Path,
        dir_dest: bool,
        own: (u32, u32),
    ) -> Result<()> {
        let from = b.o.context.join(f);
        let st = context_stat(&b.ctx, f).map_err(|e| Error::io("stat", &from, e))?;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        // A directory source copies its contents; a glob match of a directory, the
        // directory itself.
        let to = if is_dir && !pattern.contains(['*', '?', '[']) {
            target.to_path_buf()
        } else if dir_dest || is_dir {
            target.join(f.file_name().unwrap_or_default())
        } else {
            target.to_path_buf()
        };
        // ADD unpacks a regular file of the context that is an archive, read through the
        // descriptor opened here (a symlink to a host archive is copied as a link).
        let tar = if self.is_add && st.st_mode & libc::S_IFMT == libc::S_IFREG {
            let mut file = open_context_file(&b.ctx, f).map_err(|e| Error::io("open", &from, e))?;
            is_tar(&mut file).then_some(file)
        } else {
            None
        };
        if let Some(file) = tar {
            let into = out.dir(target, true).map_err(|e| Error::io("create", abs, e))?;
            let (src, dst) = (crate::beneath::fd_path(&file), crate::beneath::fd_path(&into));
            return image::unpack::unpack_layer(&src, &dst, &mut |_| {});
        }
        if !is_dir {
            return copy_one(&b.ctx, f, out, &to, own);
        }
        // Only what .dockerignore lets in.
        out.dir(&to, true).map_err(|e| Error::io("create", abs, e))?;
        for inner in b.files.iter().filter(|x| f.as_os_str().is_empty() || x.starts_with(f)) {
            let rel = inner.strip_prefix(f).unwrap_or(inner);
            if !to.join(rel).as_os_str().is_empty() {
                copy_one(&b.ctx, inner, out, &to.join(rel), own)?;
            }
        }
        Ok(())
    }
}

/// `--chown=UID[:GID]` (numeric, or root).
fn chown(flag: Option<&str>) -> Result<(u32, u32)> {
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
fn copy_one(ctx: &Root, rel: &Path, stage: &Root, to: &Path, owner: (u32, u32)) -> Result<()> {
    let io = |e| Error::io("copy", rel, e);
    let (sdir, sname) = ctx.parent(rel, false).map_err(io)?;
    let (ddir, dname) = stage.parent(to, true).map_err(io)?;
    copy::entry(sdir.as_fd(), &sname, ddir.as_fd(), &dname, Some(owner)).map(drop).map_err(io)
}

/// COPY --from: `srcs` out of an image's merged root, resolved beneath it and copied
/// without following its symlinks (a stage's link to `/etc/shadow` stays a link).
fn copy_out_of(root: &Path, srcs: &[String], stage: &Root, target: &Path, dir_dest: bool, owner: Option<(u32, u32)>) -> Result<()> {
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
fn is_tar(f: &mut fs::File) -> bool {
    let mut magic = [0u8; 262];
    let n = std::io::Read::read(f, &mut magic).unwrap_or(0);
    (n >= 2 && magic[..2] == [0x1f, 0x8b]) || (n >= 262 && &magic[257..262] == b"ustar")
}
