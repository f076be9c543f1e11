//! The content-addressed side of the image store: blobs (layers as they came, image
//! configs, manifests) under `blobs/sha256/<hex>`, named by their digest as the OCI image
//! spec names them. An image record (a name) points at a manifest; its ID is its config's
//! digest, as Docker's. Layers are also unpacked once, by blob digest, for overlayfs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::unpack::{file_digest, hex, open_tar};
use super::{ensure_layer, save, Image, RunConfig};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// OCI media types berth writes.
pub mod media {
    /// An OCI image manifest.
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image config.
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// An uncompressed layer.
    pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// A gzipped layer.
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
}

/// A layer as a manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob's digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// tar or tar+gzip.
    pub media_type: String,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
}

/// Where a blob is.
pub fn blob_path(paths: &Paths, digest: &str) -> PathBuf {
    paths.lib.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn tmp_path(paths: &Paths) -> PathBuf {
    paths.lib.join("blobs").join(format!(".tmp-{}-{}", std::process::id(), crate::container::id::random(6)))
}

/// Stores bytes as a blob; returns its digest.
pub fn put_bytes(paths: &Paths, data: &[u8]) -> Result<String> {
    let digest = format!("sha256:{}", hex(&Sha256::digest(data)));
    let dst = blob_path(paths, &digest);
    if !dst.exists() {
        fs::create_dir_all(dst.parent().unwrap_or(&paths.lib)).map_err(|e| Error::io("create", &dst, e))?;
        netd::state::write_atomic(&dst, data)?;
    }
    Ok(digest)
}

/// Stores a file as a blob (copied; the source is left); `expected`, when given, must be
/// its digest. Returns the digest.
pub fn put_file(paths: &Paths, src: &Path, expected: Option<&str>) -> Result<String> {
    let digest = file_digest(src)?;
    if let Some(want) = expected {
        if want != digest {
            return Err(Error::BadArchive { path: src.into(), why: format!("blob {want} has digest {digest}") });
        }
    }
    let dst = blob_path(paths, &digest);
    if !dst.exists() {
        fs::create_dir_all(dst.parent().unwrap_or(&paths.lib)).map_err(|e| Error::io("create", &dst, e))?;
        let tmp = tmp_path(paths);
        fs::copy(src, &tmp).map_err(|e| Error::io("copy", src, e))?;
        fs::rename(&tmp, &dst).map_err(|e| Error::io("rename", &dst, e))?;
    }
    Ok(digest)
}

/// The digest of a layer's uncompressed tar.
pub fn diff_id(path: &Path) -> Result<String> {
    let mut r = open_tar(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

/// Stores a layer tarball (tar or tar.gz) as a blob and unpacks it; `expected` is the
/// blob digest a manifest promised.
pub fn put_layer(paths: &Paths, tarball: &Path, expected: Option<&str>, label: &str) -> Result<Layer> {
    let digest = put_file(paths, tarball, expected)?;
    let blob = blob_path(paths, &digest);
    let gz = fs::File::open(&blob).ok().and_then(|mut f| {
        let mut m = [0u8; 2];
        f.read_exact(&mut m).ok().map(|_| m == [0x1f, 0x8b])
    });
    let layer = Layer {
        diff_id: diff_id(&blob)?,
        size: fs::metadata(&blob).map(|m| m.len()).unwrap_or(0),
        media_type: if gz == Some(true) { media::LAYER_GZIP } else { media::LAYER }.into(),
        digest,
    };
    ensure_layer(paths, &blob, &layer.digest, label)?;
    Ok(layer)
}

fn read_json(path: &Path) -> Result<Value> {
    let data = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&data).map_err(|e| Error::Record { path: path.into(), why: e.to_string() })
}

/// An image's full config document. Images stored before berth kept configs get one
/// made from what their record has.
pub fn config(paths: &Paths, img: &Image) -> Result<Value> {
    if img.manifest.is_some() {
        return read_json(&blob_path(paths, &img.id));
    }
    Ok(json!({
        "architecture": "amd64", "os": "linux",
        "config": config_section(&img.config),
        "rootfs": {"type": "layers", "diff_ids": img.layers},
        "history": img.layers.iter().map(|_| json!({"created_by": "(stored before berth kept image history)"})).collect::<Vec<_>>(),
    }))
}

/// An image's manifest; `None` for an image stored before berth kept manifests.
pub fn manifest(paths: &Paths, img: &Image) -> Result<Option<Value>> {
    img.manifest.as_ref().map(|m| read_json(&blob_path(paths, m))).transpose()
}

/// The layers of an image as its manifest lists them.
pub fn layers(paths: &Paths, img: &Image) -> Result<Vec<Layer>> {
    layers_with(paths, img, &config(paths, img)?)
}

/// The same, for a caller that has read the image's config already.
pub fn layers_with(paths: &Paths, img: &Image, cfg: &Value) -> Result<Vec<Layer>> {
    let Some(m) = manifest(paths, img)? else {
        return Err(Error::State(format!("image {} was stored before berth kept layer blobs: load or import it again", img.name)));
    };
    let diff_ids: Vec<String> = cfg
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for (i, l) in m.get("layers").and_then(Value::as_array).into_iter().flatten().enumerate() {
        out.push(Layer {
            digest: l["digest"].as_str().unwrap_or_default().to_string(),
            size: l["size"].as_u64().unwrap_or(0),
            media_type: l["mediaType"].as_str().unwrap_or(media::LAYER).to_string(),
            diff_id: diff_ids.get(i).cloned().unwrap_or_default(),
        });
    }
    Ok(out)
}

fn strings(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// The `config` section of an image config from run defaults.
pub fn config_section(c: &RunConfig) -> Value {
    let mut v = json!({
        "Env": strings(&c.env), "Cmd": strings(&c.cmd), "Entrypoint": strings(&c.entrypoint),
        "WorkingDir": c.working_dir, "User": c.user,
    });
    if !c.labels.is_empty() {
        v["Labels"] = json!(c.labels);
    }
    if !c.stop_signal.is_empty() {
        v["StopSignal"] = json!(c.stop_signal);
    }
    if !c.exposed_ports.is_empty() {
        v["ExposedPorts"] = Value::Object(c.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect());
    }
    v
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The run defaults of a config document (Docker's and OCI's have the same shape).
pub fn run_config(doc: &Value) -> RunConfig {
    let c = doc.get("config").or_else(|| doc.get("Config")).cloned().unwrap_or_default();
    RunConfig {
        env: str_list(c.get("Env")),
        cmd: str_list(c.get("Cmd")),
        entrypoint: str_list(c.get("Entrypoint")),
        working_dir: c.get("WorkingDir").and_then(Value::as_str).unwrap_or("").to_string(),
        exposed_ports: super::exposed(c.get("ExposedPorts")),
        user: c.get("User").and_then(Value::as_str).unwrap_or("").to_string(),
        labels: c
            .get("Labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default(),
        stop_signal: c.get("StopSignal").and_then(Value::as_str).unwrap_or("").to_string(),
    }
}

/// Stores `config` and a manifest over `layers` as blobs (the config's bytes as given,
/// so its digest is the ID another tool computed) and returns the unnamed image.
pub fn assemble(paths: &Paths, layers: &[Layer], config_bytes: &[u8]) -> Result<Image> {
    let cfg: Value = serde_json::from_slice(config_bytes).map_err(|e| Error::Record { path: "image config".into(), why: e.to_string() })?;
    let id = put_bytes(paths, config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "config": {"mediaType": media::CONFIG, "digest": id, "size": config_bytes.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
    });
    let manifest_digest = put_bytes(paths, manifest.to_string().as_bytes())?;
    Ok(Image {
        name: String::new(),
        id,
        layers: layers.iter().map(|l| l.digest.clone()).collect(),
        config: run_config(&cfg),
        created: crate::clock::now(),
        manifest: Some(manifest_digest),
    })
}

/// The unnamed image a stored manifest describes (a build cache entry); an error if any
/// of its blobs is gone.
pub fn from_manifest(paths: &Paths, digest: &str) -> Result<Image> {
    let m = read_json(&blob_path(paths, digest))?;
    let id = m.pointer("/config/digest").and_then(Value::as_str).unwrap_or_default().to_string();
    let cfg = read_json(&blob_path(paths, &id))?;
    let layers: Vec<String> =
        m.get("layers").and_then(Value::as_array).into_iter().flatten().filter_map(|l| l["digest"].as_str().map(str::to_string)).collect();
    if let Some(missing) = layers.iter().find(|l| !super::layer_dir(paths, l).is_dir() || !blob_path(paths, l).exists()) {
        return Err(Error::MissingLayer(super::layer_dir(paths, missing)));
    }
    Ok(Image {
        name: String::new(),
        id,
        layers,
        config: run_config(&cfg),
        created: crate::clock::now(),
        manifest: Some(digest.to_string()),
    })
}

/// Names an assembled image (a reference onto its manifest).
pub fn tag(paths: &Paths, img: &Image, name: &str) -> Result<Image> {
    let name = super::checked_name(name).map_err(|why| Error::Flag { flag: "image name", value: name.to_string(), why })?;
    let named = Image { name, ..img.clone() };
    save(paths, &named)?;
    Ok(named)
}

/// A config document's bytes, as written for a new image: `created` now.
pub fn config_bytes(mut cfg: Value) -> Vec<u8> {
    cfg["created"] = json!(netd::clock::rfc3339(crate::clock::now()));
    serde_json::to_vec(&cfg).unwrap_or_default()
}
