//! `berth import` (a plain root filesystem tarball) and `berth load` (a `docker save`
//! archive or an OCI image layout archive).

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use serde_json::json;

use super::unpack::{file_digest, open_tar};
use super::{store, Image, RunConfig};
use crate::clock::now;
use crate::error::{Error, Result};
use crate::paths::Paths;
use netd::clock::rfc3339;

/// Imports a root filesystem tarball as a one-layer image named `name`.
pub fn import(paths: &Paths, tarball: &Path, name: &str) -> Result<Image> {
    let name = super::checked_name(name).map_err(|why| Error::Flag { flag: "image name", value: name.to_string(), why })?;
    if !tarball.is_file() {
        return Err(Error::io("open", tarball, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let layer = store::put_layer(paths, tarball, None, "Importing")?;
    let run = RunConfig { env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()], ..Default::default() };
    let cfg = json!({
        "architecture": "amd64", "os": "linux",
        "config": store::config_section(&run),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": rfc3339(now()), "created_by": format!("berth import {}", tarball.display()), "comment": "imported from a root filesystem tarball"}],
    });
    let img = store::assemble(paths, &[layer], &store::config_bytes(cfg))?;
    store::tag(paths, &img, &name)
}

/// An archive's name for a member, normalised ("./a//b" is "a/b"); `None` for a name
/// that is absolute or climbs out with `..` (no member can have it).
fn member_name(p: &Path) -> Option<String> {
    if p.is_absolute() {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().to_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// The regular members of an outer archive, copied flat into a scratch directory and
/// found only by their in-archive names: a manifest naming `../x`, an absolute path
/// or a symlink leading out of the archive finds nothing. Symlinks and hard links
/// between members are followed inside the archive's own name space.
struct Members {
    files: HashMap<String, PathBuf>,
    links: HashMap<String, String>,
    archive: PathBuf,
}

impl Members {
    fn read(archive: &Path, scratch: &Path) -> Result<Self> {
        let bad = |why: String| Error::BadArchive { path: archive.into(), why };
        let mut m = Members { files: HashMap::new(), links: HashMap::new(), archive: archive.to_path_buf() };
        let mut outer = tar::Archive::new(open_tar(archive)?);
        for (i, entry) in outer.entries().map_err(|e| bad(e.to_string()))?.enumerate() {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
            let Some(name) = member_name(&path) else { continue };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let dst = scratch.join(format!("m{i}"));
                let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&dst).map_err(|e| Error::io("create", &dst, e))?;
                std::io::copy(&mut entry, &mut f).map_err(|e| bad(format!("{name}: {e}")))?;
                m.files.insert(name, dst);
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Ok(Some(target)) = entry.link_name() else { continue };
                // A symlink is relative to its own directory, a hard link to the root.
                let base =
                    if kind.is_symlink() { Path::new(&name).parent().unwrap_or(Path::new("")).join(&target) } else { target.into_owned() };
                if let Some(t) = member_name(&base) {
                    m.links.insert(name, t);
                }
            }
        }
        Ok(m)
    }

    /// The file of member `name`, following in-archive links (at most 16).
    fn get(&self, name: &str) -> Result<&Path> {
        let missing = || Error::BadArchive { path: self.archive.clone(), why: format!("no member {name:?} in the archive") };
        let mut cur = member_name(Path::new(name)).ok_or_else(missing)?;
        for _ in 0..16 {
            if let Some(p) = self.files.get(&cur) {
                return Ok(p);
            }
            cur = self.links.get(&cur).ok_or_else(missing)?.clone();
        }
        Err(missing())
    }

    fn json(&self, name: &str) -> Result<Value> {
        let path = self.get(name)?;
        let data = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&data).map_err(|e| Error::BadArchive { path: self.archive.clone(), why: format!("{name}: {e}") })
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Loads every image of a `docker save` or OCI layout archive; returns them.
pub fn load(paths: &Paths, archive: &Path) -> Result<Vec<Image>> {
    if !archive.is_file() {
        return Err(Error::io("open", archive, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    // A random name: the daemon may load two archives at once.
    let scratch = crate::scratch::Scratch::dir(paths, "load")?;
    let members = Members::read(archive, &scratch.0)?;
    if members.get("manifest.json").is_ok() {
        load_docker(paths, &members)
    } else if members.get("index.json").is_ok() {
        load_oci(paths, &members)
    } else {
        Err(Error::BadArchive { path: archive.into(), why: "neither manifest.json (docker save) nor index.json (OCI layout) found".into() })
    }
}

/// Stores and unpacks the layers (`expected` digests are verified when given).
fn store_layers(paths: &Paths, files: &[(&Path, Option<&str>)], archive: &Path) -> Result<Vec<store::Layer>> {
    let mut out = Vec::new();
    for (i, (f, expected)) in files.iter().enumerate() {
        let l = store::put_layer(paths, f, *expected, &format!("Loading layer {}/{}", i + 1, files.len())).map_err(|e| match e {
            Error::BadArchive { why, .. } => Error::BadArchive { path: archive.into(), why: format!("layer {why}") },
            e => e,
        })?;
        out.push(l);
    }
    Ok(out)
}

fn read_bytes(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).map_err(|e| Error::io("read", p, e))
}

fn load_docker(paths: &Paths, members: &Members) -> Result<Vec<Image>> {
    let archive = members.archive.as_path();
    let manifest = members.json("manifest.json")?;
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
        members.json(cfg_name)?;
        let names = strings(m.get("Layers"));
        let layers: Vec<(&Path, Option<&str>)> = names.iter().map(|l| members.get(l).map(|p| (p, None))).collect::<Result<_>>()?;
        let layers = store_layers(paths, &layers, archive)?;
        let img = store::assemble(paths, &layers, &read_bytes(members.get(cfg_name)?)?)?;
        let mut names = strings(m.get("RepoTags"));
        if names.is_empty() {
            names.push(img.id.trim_start_matches("sha256:").chars().take(12).collect());
        }
        for name in names {
            out.push(store::tag(paths, &img, &image_name(&name, archive)?)?);
        }
    }
    Ok(out)
}

/// A digest as the OCI spec writes it, checked: `sha256:` and 64 lowercase hex digits.
fn checked_digest<'a>(d: &'a str, archive: &Path) -> Result<&'a str> {
    match d.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(d),
        _ => Err(Error::BadArchive { path: archive.into(), why: format!("invalid digest {d:?} (sha256:<64 hex>)") }),
    }
}

/// The blob with this digest, verified.
fn blob<'m>(members: &'m Members, digest: &str) -> Result<&'m Path> {
    let d = checked_digest(digest, &members.archive)?;
    let path = members.get(&format!("blobs/sha256/{}", &d[7..]))?;
    let got = file_digest(path)?;
    if got != d {
        return Err(Error::BadArchive { path: members.archive.clone(), why: format!("blob {d} has digest {got}") });
    }
    Ok(path)
}

