//! Images: records naming their layers (bottom first) and run defaults; layers unpacked
//! once under `layers/<digest>` and shared by every image and container that uses them.

pub mod build;
pub mod commit;
pub mod diff;
pub mod instr;
mod load;
pub mod registry;
pub mod root;
pub mod save;
pub mod store;
pub mod unpack;

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::paths::Paths;

pub use load::{import, load};

/// The run defaults an image carries (the OCI/Docker image config subset berth uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Environment, "K=V".
    #[serde(default)]
    pub env: Vec<String>,
    /// Default command.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Entrypoint, prepended to the command.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Working directory.
    #[serde(default)]
    pub working_dir: String,
    /// Exposed ports, "80/tcp".
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// User, `uid[:gid]` or a name.
    #[serde(default)]
    pub user: String,
    /// Labels, which containers inherit.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// STOPSIGNAL.
    #[serde(default)]
    pub stop_signal: String,
}

/// A stored image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// "name:tag".
    pub name: String,
    /// Content ID ("sha256:...").
    pub id: String,
    /// Layer digests, bottom first.
    pub layers: Vec<String>,
    /// Run defaults.
    pub config: RunConfig,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    /// The digest of its manifest blob (`None` for images stored before berth kept them).
    #[serde(default)]
    pub manifest: Option<String>,
}

