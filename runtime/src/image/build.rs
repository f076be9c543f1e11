//! `berth build`: a Dockerfile, step by step. Every filesystem-changing step (RUN, COPY,
//! ADD, WORKDIR) makes one layer; the others change the config. RUN runs in a confined
//! container on the default network; its writable layer becomes the step's layer. Each
//! step's result is cached under a key of its parent, the instruction (with variables
//! expanded) and, for COPY and ADD, the digest of what it copies.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use globset::{GlobBuilder, GlobMatcher};
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use parse_dockerfile::{Instruction, Source};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::commit::{assemble_child, base, layer_from_dir};
use super::instr::{self, expand};
use super::unpack::hex;
use super::{store, Image};
use crate::beneath::{copy, Root};
use crate::container::{self, Container, Limits, NetMode, Spec, State};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// What `berth build` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The build context.
    pub context: PathBuf,
    /// The Dockerfile (default: `<context>/Dockerfile`).
    pub file: Option<PathBuf>,
    /// Names for the result.
    pub tags: Vec<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// Ignore the cache.
    pub no_cache: bool,
}

/// A build error naming the Dockerfile line.
fn at(line: usize, why: impl std::fmt::Display) -> Error {
    Error::State(format!("Dockerfile:{line}: {why}"))
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The context's files (relative paths, sorted) that `.dockerignore` does not exclude.
fn context_files(ctx: &Path, root: &Root) -> Result<Vec<PathBuf>> {
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
fn context_stat(root: &Root, rel: &Path) -> std::io::Result<FileStat> {
    if rel.as_os_str().is_empty() {
        return fstat(root.fd().as_raw_fd()).map_err(Into::into);
    }
    let (dir, name) = root.parent(rel, false)?;
    fstatat(Some(dir.as_raw_fd()), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(Into::into)
}

/// Opens regular file `name` of directory `dir` (a symlink there is refused).
fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<fs::File> {
    let fd = crate::beneath::open_at(dir, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK, Mode::empty())?;
    if fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(fs::File::from(fd))
}

/// Opens the regular file `rel` of the context (a symlink there is refused).
fn open_context_file(root: &Root, rel: &Path) -> std::io::Result<fs::File> {
    let (dir, name) = root.parent(rel, false)?;
    open_file_at(dir.as_fd(), &name)
}

fn read_context_file(root: &Root, rel: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut open_context_file(root, rel)?, &mut out)?;
    Ok(out)
}

/// Digest of what a COPY brings: names, modes and contents, in order.
fn content_digest(ctx: &Path, root: &Root, files: &[PathBuf], roots: &[PathBuf]) -> Result<String> {
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

struct Step<'a> {
    paths: &'a Paths,
    cur: Option<Image>,
    cfg: Value,
    layers: Vec<store::Layer>,
    vars: BTreeMap<String, String>,
    shell: Vec<String>,
    key: String,
}

impl Step<'_> {
    fn set(&mut self, img: Image) -> Result<()> {
        let (layers, cfg) = base(self.paths, Some(&img))?;
        self.layers = layers;
        self.cfg = cfg;
        self.cur = Some(img);
        Ok(())
    }

    fn run_env(&self) -> Vec<String> {
        let mut env: Vec<String> = instr::env_map(&self.cfg).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, v) in &self.vars {
            if !env.iter().any(|e| e.starts_with(&format!("{k}="))) {
                env.push(format!("{k}={v}"));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        env
    }

    /// Runs `argv` in a container of the current image; returns its writable layer.
    fn run(&self, argv: Vec<String>) -> Result<store::Layer> {
        let img = self.cur.as_ref().ok_or_else(|| Error::State("RUN needs a base image with a shell (FROM scratch has none)".into()))?;
        let id = crate::container::id::random(32);
        let spec = Spec {
            image: "build".into(),
            image_id: img.id.clone(),
            layers: img.layers.clone(),
            args: argv.clone(),
            env: self.run_env(),
            workdir: self.cfg["config"]["WorkingDir"].as_str().filter(|w| !w.is_empty()).unwrap_or("/").to_string(),
            user: self.cfg["config"]["User"].as_str().unwrap_or("").to_string(),
            hostname: id[..12].to_string(),
            dns: Vec::new(),
            volumes: Vec::new(),
            net: NetMode::Bridge("bridge".into()),
            ports: Vec::new(),
            limits: Limits::default(),
            auto_remove: false,
            interactive: false,
            tty: false,
            security: Default::default(),
            aliases: Vec::new(),
            ip: None,
            labels: BTreeMap::new(),
            stop_signal: None,
        };
        let state = State::created();
        let c = Container { id: id.clone(), name: format!("build_{}", &id[..12]), created: crate::clock::now(), spec, state };
        container::create(self.paths, &c)?;
        let res = (|| {
            let started = crate::process::monitor::start(self.paths, &c, None)?;
            let code = crate::process::monitor::supervise(self.paths, &c, started);
            if code != 0 {
                return Err(Error::State(format!("the command {argv:?} returned a non-zero code: {code}")));
            }
            layer_from_dir(self.paths, &self.paths.container(&id).join("upper"), "Layer")
        })();
        let _ = crate::process::monitor::remove_files(self.paths, &id);
        res
    }
}

fn cache_path(paths: &Paths, key: &str) -> PathBuf {
    paths.lib.join("build-cache").join(key)
}

fn next_key(parent: &str, text: &str) -> String {
    hex(&Sha256::digest(format!("{parent}\n{text}").as_bytes()))
}

/// Builds the image; progress and RUN output go to `out`.
pub fn build(paths: &Paths, o: &Options, out: &mut dyn Write) -> Result<Image> {
    let file = o.file.clone().unwrap_or_else(|| o.context.join("Dockerfile"));
    let text = fs::read_to_string(&file).map_err(|e| Error::io("read", &file, e))?;
    let df = parse_dockerfile::parse(&text).map_err(|e| Error::State(format!("Dockerfile:{}: {e:#}", e.line())))?;
    for t in &o.tags {
        super::checked_name(t).map_err(|why| Error::Flag { flag: "--tag", value: t.clone(), why })?;
    }
    if !o.context.is_dir() {
        return Err(Error::io("open build context", &o.context, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let ctx = Root::open(&o.context).map_err(|e| Error::io("open build context", &o.context, e))?;
    let files = context_files(&o.context, &ctx)?;
    let total = df.instructions.len();
    let mut st = Step {
        paths,
        cur: None,
        cfg: json!({}),
        layers: Vec::new(),
        vars: BTreeMap::new(),
        shell: instr::default_shell(),
        key: String::new(),
    };
    let mut global_args: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_from = false;
    // Finished stages (name, last image) for `FROM stage` and `COPY --from`.
    let mut stages: Vec<(Option<String>, Option<Image>)> = Vec::new();
    let mut stage_name: Option<String> = None;
    for (n, ins) in df.instructions.iter().enumerate() {
        let line = line_of(&text, instruction_offset(ins));
        let src = text.lines().nth(line - 1).unwrap_or("").trim().to_string();
        writeln!(out, "STEP {}/{total}: {src}", n + 1).ok();
        let x = |s: &str, st: &Step<'_>| expand(s, &st.vars);
        match ins {
            Instruction::Arg(a) => {
                for (k, default) in arg_pairs(&a.arguments.value) {
                    let v = o.build_args.get(&k).cloned().or(default.map(|d| expand(&d, &st.vars))).unwrap_or_default();
                    if seen_from {
                        st.vars.insert(k, v);
                    } else {
                        global_args.insert(k, v);
                    }
                }
                st.key = next_key(&st.key, &format!("ARG {}", a.arguments.value));
                continue;
            }
            Instruction::From(f) => {
                if seen_from {
                    stages.push((stage_name.take(), st.cur.clone()));
                }
                seen_from = true;
                stage_name = f.as_.as_ref().map(|(_, n)| n.value.to_string());
                let name = expand(&f.image.value, &global_args);
                st.vars = global_args.clone();
                st.shell = instr::default_shell();
                if let Some((_, img)) = stages.iter().rev().find(|(n, _)| n.as_deref() == Some(name.as_str())) {
                    let img = img.clone().ok_or_else(|| at(line, format!("stage {name} built nothing to start from")))?;
                    st.key = next_key("", &img.id);
                    st.set(img).map_err(|e| at(line, e))?;
                } else if name == "scratch" {
                    st.cur = None;
                    st.cfg = super::commit::scratch_config();
                    st.layers.clear();
                    st.key = next_key("", "scratch");
                } else {
                    let img = super::get(paths, &name).map_err(|e| at(line, e))?;
                    st.key = next_key("", &img.id);
                    st.set(img).map_err(|e| at(line, e))?;
                }
                continue;
            }
            _ if !seen_from => return Err(at(line, "the first instruction must be FROM (or ARG)")),
            _ => {}
        }
        // The step's cache key: parent, the instruction as it will run, what it copies.
        let mut key_text = format!("{src}\n{:?}", st.vars);
        let copy_roots = match ins {
            Instruction::Copy(c) => Some((&c.src, &c.dest, &c.options, false)),
            Instruction::Add(a) => Some((&a.src, &a.dest, &a.options, true)),
            _ => None,
        };
        let mut copy_plan = Vec::new();
        let mut copy_from: Option<(Image, Vec<String>)> = None;
        if let Some((srcs, _, opts, _)) = copy_roots {
            if let Some(from) = opts.iter().find(|f| f.name.value == "from").and_then(|f| f.value.as_ref()).map(|v| x(&v.value, &st)) {
                // A stage by name or index, else an image.
                let img = match stages.iter().position(|(n, _)| n.as_deref() == Some(from.as_str())).or_else(|| from.parse::<usize>().ok())
                {
                    Some(i) => stages
                        .get(i)
                        .and_then(|(_, img)| img.clone())
                        .ok_or_else(|| at(line, format!("--from={from}: no such stage with an image")))?,
                    None => super::get(paths, &from).map_err(|e| at(line, e))?,
                };
                let mut paths_from = Vec::new();
                for s in srcs.iter() {
                    let Source::Path(p) = s else { return Err(at(line, "here-documents in COPY are not supported yet")) };
                    let p = x(&p.value, &st);
                    if p.contains(['*', '?', '[']) {
                        return Err(at(line, format!("COPY --from with a glob ({p}) is not supported yet")));
                    }
                    paths_from.push(p);
                }
                key_text.push_str(&img.id);
                copy_from = Some((img, paths_from));
            }
        }
        if let (Some((srcs, _, _, _)), None) = (copy_roots, &copy_from) {
            for s in srcs.iter() {
                let Source::Path(p) = s else { return Err(at(line, "here-documents in COPY/ADD are not supported yet")) };
                let p = x(&p.value, &st);
                if p.contains("://") {
                    return Err(at(line, format!("ADD of a URL ({p}) is not supported; download it with RUN")));
                }
                let found = sources(&files, &p)?;
                if found.is_empty() {
                    return Err(at(line, format!("{src}: {p} not found in the build context (or excluded by .dockerignore)")));
                }
                copy_plan.push((p, found));
            }
            let roots: Vec<PathBuf> = copy_plan.iter().flat_map(|(_, f)| f.clone()).collect();
            key_text.push_str(&content_digest(&o.context, &ctx, &files, &roots)?);
        }
        let key = next_key(&st.key, &key_text);
        if !o.no_cache {
            let hit = fs::read_to_string(cache_path(paths, &key)).ok().and_then(|m| store::from_manifest(paths, m.trim()).ok());
            if let Some(img) = hit {
                writeln!(out, " ---> Using cache {}", &img.id.trim_start_matches("sha256:")[..12]).ok();
                apply_vars(&mut st, ins)?;
                st.set(img)?;
                st.key = key;
                continue;
            }
        }
        let created_by = src.clone();
        let img = match ins {
            Instruction::Run(r) => {
                if !r.here_docs.is_empty() {
                    return Err(at(line, "here-documents in RUN are not supported yet"));
                }
                let argv = instr::argv(&r.arguments, &st.shell);
                let layer = st.run(argv).map_err(|e| at(line, e))?;
                assemble_child(paths, st.layers.clone(), st.cfg.clone(), Some(layer), &created_by, "")?
            }
            Instruction::Copy(_) | Instruction::Add(_) => {
                let Some((_, dest, opts, is_add)) = copy_roots else { return Err(Error::State("internal: COPY without its plan".into())) };
                let own = chown(opts.iter().find(|f| f.name.value == "chown").and_then(|f| f.value.as_ref()).map(|v| v.value.as_ref()))
                    .map_err(|e| at(line, e))?;
                let dest = x(&dest.value, &st);
                let workdir = st.cfg["config"]["WorkingDir"].as_str().unwrap_or("/").to_string();
                let abs = if dest.starts_with('/') { dest.clone() } else { format!("{}/{dest}", workdir.trim_end_matches('/')) };
                let dir_dest = dest.ends_with('/')
                    || copy_plan.iter().map(|(_, f)| f.len()).sum::<usize>() > 1
                    || copy_from.as_ref().is_some_and(|(_, s)| s.len() > 1);
                let scratch = crate::scratch::Scratch::dir(paths, "build")?;
                let stage = scratch.as_path();
                let res = (|| {
                    let out = Root::open(stage).map_err(|e| Error::io("open", stage, e))?;
                    let target = crate::beneath::clean_in_root(&abs);
                    if let Some((img, srcs)) = &copy_from {
                        let owner = opts.iter().any(|f| f.name.value == "chown").then_some(own);
                        super::root::with_root(paths, img, |root| copy_out_of(root, srcs, &out, &target, dir_dest, owner))?;
                    }
                    for (pattern, found) in &copy_plan {
                        for f in found {
                            let from = o.context.join(f);
                            let st = context_stat(&ctx, f).map_err(|e| Error::io("stat", &from, e))?;
                            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                            // A directory source copies its contents; a glob match of a
                            // directory, the directory itself.
                            let to = if is_dir && !pattern.contains(['*', '?', '[']) {
                                target.clone()
                            } else if dir_dest || is_dir {
                                target.join(f.file_name().unwrap_or_default())
                            } else {
                                target.clone()
                            };
                            // ADD unpacks a regular file of the context that is an
                            // archive, read through the descriptor opened here (a
                            // symlink to a host archive is copied as a link instead).
                            let tar = if is_add && st.st_mode & libc::S_IFMT == libc::S_IFREG {
                                let mut file = open_context_file(&ctx, f).map_err(|e| Error::io("open", &from, e))?;
                                is_tar(&mut file).then_some(file)
                            } else {
                                None
                            };
                            if let Some(file) = tar {
                                let into = out.dir(&target, true).map_err(|e| Error::io("create", &abs, e))?;
                                let (src, dst) = (crate::beneath::fd_path(&file), crate::beneath::fd_path(&into));
                                super::unpack::unpack_layer(&src, &dst, &mut |_| {})?;
                            } else if is_dir {
                                // Only what .dockerignore lets in.
                                out.dir(&to, true).map_err(|e| Error::io("create", &abs, e))?;
                                for inner in files.iter().filter(|x| f.as_os_str().is_empty() || x.starts_with(f)) {
                                    let rel = inner.strip_prefix(f).unwrap_or(inner);
                                    if !to.join(rel).as_os_str().is_empty() {
                                        copy_one(&ctx, inner, &out, &to.join(rel), own)?;
                                    }
                                }
                            } else {
                                copy_one(&ctx, f, &out, &to, own)?;
                            }
                        }
                    }
                    layer_from_dir(paths, stage, "Layer")
                })();
                drop(scratch);
                let layer = res.map_err(|e| at(line, e))?;
                assemble_child(paths, st.layers.clone(), st.cfg.clone(), Some(layer), &created_by, "")?
            }
            Instruction::Workdir(_) => {
                let mut cfg = st.cfg.clone();
                instr::apply(&mut cfg, ins, &st.vars, &st.shell)?;
                let dir = cfg["config"]["WorkingDir"].as_str().unwrap_or("/").to_string();
                let scratch = crate::scratch::Scratch::dir(paths, "build")?;
                let made = scratch.as_path().join(crate::beneath::clean_in_root(&dir));
                let res = fs::create_dir_all(&made)
                    .map_err(|e| Error::io("create", &made, e))
                    .and_then(|_| layer_from_dir(paths, scratch.as_path(), "Layer"));
                drop(scratch);
                let layer = res?;
                assemble_child(paths, st.layers.clone(), cfg, Some(layer), &created_by, "")?
            }
            Instruction::Shell(s) => {
                st.shell = s.arguments.iter().map(|a| a.value.to_string()).collect();
                let mut cfg = st.cfg.clone();
                cfg["config"]["Shell"] = json!(st.shell);
                assemble_child(paths, st.layers.clone(), cfg, None, &created_by, "")?
            }
            Instruction::Maintainer(m) => {
                let mut cfg = st.cfg.clone();
                cfg["author"] = json!(m.name.value);
                assemble_child(paths, st.layers.clone(), cfg, None, &created_by, "")?
            }
            other => {
                let mut cfg = st.cfg.clone();
                if !instr::apply(&mut cfg, other, &st.vars, &st.shell).map_err(|e| at(line, e))? {
                    return Err(at(line, format!("{src}: this instruction is not supported yet")));
                }
                assemble_child(paths, st.layers.clone(), cfg, None, &created_by, "")?
            }
        };
        let cache = cache_path(paths, &key);
        if let Some(m) = &img.manifest {
            fs::create_dir_all(cache.parent().unwrap_or(&paths.lib)).map_err(|e| Error::io("create", &cache, e))?;
            netd::state::write_atomic(&cache, m.as_bytes())?;
        }
        writeln!(out, " ---> {}", &img.id.trim_start_matches("sha256:")[..12]).ok();
        apply_vars(&mut st, ins)?;
        st.set(img)?;
        st.key = key;
    }
    let img = st.cur.clone().ok_or_else(|| Error::State("the Dockerfile built nothing (FROM scratch and no step)".into()))?;
    let mut named = img.clone();
    for t in &o.tags {
        named = store::tag(paths, &img, t)?;
    }
    writeln!(out, "Successfully built {}", &img.id.trim_start_matches("sha256:")[..12]).ok();
    for t in &o.tags {
        writeln!(out, "Successfully tagged {}", super::normalize(t)).ok();
    }
    Ok(named)
}

/// ENV also defines variables for the following instructions.
fn apply_vars(st: &mut Step<'_>, ins: &Instruction<'_>) -> Result<()> {
    if let Instruction::Env(e) = ins {
        for (k, v) in instr::pairs(&e.arguments.value, true)? {
            let v = expand(&v, &st.vars);
            st.vars.insert(k, v);
        }
    }
    Ok(())
}

/// `ARG A=1 B` as (name, default).
fn arg_pairs(text: &str) -> Vec<(String, Option<String>)> {
    instr::words(text)
        .unwrap_or_default()
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

fn instruction_offset(ins: &Instruction<'_>) -> usize {
    match ins {
        Instruction::Add(i) => i.add.span.start,
        Instruction::Arg(i) => i.arg.span.start,
        Instruction::Cmd(i) => i.cmd.span.start,
        Instruction::Copy(i) => i.copy.span.start,
        Instruction::Entrypoint(i) => i.entrypoint.span.start,
        Instruction::Env(i) => i.env.span.start,
        Instruction::Expose(i) => i.expose.span.start,
        Instruction::From(i) => i.from.span.start,
        Instruction::Healthcheck(i) => i.healthcheck.span.start,
        Instruction::Label(i) => i.label.span.start,
        Instruction::Maintainer(i) => i.maintainer.span.start,
        Instruction::Onbuild(i) => i.onbuild.span.start,
        Instruction::Run(i) => i.run.span.start,
        Instruction::Shell(i) => i.shell.span.start,
        Instruction::Stopsignal(i) => i.stopsignal.span.start,
        Instruction::User(i) => i.user.span.start,
        Instruction::Volume(i) => i.volume.span.start,
        Instruction::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}