fn blob_json(members: &Members, digest: &str) -> Result<Value> {
    let p = blob(members, digest)?;
    let data = fs::read(p).map_err(|e| Error::io("read", p, e))?;
    serde_json::from_slice(&data).map_err(|e| Error::BadArchive { path: members.archive.clone(), why: format!("{digest}: {e}") })
}

fn load_oci(paths: &Paths, members: &Members) -> Result<Vec<Image>> {
    let archive = members.archive.as_path();
    let index = members.json("index.json")?;
    let mut out = Vec::new();
    for desc in index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default() {
        let digest = desc.get("digest").and_then(Value::as_str).unwrap_or("");
        let manifest = blob_json(members, digest)?;
        let cfg_digest = checked_digest(manifest.pointer("/config/digest").and_then(Value::as_str).unwrap_or(""), archive)?;
        blob_json(members, cfg_digest)?;
        let layer_digests: Vec<&str> = manifest
            .get("layers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|l| l.get("digest").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        let mut layers = Vec::new();
        for d in &layer_digests {
            let d = checked_digest(d, archive)?;
            layers.push((members.get(&format!("blobs/sha256/{}", &d[7..]))?, Some(d)));
        }
        let layers = store_layers(paths, &layers, archive)?;
        let ann = desc.get("annotations");
        let name = ann
            .and_then(|a| a.get("io.containerd.image.name").or_else(|| a.get("org.opencontainers.image.ref.name")))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| cfg_digest.trim_start_matches("sha256:").chars().take(12).collect());
        let img = store::assemble(paths, &layers, &read_bytes(blob(members, cfg_digest)?)?)?;
        out.push(store::tag(paths, &img, &image_name(&name, archive)?)?);
    }
    if out.is_empty() {
        return Err(Error::BadArchive { path: archive.into(), why: "index.json lists no manifest".into() });
    }
    Ok(out)
}

/// An image name from an archive, validated like one typed on the command line.
fn image_name(name: &str, archive: &Path) -> Result<String> {
    super::checked_name(name).map_err(|why| Error::BadArchive { path: archive.into(), why })
}
