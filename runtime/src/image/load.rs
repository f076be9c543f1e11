//! `berth import` (a plain root filesystem tarball) and `berth load` (a `docker save`
//! archive or an OCI image layout archive).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::unpack::{file_digest, open_tar};
use super::{ensure_layer, exposed, normalize, save, Image, RunConfig};
use crate::clock::now;
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Imports a root filesystem tarball as a one-layer image named `name`.
pub fn import(paths: &Paths, tarball: &Path, name: &str) -> Result<Image> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(Error::Invalid(format!("invalid image name {name:?}")));
    }
    if !tarball.is_file() {
        return Err(Error::Invalid(format!("{}: no such file", tarball.display())));
    }
    let digest = file_digest(tarball)?;
    ensure_layer(paths, tarball, &digest, "Importing")?;
    let img = Image {
        name: normalize(name),
        id: digest.clone(),
        layers: vec![digest],
        config: RunConfig { env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()], ..Default::default() },
        created: now(),
    };
    save(paths, &img)?;
    Ok(img)
}

/// A temporary directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read_json(path: &Path, archive: &Path) -> Result<Value> {
    let data = fs::read(path).map_err(|_| Error::BadArchive {
        path: archive.into(),
        why: format!("missing {}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()),
    })?;
    serde_json::from_slice(&data).map_err(|e| Error::BadArchive { path: archive.into(), why: format!("{}: {e}", path.display()) })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The run defaults from an image config document (Docker and OCI share the shape).
fn run_config(doc: &Value) -> RunConfig {
    let c = doc.get("config").or_else(|| doc.get("Config")).cloned().unwrap_or_default();
    RunConfig {
        env: strings(c.get("Env")),
        cmd: strings(c.get("Cmd")),
        entrypoint: strings(c.get("Entrypoint")),
        working_dir: c.get("WorkingDir").and_then(Value::as_str).unwrap_or("").to_string(),
        exposed_ports: exposed(c.get("ExposedPorts")),
        user: c.get("User").and_then(Value::as_str).unwrap_or("").to_string(),
    }
}

/// Loads every image of a `docker save` or OCI layout archive; returns them.
pub fn load(paths: &Paths, archive: &Path) -> Result<Vec<Image>> {
    if !archive.is_file() {
        return Err(Error::Invalid(format!("{}: no such file", archive.display())));
    }
    let scratch = Scratch(paths.lib.join(format!("tmp/load-{}", std::process::id())));
    fs::create_dir_all(&scratch.0).map_err(|e| Error::io("create", &scratch.0, e))?;
    let mut outer = tar::Archive::new(open_tar(archive)?);
    outer.unpack(&scratch.0).map_err(|e| Error::BadArchive { path: archive.into(), why: e.to_string() })?;
    let dir = &scratch.0;
    if dir.join("manifest.json").is_file() {
        load_docker(paths, archive, dir)
    } else if dir.join("index.json").is_file() {
        load_oci(paths, archive, dir)
    } else {
        Err(Error::BadArchive { path: archive.into(), why: "neither manifest.json (docker save) nor index.json (OCI layout) found".into() })
    }
}

fn store_layers(paths: &Paths, files: &[PathBuf], archive: &Path) -> Result<Vec<String>> {
    let mut digests = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if !f.is_file() {
            return Err(Error::BadArchive { path: archive.into(), why: format!("missing layer {}", f.display()) });
        }
        let d = file_digest(f)?;
        ensure_layer(paths, f, &d, &format!("Loading layer {}/{}", i + 1, files.len()))?;
        digests.push(d);
    }
    Ok(digests)
}

fn load_docker(paths: &Paths, archive: &Path, dir: &Path) -> Result<Vec<Image>> {
    let manifest = read_json(&dir.join("manifest.json"), archive)?;
    let entries = manifest.as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return Err(Error::BadArchive { path: archive.into(), why: "manifest.json lists no image".into() });
    }
    let mut out = Vec::new();
    for m in entries {
        let cfg_name = m
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadArchive { path: archive.into(), why: "manifest entry without Config".into() })?;
        let cfg_path = dir.join(cfg_name);
        let cfg = read_json(&cfg_path, archive)?;
        let layers: Vec<PathBuf> = strings(m.get("Layers")).iter().map(|l| dir.join(l)).collect();
        let digests = store_layers(paths, &layers, archive)?;
        let id = file_digest(&cfg_path)?;
        let mut names = strings(m.get("RepoTags"));
        if names.is_empty() {
            names.push(id.trim_start_matches("sha256:").chars().take(12).collect());
        }
        for name in names {
            let img = Image { name: normalize(&name), id: id.clone(), layers: digests.clone(), config: run_config(&cfg), created: now() };
            save(paths, &img)?;
            out.push(img);
        }
    }
    Ok(out)
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    dir.join("blobs").join(alg).join(hex)
}

fn load_oci(paths: &Paths, archive: &Path, dir: &Path) -> Result<Vec<Image>> {
    let index = read_json(&dir.join("index.json"), archive)?;
    let mut out = Vec::new();
    for desc in index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default() {
        let digest = desc.get("digest").and_then(Value::as_str).unwrap_or("");
        let manifest = read_json(&blob(dir, digest), archive)?;
        let cfg_digest = manifest.pointer("/config/digest").and_then(Value::as_str).unwrap_or("");
        let cfg = read_json(&blob(dir, cfg_digest), archive)?;
        let layers: Vec<PathBuf> = manifest
            .get("layers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|l| l.get("digest").and_then(Value::as_str)).map(|d| blob(dir, d)).collect())
            .unwrap_or_default();
        let digests = store_layers(paths, &layers, archive)?;
        let ann = desc.get("annotations");
        let name = ann
            .and_then(|a| a.get("io.containerd.image.name").or_else(|| a.get("org.opencontainers.image.ref.name")))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| cfg_digest.trim_start_matches("sha256:").chars().take(12).collect());
        let img = Image { name: normalize(&name), id: cfg_digest.to_string(), layers: digests, config: run_config(&cfg), created: now() };
        save(paths, &img)?;
        out.push(img);
    }
    if out.is_empty() {
        return Err(Error::BadArchive { path: archive.into(), why: "index.json lists no manifest".into() });
    }
    Ok(out)
}
