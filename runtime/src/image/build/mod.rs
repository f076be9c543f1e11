//! `berth build`: a Dockerfile, step by step. Every filesystem-changing step (RUN, COPY,
//! ADD, WORKDIR) makes one layer; the others change the config. RUN runs in a confined
//! container on the default network; its writable layer becomes the step's layer. Each
//! step's result is cached under a key of its parent, the instruction (with variables
//! expanded) and, for COPY and ADD, the digest of what it copies.

mod cache;
mod context;
mod copy;
mod run;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use parse_dockerfile::{Instruction, Source};
use serde_json::json;

use self::cache::{cache_path, next_key};
use self::context::{content_digest, context_files, context_stat, open_context_file};
use self::copy::{chown, copy_one, copy_out_of, is_tar};
use self::run::Step;
use super::commit::{assemble_child, layer_from_dir};
use super::instr::{self, expand};
use super::{store, Image};
use crate::beneath::Root;
use crate::error::{Error, Result};
use crate::paths::Paths;

pub use self::context::sources;

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
