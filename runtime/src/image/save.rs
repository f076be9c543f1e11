//! `berth save`: images as one archive that `docker load`, `podman load` and `berth load`
//! read. Like Docker 25's, it is both formats at once: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`) and the `docker save` manifest (`manifest.json`,
//! `repositories`) pointing at the same blobs.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Value};

use super::{store, Image};
use crate::error::{Error, Result};
use crate::paths::Paths;

fn add_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    tar.append_data(&mut h, name, data).map_err(|e| Error::io("write archive member", name, e))
}

fn add_blob<W: Write>(tar: &mut tar::Builder<W>, paths: &Paths, digest: &str, done: &mut Vec<String>) -> Result<String> {
    let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    if !done.contains(&name) {
        let p = store::blob_path(paths, digest);
        let mut f = std::fs::File::open(&p).map_err(|e| Error::io("open", &p, e))?;
        tar.append_file(&name, &mut f).map_err(|e| Error::io("write archive member", &name, e))?;
        done.push(name.clone());
    }
    Ok(name)
}

/// Writes `images` (names or IDs) as one archive to `out`.
pub fn save(paths: &Paths, images: &[Image], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut done = Vec::new();
    let mut docker = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut dirs_done = false;
    for img in images {
        let manifest = img.manifest.as_ref().ok_or_else(|| {
            Error::State(format!("image {} was stored before berth kept its manifest: load or import it again", img.name))
        })?;
        if !dirs_done {
            add_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            dirs_done = true;
        }
        let layers = store::layers(paths, img)?;
        let mut layer_names = Vec::new();
        for l in &layers {
            layer_names.push(add_blob(&mut tar, paths, &l.digest, &mut done)?);
        }
        let cfg_name = add_blob(&mut tar, paths, &img.id, &mut done)?;
        add_blob(&mut tar, paths, manifest, &mut done)?;
        let size = std::fs::metadata(store::blob_path(paths, manifest)).map(|m| m.len()).unwrap_or(0);
        let (repo, tag) = img.name.rsplit_once(':').unwrap_or((&img.name, "latest"));
        index.push(json!({
            "mediaType": store::media::MANIFEST, "digest": manifest, "size": size,
            "annotations": {"io.containerd.image.name": img.name, "org.opencontainers.image.ref.name": tag},
        }));
        docker.push(json!({"Config": cfg_name, "RepoTags": [img.name], "Layers": layer_names}));
        if let Some(top) = layers.last() {
            repositories.entry(repo.to_string()).or_default().insert(tag.to_string(), top.digest.trim_start_matches("sha256:").to_string());
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index});
    add_bytes(&mut tar, "index.json", index.to_string().as_bytes())?;
    add_bytes(&mut tar, "manifest.json", Value::Array(docker).to_string().as_bytes())?;
    add_bytes(&mut tar, "repositories", serde_json::to_string(&repositories).unwrap_or_default().as_bytes())?;
    let mut w = tar.into_inner().map_err(|e| Error::io("finish", "archive", e))?;
    w.flush().map_err(|e| Error::io("write", "archive", e))
}
