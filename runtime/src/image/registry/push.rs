//! Pushing: each layer and the config unless the registry has it, then the manifest.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::auth::credentials;
use super::client::{check, net_err, Body, Client};
use super::{in_parallel, Reference};
use crate::error::{Error, Result};
use crate::image::store;
use crate::paths::Paths;

/// Uploads a blob unless the registry has it.
fn push_blob(c: &Client, r: &Reference, digest: &str, file: &Path, scope: &str) -> Result<bool> {
    let head = c.request("HEAD", &format!("{}/v2/{}/blobs/{digest}", c.base, r.repo), &[], None, scope)?;
    if head.status() == 200 {
        return Ok(false);
    }
    let start = check(
        &c.registry,
        "start upload",
        c.request("POST", &format!("{}/v2/{}/blobs/uploads/", c.base, r.repo), &[], Some(Body::Bytes(&[])), scope)?,
    )?;
    let loc = start.header("Location").ok_or_else(|| net_err(&c.registry, "upload without a Location"))?.to_string();
    let url = if loc.starts_with("http") { loc } else { format!("{}{loc}", c.base) };
    let url = format!("{url}{}digest={digest}", if url.contains('?') { '&' } else { '?' });
    check(
        &c.registry,
        &format!("upload {digest}"),
        c.request("PUT", &url, &[("Content-Type", "application/octet-stream")], Some(Body::File(file)), scope)?,
    )?;
    Ok(true)
}

/// `berth push NAME`: the image's blobs and manifest, under the name's repository and tag.
pub fn push(paths: &Paths, name: &str, insecure: &[String], out: &mut (dyn Write + Send)) -> Result<()> {
    let img = crate::image::get(paths, name)?;
    let manifest =
        img.manifest.clone().ok_or_else(|| Error::State(format!("image {name} was stored before berth kept manifests: load it again")))?;
    let r = Reference::parse(&img.name)?;
    let c = Client::new(&r.registry, insecure, credentials(paths, &r.registry));
    let scope = format!("repository:{}:pull,push", r.repo);
    let layers = store::layers(paths, &img)?;
    in_parallel(&layers, out, |l| {
        let res = push_blob(&c, &r, &l.digest, &store::blob_path(paths, &l.digest), &scope);
        let line = match &res {
            Ok(true) => "Pushed",
            Ok(false) => "Layer already exists",
            Err(_) => "Push failed",
        };
        (format!("{}: {line}", &l.digest[7..19]), res.map(|_| ()))
    })?;
    push_blob(&c, &r, &img.id, &store::blob_path(paths, &img.id), &scope)?;
    let body = fs::read(store::blob_path(paths, &manifest)).map_err(|e| Error::io("read", store::blob_path(paths, &manifest), e))?;
    let url = format!("{}/v2/{}/manifests/{}", c.base, r.repo, r.reference);
    check(&c.registry, "manifest", c.request("PUT", &url, &[("Content-Type", store::media::MANIFEST)], Some(Body::Bytes(&body)), &scope)?)?;
    writeln!(out, "{}: digest: {} size: {}", r.reference, manifest, body.len()).ok();
    Ok(())
}
