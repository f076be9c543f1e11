//! A build stage's state (image, config, layers, variables, shell) and RUN: the command in
//! a one-off container of the current image, whose writable layer becomes the step's.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::container::{self, Container, Spec};
use crate::error::{Error, Result};
use crate::image::commit::{base, layer_from_dir};
use crate::image::instr;
use crate::image::{store, Image};
use crate::paths::Paths;

/// One stage as the build goes.
pub(super) struct Step<'a> {
    pub(super) paths: &'a Paths,
    pub(super) cur: Option<Image>,
    pub(super) cfg: Value,
    pub(super) layers: Vec<store::Layer>,
    pub(super) vars: BTreeMap<String, String>,
    pub(super) shell: Vec<String>,
    pub(super) key: String,
}

impl Step<'_> {
    pub(super) fn set(&mut self, img: Image) -> Result<()> {
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
    pub(super) fn run(&self, argv: Vec<String>) -> Result<store::Layer> {
        let img = self.cur.as_ref().ok_or_else(|| Error::State("RUN needs a base image with a shell (FROM scratch has none)".into()))?;
        let id = crate::container::id::random(32);
        let workdir = self.cfg["config"]["WorkingDir"].as_str().filter(|w| !w.is_empty()).unwrap_or("/").to_string();
        let user = self.cfg["config"]["User"].as_str().unwrap_or("").to_string();
        let spec = Spec::one_off(img, argv.clone(), self.run_env(), workdir, user, id[..12].to_string());
        let c = Container {
            id: id.clone(),
            name: format!("build_{}", &id[..12]),
            created: crate::clock::now(),
            spec,
            state: container::State::created(),
        };
        container::create(self.paths, &c)?;
        let res = (|| {
            let started = crate::process::monitor::start(self.paths, &c, false)?;
            let code = crate::process::monitor::supervise_foreground(self.paths, &c, started, None);
            if code != 0 {
                return Err(Error::State(format!("the command {argv:?} returned a non-zero code: {code}")));
            }
            layer_from_dir(self.paths, &self.paths.container(&id).join("upper"), "Layer")
        })();
        let _ = crate::process::monitor::remove_files(self.paths, &id);
        res
    }
}
