//! `berth build`: a Dockerfile, step by step. Every filesystem-changing step (RUN, COPY,
//! ADD, WORKDIR) makes one layer; the others change the config. RUN runs in a confined
//! container on the default network; its writable layer becomes the step's layer. Each
//! step's result is cached under a key of its parent, the instruction (with variables
//! expanded) and, for COPY and ADD, the digest of what it copies.

mod cache;
mod context;
mod copy;
mod run;
mod stage;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use parse_dockerfile::Instruction;
use serde_json::json;

use self::cache::{cache_path, next_key};
use self::context::context_files;
use self::copy::CopyPlan;
use self::run::Step;
use self::stage::Stages;
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

/// One build under way: what was asked, the context, and the current stage.
pub(super) struct Build<'a> {
    paths: &'a Paths,
    o: &'a Options,
    /// The context's root, read beneath without following its symlinks out.
    ctx: Root,
    /// The context's files that .dockerignore lets in.
    files: Vec<PathBuf>,
    st: Step<'a>,
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
    let st = Step {
        paths,
        cur: None,
        cfg: json!({}),
        layers: Vec::new(),
        vars: BTreeMap::new(),
        shell: instr::default_shell(),
        key: String::new(),
    };
    let mut b = Build { paths, o, ctx, files, st };
    let mut stages = Stages::default();
    let total = df.instructions.len();
    for (n, ins) in df.instructions.iter().enumerate() {
        let line = line_of(&text, instruction_offset(ins));
        let src = text.lines().nth(line - 1).unwrap_or("").trim();
        writeln!(out, "STEP {}/{total}: {src}", n + 1).ok();
        match ins {
            Instruction::Arg(a) => stages.arg(o, &mut b.st, a),
            Instruction::From(f) => stages.from(paths, &mut b.st, f, line)?,
            _ if !stages.started => return Err(at(line, "the first instruction must be FROM (or ARG)")),
            _ => b.step(&stages, ins, line, src, out)?,
        }
    }
    let img = b.st.cur.clone().ok_or_else(|| Error::State("the Dockerfile built nothing (FROM scratch and no step)".into()))?;
    let mut named = img.clone();
    for t in &o.tags {
        named = store::tag(paths, &img, t)?;
    }
    writeln!(out, "Successfully built {}", short(&img)).ok();
    for t in &o.tags {
        writeln!(out, "Successfully tagged {}", super::normalize(t)).ok();
    }
    Ok(named)
}

/// An image's short ID, as the build prints it.
fn short(img: &Image) -> &str {
    let id = img.id.trim_start_matches("sha256:");
    &id[..12.min(id.len())]
}

impl Build<'_> {
    /// A step after FROM: its result from the cache (keyed by the parent, the
    /// instruction with its variables and what it copies) or made, then the stage's next
    /// image.
    fn step(&mut self, stages: &Stages, ins: &Instruction<'_>, line: usize, src: &str, out: &mut dyn Write) -> Result<()> {
        let mut key_text = format!("{src}\n{:?}", self.st.vars);
        let copy = match ins {
            Instruction::Copy(c) => Some(CopyPlan::new(self, stages, &c.src, &c.dest, &c.options, false, line, &mut key_text)?),
            Instruction::Add(a) => Some(CopyPlan::new(self, stages, &a.src, &a.dest, &a.options, true, line, &mut key_text)?),
            _ => None,
        };
        let key = next_key(&self.st.key, &key_text);
        let hit = (!self.o.no_cache)
            .then(|| fs::read_to_string(cache_path(self.paths, &key)).ok())
            .flatten()
            .and_then(|m| store::from_manifest(self.paths, m.trim()).ok());
        let img = match hit {
            Some(img) => {
                writeln!(out, " ---> Using cache {}", short(&img)).ok();
                img
            }
            None => {
                let img = self.execute(ins, copy.as_ref(), line, src)?;
                if let Some(m) = &img.manifest {
                    let cache = cache_path(self.paths, &key);
                    fs::create_dir_all(cache.parent().unwrap_or(&self.paths.lib)).map_err(|e| Error::io("create", &cache, e))?;
                    netd::state::write_atomic(&cache, m.as_bytes())?;
                }
                writeln!(out, " ---> {}", short(&img)).ok();
                img
            }
        };
        carry(&mut self.st, ins)?;
        self.st.set(img)?;
        self.st.key = key;
        Ok(())
    }

    /// Makes the step's image: a layer (RUN, COPY/ADD, WORKDIR) or a new config.
    fn execute(&self, ins: &Instruction<'_>, copy: Option<&CopyPlan>, line: usize, created_by: &str) -> Result<Image> {
        let st = &self.st;
        let mut cfg = st.cfg.clone();
        let layer = match ins {
            Instruction::Run(r) => {
                if !r.here_docs.is_empty() {
                    return Err(at(line, "here-documents in RUN are not supported yet"));
                }
                Some(st.run(instr::argv(&r.arguments, &st.shell)).map_err(|e| at(line, e))?)
            }
            Instruction::Copy(_) | Instruction::Add(_) => {
                let plan = copy.ok_or_else(|| Error::State("internal: COPY without its plan".into()))?;
                let workdir = st.cfg["config"]["WorkingDir"].as_str().unwrap_or("/");
                Some(plan.layer(self, workdir).map_err(|e| at(line, e))?)
            }
            Instruction::Workdir(_) => {
                instr::apply(&mut cfg, ins, &st.vars, &st.shell)?;
                let dir = cfg["config"]["WorkingDir"].as_str().unwrap_or("/");
                Some(self.workdir_layer(dir)?)
            }
            Instruction::Shell(s) => {
                cfg["config"]["Shell"] = json!(s.arguments.iter().map(|a| a.value.to_string()).collect::<Vec<_>>());
                None
            }
            Instruction::Maintainer(m) => {
                cfg["author"] = json!(m.name.value);
                None
            }
            other => {
                if !instr::apply(&mut cfg, other, &st.vars, &st.shell).map_err(|e| at(line, e))? {
                    return Err(at(line, format!("{created_by}: this instruction is not supported yet")));
                }
                None
            }
        };
        assemble_child(self.paths, st.layers.clone(), cfg, layer, created_by, "")
    }

    /// WORKDIR's layer: the directory, made.
    fn workdir_layer(&self, dir: &str) -> Result<store::Layer> {
        let scratch = crate::scratch::Scratch::dir(self.paths, "build")?;
        let made = scratch.as_path().join(crate::beneath::clean_in_root(dir));
        fs::create_dir_all(&made).map_err(|e| Error::io("create", &made, e))?;
        layer_from_dir(self.paths, scratch.as_path(), "Layer")
    }
}

/// What a step leaves for the following ones besides its image, whether it ran or came
/// from the cache: ENV's variables, SHELL's shell.
fn carry(st: &mut Step<'_>, ins: &Instruction<'_>) -> Result<()> {
    match ins {
        Instruction::Env(e) => {
            for (k, v) in instr::pairs(&e.arguments.value, true)? {
                let v = expand(&v, &st.vars);
                st.vars.insert(k, v);
            }
        }
        Instruction::Shell(s) => st.shell = s.arguments.iter().map(|a| a.value.to_string()).collect(),
        _ => {}
    }
    Ok(())
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
