//! Pulling: the manifest (an index resolved to linux/amd64), then every blob downloaded
//! and verified into a scratch directory before anything is stored.

use std::fs;
use std::io::Write;

use serde_json::Value;

use super::auth::credentials;
use super::client::{check, digest_of, fetch_blob, net_err, read_capped, verify_digest, Client, ACCEPT, MAX_DOCUMENT};
use super::{in_parallel, Reference};
use crate::error::{Error, Result};
use crate::image::{store, Image};
use crate::paths::Paths;
use crate::scratch::Scratch;

/// `berth pull NAME`: the image under the name given.
pub fn pull(paths: &Paths, name: &str, insecure: &[String], out: &mut (dyn Write + Send)) -> Result<Image> {
    let r = Reference::parse(name)?;
    let c = Client::new(&r.registry, insecure, credentials(paths, &r.registry));
    let scope = format!("repository:{}:pull", r.repo);
    let get_manifest = |reference: &str| -> Result<(Vec<u8>, String)> {
        let url = format!("{}/v2/{}/manifests/{reference}", c.base, r.repo);
        let resp = check(&c.registry, &format!("manifest {reference}"), c.request("GET", &url, &[("Accept", ACCEPT)], None, &scope)?)?;
        let ct = resp.content_type().to_string();
        let body = read_capped(resp, MAX_DOCUMENT).map_err(|e| net_err(&c.registry, format!("manifest {reference}: {e}")))?;
        // A digest reference (any algorithm) is verified or refused, never stored unchecked.
        if reference.contains(':') {
            verify_digest(reference, &body).map_err(|e| net_err(&c.registry, format!("manifest {reference}: {e}")))?;
        }
        Ok((body, ct))
    };
    let (mut body, _) = get_manifest(&r.reference)?;
    let mut m: Value = serde_json::from_slice(&body).map_err(|e| net_err(&c.registry, format!("manifest: {e}")))?;
    if m.get("manifests").is_some() {
        let pick = m["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["platform"]["os"] == "linux" && d["platform"]["architecture"] == "amd64")
            .and_then(|d| d["digest"].as_str())
            .ok_or_else(|| net_err(&c.registry, format!("{name} has no linux/amd64 image")))?
            .to_string();
        body = get_manifest(&pick)?.0;
        m = serde_json::from_slice(&body).map_err(|e| net_err(&c.registry, format!("manifest: {e}")))?;
    }
    let cfg_digest = m.pointer("/config/digest").and_then(Value::as_str).ok_or_else(|| net_err(&c.registry, "manifest without config"))?;
    let cfg_size =
        m.pointer("/config/size").and_then(Value::as_u64).ok_or_else(|| net_err(&c.registry, "config descriptor without a size"))?;
    if cfg_size > MAX_DOCUMENT {
        return Err(net_err(&c.registry, format!("config of {cfg_size} bytes: larger than {MAX_DOCUMENT}, refused")));
    }
    let layers: Vec<(String, u64)> = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| (l["digest"].as_str().unwrap_or_default().to_string(), l["size"].as_u64().unwrap_or(u64::MAX)))
        .collect();
    for (d, size) in layers.iter().chain(std::iter::once(&(cfg_digest.to_string(), cfg_size))) {
        if !(d.starts_with("sha256:") && d.len() == 71 && d[7..].bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(net_err(&c.registry, format!("invalid digest {d:?} in the manifest")));
        }
        if *size == u64::MAX {
            return Err(net_err(&c.registry, format!("descriptor {d} without a size")));
        }
    }
    let scratch = Scratch::dir(paths, "pull")?;
    // Everything is downloaded and verified before anything is stored.
    let cfg_file = scratch.0.join("config");
    fetch_blob(&c, &r, cfg_digest, cfg_size, &cfg_file, &scope)?;
    in_parallel(&layers, out, |(d, size)| {
        let res = fetch_blob(&c, &r, d, *size, &scratch.0.join(&d[7..]), &scope);
        (format!("{}: {}", &d[7..19], if res.is_ok() { "Download complete" } else { "Download failed" }), res)
    })?;
    let mut stored = Vec::new();
    for (i, (d, _)) in layers.iter().enumerate() {
        stored.push(store::put_layer(paths, &scratch.0.join(&d[7..]), Some(d), &format!("Extracting {}/{}", i + 1, layers.len()))?);
    }
    let cfg = fs::read(&cfg_file).map_err(|e| Error::io("read", &cfg_file, e))?;
    let img = store::assemble(paths, &stored, &cfg)?;
    let named = store::tag(paths, &img, name)?;
    writeln!(out, "Digest: {}", digest_of(&body)).ok();
    writeln!(out, "Status: Downloaded newer image for {}", named.name).ok();
    Ok(named)
}