/// Adds ":latest" to a name without a tag.
pub fn normalize(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Validates an image reference ([`netd::name::Kind::Image`]) and adds ":latest"; the
/// error says why it is refused.
pub fn checked_name(name: &str) -> std::result::Result<String, String> {
    netd::name::Name::image(name).map(|n| normalize(n.as_str())).map_err(|e| e.to_string())
}

fn record_path(paths: &Paths, name: &str) -> PathBuf {
    let file: String = normalize(name).chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    paths.images().join(format!("{file}.json"))
}

/// Loads an image by name (tag optional) or by ID prefix.
pub fn get(paths: &Paths, name: &str) -> Result<Image> {
    let p = record_path(paths, name);
    if let Ok(data) = fs::read(&p) {
        return serde_json::from_slice(&data).map_err(|e| Error::Record { path: p.clone(), why: format!("image {name}: {e}") });
    }
    let want = name.trim_start_matches("sha256:");
    if want.len() >= 4 {
        if let Some(img) = list(paths)?.into_iter().find(|i| i.id.trim_start_matches("sha256:").starts_with(want)) {
            return Ok(img);
        }
    }
    Err(Error::NoImage(name.to_string()))
}

/// Every image.
pub fn list(paths: &Paths) -> Result<Vec<Image>> {
    let dir = paths.images();
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Image> = rd
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|d| serde_json::from_slice(&d).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Stores an image record atomically.
pub fn save(paths: &Paths, img: &Image) -> Result<()> {
    let data = serde_json::to_vec_pretty(img).map_err(|e| Error::Record { path: record_path(paths, &img.name), why: e.to_string() })?;
    Ok(netd::state::write_atomic(&record_path(paths, &img.name), &data)?)
}

/// Removes an image record, then every layer that no remaining image and none of
/// `in_use` (layers of existing containers) needs.
pub fn remove(paths: &Paths, name: &str, in_use: &[String]) -> Result<Image> {
    let img = get(paths, name)?;
    let p = record_path(paths, &img.name);
    fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
    let others = list(paths)?;
    let mut used: Vec<String> = others.iter().flat_map(|i| i.layers.clone()).collect();
    used.extend(in_use.iter().cloned());
    for l in img.layers.iter().filter(|l| !used.contains(l)) {
        let _ = fs::remove_dir_all(layer_dir(paths, l));
        let _ = fs::remove_file(store::blob_path(paths, l));
    }
    // Its config and manifest go with the last name of the image (a build cache entry
    // whose blobs are gone is a miss).
    if let Some(m) = img.manifest.as_ref().filter(|_| !others.iter().any(|o| o.id == img.id)) {
        let _ = fs::remove_file(store::blob_path(paths, m));
        let _ = fs::remove_file(store::blob_path(paths, &img.id));
    }
    Ok(img)
}

/// `rmi` as Docker does it: a name of an image that has others is only untagged, even
/// while a container uses the image; the last name of an image a container uses is
/// refused unless `force`. Layers a container or another image needs stay.
pub fn delete(paths: &Paths, name: &str, force: bool) -> Result<Image> {
    let img = get(paths, name)?;
    let containers = crate::container::all(paths)?;
    let last_name = !list(paths)?.iter().any(|o| o.id == img.id && o.name != img.name);
    if last_name && !force {
        if let Some(c) = containers.iter().find(|c| c.spec.image_id == img.id) {
            return Err(Error::ImageInUse { image: img.name.clone(), container: c.name.clone() });
        }
    }
    let in_use: Vec<String> = containers.into_iter().flat_map(|c| c.spec.layers).collect();
    remove(paths, &img.name, &in_use)
}

/// `image prune`: with `all`, every image no container uses is deleted (as `rmi`), each
/// name of it; without, only dangling images would be, and berth keeps none (an image
/// is a record under a name; a name given to another image replaces it). Returns the
/// names deleted, the IDs gone with their last name, and the bytes of the layers freed.
pub fn prune(paths: &Paths, all: bool) -> Result<(Vec<String>, Vec<String>, u64)> {
    let (mut untagged, mut deleted, mut freed) = (Vec::new(), Vec::new(), 0);
    if !all {
        return Ok((untagged, deleted, freed));
    }
    let used: Vec<String> = crate::container::all(paths)?.into_iter().map(|c| c.spec.image_id).collect();
    for img in list(paths)?.into_iter().filter(|i| !used.contains(&i.id)) {
        let sizes: Vec<(String, u64)> =
            img.layers.iter().map(|l| (l.clone(), fs::metadata(store::blob_path(paths, l)).map(|m| m.len()).unwrap_or(0))).collect();
        let gone = delete(paths, &img.name, false)?;
        freed += sizes.iter().filter(|(l, _)| !store::blob_path(paths, l).exists()).map(|(_, n)| n).sum::<u64>();
        untagged.push(gone.name.clone());
        if !list(paths)?.iter().any(|o| o.id == gone.id) {
            deleted.push(gone.id);
        }
    }
    Ok((untagged, deleted, freed))
}

/// The directory of an unpacked layer.
pub fn layer_dir(paths: &Paths, digest: &str) -> PathBuf {
    paths.layers().join(digest.replace(':', "-"))
}

/// Unpacks a layer unless it already is (layers are shared); crash-safe through a
/// temporary directory renamed into place.
pub fn ensure_layer(paths: &Paths, tarball: &Path, digest: &str, label: &str) -> Result<()> {
    let dst = layer_dir(paths, digest);
    if dst.is_dir() {
        return Ok(());
    }
    let tmp = paths.layers().join(format!(".tmp-{}-{}", digest.replace(':', "-"), std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let tty = std::io::stdout().is_terminal();
    let total = fs::metadata(tarball).map(|m| m.len()).unwrap_or(0);
    let mut progress = |n: u64| {
        if tty {
            print!("\r{label}: {:.1} MB / {:.1} MB", n as f64 / 1e6, total as f64 / 1e6);
        }
    };
    let res = unpack::unpack_layer(tarball, &tmp, &mut progress);
    if tty {
        println!();
    }
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, &dst) {
        Ok(()) => Ok(()),
        Err(_) if dst.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(Error::io("rename", &dst, e)),
    }
}

/// Parses Docker's `ExposedPorts` object into "80/tcp" strings.
pub fn exposed(v: Option<&serde_json::Value>) -> Vec<String> {
    let mut ports: Vec<String> = v.and_then(|x| x.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    ports.sort();
    ports
}
