//! New images from old ones: a layer from a directory of changes (a container's upper
//! directory, a build step's) on top of a parent image, with one history entry.

use std::path::Path;

use serde_json::{json, Value};

use super::{diff, store, Image};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// The config of a new image with no parent (`FROM scratch`).
pub fn scratch_config() -> Value {
    json!({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
}

/// The layers and config a child of `parent` starts from.
pub fn base(paths: &Paths, parent: Option<&Image>) -> Result<(Vec<store::Layer>, Value)> {
    match parent {
        Some(p) => {
            let cfg = store::config(paths, p)?;
            Ok((store::layers_with(paths, p, &cfg)?, cfg))
        }
        None => Ok((Vec::new(), scratch_config())),
    }
}

fn push_history(cfg: &mut Value, created_by: &str, comment: &str, empty: bool) {
    let mut h = json!({"created": netd::clock::rfc3339(crate::clock::now()), "created_by": created_by});
    if !comment.is_empty() {
        h["comment"] = json!(comment);
    }
    if empty {
        h["empty_layer"] = json!(true);
    }
    if !cfg["history"].is_array() {
        cfg["history"] = json!([]);
    }
    if let Some(a) = cfg["history"].as_array_mut() {
        a.push(h);
    }
}

/// Adds the changes in `dir` (overlay upper-directory form: whiteouts as 0:0 character
/// devices) as a layer.
pub fn layer_from_dir(paths: &Paths, dir: &Path, label: &str) -> Result<store::Layer> {
    let tar = crate::scratch::Scratch(crate::scratch::Scratch::path(paths, "layer"));
    diff::write_layer(dir, tar.as_path()).and_then(|()| store::put_layer(paths, tar.as_path(), None, label))
}

/// A new (unnamed) image: `layers` + optionally `new` on top, config `cfg` with a history
/// entry saying `created_by`.
pub fn assemble_child(
    paths: &Paths,
    mut layers: Vec<store::Layer>,
    mut cfg: Value,
    new: Option<store::Layer>,
    created_by: &str,
    comment: &str,
) -> Result<Image> {
    push_history(&mut cfg, created_by, comment, new.is_none());
    if let Some(l) = new {
        if !cfg["rootfs"]["diff_ids"].is_array() {
            cfg["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        if let Some(a) = cfg["rootfs"]["diff_ids"].as_array_mut() {
            a.push(json!(l.diff_id));
        }
        layers.push(l);
    }
    store::assemble(paths, &layers, &store::config_bytes(cfg))
}

/// `berth commit`: the container's changes on top of its image, `changes` (Dockerfile
/// lines) applied to the config, named `name` if given.
pub fn commit(paths: &Paths, container: &str, name: Option<&str>, message: &str, changes: &[String]) -> Result<Image> {
    let c = crate::container::lookup(paths, container)?;
    let parent = super::get(paths, &c.spec.image_id).or_else(|_| super::get(paths, &c.spec.image))?;
    let (layers, mut cfg) = base(paths, Some(&parent))?;
    // The container's own settings become the image's, as Docker's commit does.
    cfg["config"]["Env"] = json!(c.spec.env);
    super::instr::apply_changes(&mut cfg, changes)?;
    if let Some(n) = name {
        super::checked_name(n).map_err(|why| Error::Flag { flag: "image name", value: n.to_string(), why })?;
    }
    let upper = paths.container(&c.id).join("upper");
    // The container is frozen while its changes are read, as Docker pauses it, so it
    // cannot swap what the walk is reading; the walk never follows its symlinks either.
    let cgroup = crate::cgroups::Cgroup::existing(&c.id);
    // A paused container stays paused: it is frozen already, and not thawed after.
    let frozen = match c.alive() && !cgroup.frozen() {
        true => match cgroup.freeze() {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(container = %c.name, error = %e, "committing without freezing the container");
                None
            }
        },
        false => None,
    };
    let layer = layer_from_dir(paths, &upper, "Committing");
    drop(frozen);
    let layer = layer?;
    let img = assemble_child(paths, layers, cfg, Some(layer), &format!("berth commit {}", c.name), message)?;
    match name {
        Some(n) => store::tag(paths, &img, n),
        None => store::tag(paths, &img, &img.id.trim_start_matches("sha256:")[..12]),
    }
}
