//! Stages of a multi-stage build: the ARGs before the first FROM, each FROM (an image, an
//! earlier stage or scratch) and the finished stages that `FROM name` and `COPY --from`
//! refer to.

use std::collections::BTreeMap;

use parse_dockerfile::{ArgInstruction, FromInstruction};

use super::cache::next_key;
use super::run::Step;
use super::{at, Options};
use crate::error::Result;
use crate::image::instr::{self, expand};
use crate::image::{self, Image};
use crate::paths::Paths;

/// The build's stages so far.
#[derive(Default)]
pub(super) struct Stages {
    /// ARGs declared before the first FROM, usable in every FROM.
    global_args: BTreeMap<String, String>,
    /// Whether a FROM was seen (instructions other than ARG need one).
    pub(super) started: bool,
    /// Finished stages: name, last image.
    done: Vec<(Option<String>, Option<Image>)>,
    /// The current stage's name (`FROM x AS name`).
    name: Option<String>,
}

impl Stages {
    /// ARG: a variable of the stage, or a global one before the first FROM; its value
    /// from `--build-arg`, else its default.
    pub(super) fn arg(&mut self, o: &Options, st: &mut Step<'_>, a: &ArgInstruction<'_>) {
        for (k, default) in arg_pairs(&a.arguments.value) {
            let v = o.build_args.get(&k).cloned().or(default.map(|d| expand(&d, &st.vars))).unwrap_or_default();
            if self.started {
                st.vars.insert(k, v);
            } else {
                self.global_args.insert(k, v);
            }
        }
        st.key = next_key(&st.key, &format!("ARG {}", a.arguments.value));
    }

    /// FROM: ends the current stage and starts the next from an earlier stage by name, an
    /// image, or scratch.
    pub(super) fn from(&mut self, paths: &Paths, st: &mut Step<'_>, f: &FromInstruction<'_>, line: usize) -> Result<()> {
        if self.started {
            self.done.push((self.name.take(), st.cur.clone()));
        }
        self.started = true;
        self.name = f.as_.as_ref().map(|(_, n)| n.value.to_string());
        let name = expand(&f.image.value, &self.global_args);
        st.vars = self.global_args.clone();
        st.shell = instr::default_shell();
        if let Some((_, img)) = self.done.iter().rev().find(|(n, _)| n.as_deref() == Some(name.as_str())) {
            let img = img.clone().ok_or_else(|| at(line, format!("stage {name} built nothing to start from")))?;
            st.key = next_key("", &img.id);
            st.set(img).map_err(|e| at(line, e))
        } else if name == "scratch" {
            st.cur = None;
            st.cfg = image::commit::scratch_config();
            st.layers.clear();
            st.key = next_key("", "scratch");
            Ok(())
        } else {
            let img = image::get(paths, &name).map_err(|e| at(line, e))?;
            st.key = next_key("", &img.id);
            st.set(img).map_err(|e| at(line, e))
        }
    }

    /// `COPY --from=X`: a finished stage by name or index, else an image.
    pub(super) fn image(&self, paths: &Paths, from: &str, line: usize) -> Result<Image> {
        match self.done.iter().position(|(n, _)| n.as_deref() == Some(from)).or_else(|| from.parse::<usize>().ok()) {
            Some(i) => self
                .done
                .get(i)
                .and_then(|(_, img)| img.clone())
                .ok_or_else(|| at(line, format!("--from={from}: no such stage with an image"))),
            None => image::get(paths, from).map_err(|e| at(line, e)),
        }
    }
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
