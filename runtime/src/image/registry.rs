//! `berth pull` / `berth push` over the OCI distribution API: manifests (OCI and Docker
//! v2 schema 2, and their indexes, where linux/amd64 is picked), blobs verified by digest
//! before anything is stored, layers moved in parallel, basic and bearer-token auth with
//! the credentials `berth login` stored (0600). Plain HTTP only for a registry on loopback
//! or named with `--insecure-registry`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::unpack::hex;
use super::{store, Image};
use crate::error::{Error, Result};
use crate::paths::Paths;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_HUB: &str = "registry-1.docker.io";

/// An image reference split as the distribution API needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host[:port] as the user wrote it (`docker.io` for none).
    pub registry: String,
    /// Repository path (`library/busybox` on Docker Hub).
    pub repo: String,
    /// Tag or digest.
    pub reference: String,
}

impl Reference {
    /// Parses `[host[:port]/]path[:tag|@digest]`.
    pub fn parse(name: &str) -> Result<Self> {
        netd::name::Name::image(name).map_err(netd::Error::from)?;
        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        let (registry, path) = if !first.is_empty() && (first.contains(['.', ':']) || first == "localhost") {
            (first.to_string(), rest.to_string())
        } else {
            ("docker.io".to_string(), name.to_string())
        };
        let (path, reference) = if let Some((p, d)) = path.split_once('@') {
            (p.to_string(), d.to_string())
        } else {
            match path.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') => (p.to_string(), t.to_string()),
                _ => (path.clone(), "latest".to_string()),
            }
        };
        let repo = if registry == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        Ok(Self { registry, repo, reference })
    }
}

/// Whether `host[:port]` may be spoken to over plain HTTP: loopback, or listed.
pub fn plain_http_allowed(registry: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|i| i == registry) {
        return true;
    }
    let host = registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry).trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://host:port` of a URL, lowercase, with the scheme's default port made
/// explicit: the unit credentials are scoped to.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?.to_ascii_lowercase();
    let has_port =
        authority.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.contains(']'));
    let port = match (has_port, scheme.as_str()) {
        (true, _) => String::new(),
        (false, "https") => ":443".into(),
        (false, "http") => ":80".into(),
        _ => return None,
    };
    Some(format!("{scheme}://{authority}{port}"))
}

/// The largest manifest, index or token response read (Docker caps manifests at 4 MiB).
const MAX_DOCUMENT: u64 = 4 << 20;

/// Stored credentials, `{"auths": {"host": {"auth": base64(user:pass)}}}` as Docker's.
fn auth_file(paths: &Paths) -> PathBuf {
    paths.lib.join("auth.json")
}

fn credentials(paths: &Paths, registry: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(&fs::read(auth_file(paths)).ok()?).ok()?;
    v["auths"][registry]["auth"].as_str().map(str::to_string)
}

/// `berth login`: checks the credentials against the registry, then stores them 0600.
pub fn login(paths: &Paths, registry: &str, user: &str, password: &str, insecure: &[String]) -> Result<()> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let client = Client::new(registry, insecure, Some(auth.clone()));
    let resp = client.request("GET", &format!("{}/v2/", client.base), &[], None, "registry:catalog:*")?;
    if resp.status() != 200 {
        return Err(Error::State(format!("login to {registry} failed: HTTP {}", resp.status())));
    }
    let mut v: Value =
        fs::read(auth_file(paths)).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_else(|| json!({"auths": {}}));
    v["auths"][registry] = json!({"auth": auth});
    netd::state::write_atomic_mode(&auth_file(paths), v.to_string().as_bytes(), 0o600)?;
    Ok(())
}

/// `berth logout`.
pub fn logout(paths: &Paths, registry: &str) -> Result<()> {
    let mut v: Value =
        fs::read(auth_file(paths)).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_else(|| json!({"auths": {}}));
    if v["auths"].get(registry).is_none() {
        return Err(Error::State(format!("not logged in to {registry}")));
    }
    if let Some(m) = v["auths"].as_object_mut() {
        m.remove(registry);
    }
    netd::state::write_atomic_mode(&auth_file(paths), v.to_string().as_bytes(), 0o600)?;
    Ok(())
}

/// A request body: bytes, or a blob streamed from its file.
#[derive(Clone, Copy)]
enum Body<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

struct Client {
    agent: ureq::Agent,
    base: String,
    registry: String,
    basic: Option<String>,
    tokens: Mutex<BTreeMap<String, String>>,
    insecure: Vec<String>,
}

fn net_err(registry: &str, e: impl std::fmt::Display) -> Error {
    Error::State(format!("registry {registry}: {e}"))
}

/// `key="value"` pairs of a WWW-Authenticate challenge.
fn challenge(h: &str) -> (String, BTreeMap<String, String>) {
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut out = BTreeMap::new();
    let mut rest = rest.trim();
    while let Some((k, after)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let (v, next) = match after.strip_prefix('"') {
            Some(q) => q.split_once('"').unwrap_or((q, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.insert(k, v.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), out)
}

impl Client {
    fn new(registry: &str, insecure: &[String], basic: Option<String>) -> Self {
        let scheme = if plain_http_allowed(registry, insecure) { "http" } else { "https" };
        let host = if registry == "docker.io" { DOCKER_HUB } else { registry };
        // ureq never carries Authorization across a redirect (RedirectAuthHeaders::Never).
        let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout_read(Duration::from_secs(120)).build();
        Self {
            agent,
            base: format!("{scheme}://{host}"),
            registry: registry.to_string(),
            basic,
            tokens: Mutex::new(BTreeMap::new()),
            insecure: insecure.to_vec(),
        }
    }

    /// Whether `url` is the registry's own origin: only there do credentials go (an
    /// upload `Location` may name any host; it gets the blob, never the password).
    fn own(&self, url: &str) -> bool {
        origin(url).is_some_and(|o| Some(o) == origin(&self.base))
    }

    /// One request with auth: the stored token for `scope`, else basic, else none; on a
    /// 401 the challenge is answered once (basic, or a bearer token from its realm).
    fn request(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<Body<'_>>, scope: &str) -> Result<ureq::Response> {
        let send = |auth: Option<String>| {
            let mut r = self.agent.request(method, url);
            for (k, v) in headers {
                r = r.set(k, v);
            }
            if let Some(a) = auth {
                r = r.set("Authorization", &a);
            }
            match body {
                Some(Body::Bytes(b)) => r.send_bytes(b),
                // Streamed from the blob file (opened again for a retry after a challenge).
                Some(Body::File(p)) => match fs::File::open(p) {
                    Ok(f) => {
                        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                        r.set("Content-Length", &len.to_string()).send(std::io::BufReader::new(f))
                    }
                    Err(e) => Err(ureq::Error::from(e)),
                },
                None => r.call(),
            }
            .map_err(Box::new)
        };
        if !self.own(url) {
            return match send(None).map_err(|e| *e) {
                Ok(r) | Err(ureq::Error::Status(_, r)) => Ok(r),
                Err(e) => Err(net_err(&self.registry, e)),
            };
        }
        let token = self.tokens.lock().ok().and_then(|t| t.get(scope).cloned());
        let first = token.map(|t| format!("Bearer {t}")).or_else(|| self.basic.as_ref().map(|b| format!("Basic {b}")));
        match send(first).map_err(|e| *e) {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(401, r)) => {
                let (scheme, params) = challenge(r.header("WWW-Authenticate").unwrap_or(""));
                let auth = match scheme.as_str() {
                    "basic" => {
                        let b = self
                            .basic
                            .clone()
                            .ok_or_else(|| net_err(&self.registry, format!("authentication required: berth login {}", self.registry)))?;
                        format!("Basic {b}")
                    }
                    "bearer" => format!("Bearer {}", self.token(&params, scope)?),
                    _ => return Err(net_err(&self.registry, "unauthorized")),
                };
                match send(Some(auth)).map_err(|e| *e) {
                    Ok(r) => Ok(r),
                    Err(ureq::Error::Status(401, _)) => {
                        Err(net_err(&self.registry, format!("unauthorized: berth login {}", self.registry)))
                    }
                    // A non-2xx answer stays a response: callers decide (404 on HEAD is "absent").
                    Err(ureq::Error::Status(_, r)) => Ok(r),
                    Err(e) => Err(net_err(&self.registry, e)),
                }
            }
            Err(ureq::Error::Status(_, r)) => Ok(r),
            Err(e) => Err(net_err(&self.registry, e)),
        }
    }

    fn token(&self, params: &BTreeMap<String, String>, scope: &str) -> Result<String> {
        let realm = params.get("realm").ok_or_else(|| net_err(&self.registry, "bearer challenge without realm"))?;
        // The realm gets what Docker sends it (the login, to trade for a token), so never
        // over plain HTTP unless it is loopback or listed with --insecure-registry.
        let realm_origin = origin(realm).ok_or_else(|| net_err(&self.registry, format!("token realm {realm:?} is not an http(s) URL")))?;
        if let Some(host) = realm_origin.strip_prefix("http://") {
            if !plain_http_allowed(host, &self.insecure) && !plain_http_allowed(host.trim_end_matches(":80"), &self.insecure) {
                return Err(net_err(
                    &self.registry,
                    format!("token realm {realm} is plain HTTP: refused (only loopback or --insecure-registry)"),
                ));
            }
        }
        let mut r = self.agent.get(realm);
        if let Some(s) = params.get("service") {
            r = r.query("service", s);
        }
        r = r.query("scope", params.get("scope").map(String::as_str).unwrap_or(scope));
        if let Some(b) = &self.basic {
            r = r.set("Authorization", &format!("Basic {b}"));
        }
        let resp = r.call().map_err(|e| net_err(&self.registry, format!("token: {e}")))?;
        let text = read_capped(resp, MAX_DOCUMENT).map_err(|e| net_err(&self.registry, format!("token: {e}")))?;
        let v: Value = serde_json::from_slice(&text).map_err(|e| net_err(&self.registry, format!("token: {e}")))?;
        let t = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .ok_or_else(|| net_err(&self.registry, "token response without a token"))?
            .to_string();
        if let Ok(mut m) = self.tokens.lock() {
            m.insert(scope.to_string(), t.clone());
        }
        Ok(t)
    }
}

fn check(registry: &str, what: &str, r: ureq::Response) -> Result<ureq::Response> {
    if (200..300).contains(&r.status()) {
        Ok(r)
    } else {
        let status = r.status();
        let body = r.into_string().unwrap_or_default();
        let msg =
            serde_json::from_str::<Value>(&body).ok().and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string)).unwrap_or(body);
        Err(net_err(registry, format!("{what}: HTTP {status} {}", msg.trim())))
    }
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// A response body, refused past `max` bytes (never read further).
fn read_capped(resp: ureq::Response, max: u64) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().take(max + 1).read_to_end(&mut body)?;
    if body.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes: refused")));
    }
    Ok(body)
}

/// Whether `data` has `digest`: sha256 or sha512 (verified); any other algorithm, or a
/// malformed digest, is refused rather than stored unchecked.
pub fn verify_digest(digest: &str, data: &[u8]) -> std::result::Result<(), String> {
    let (got, len) = match digest.split_once(':') {
        Some(("sha256", _)) => (digest_of(data), 64),
        Some(("sha512", _)) => (format!("sha512:{}", hex(&sha2::Sha512::digest(data))), 128),
        _ => return Err(format!("digest {digest:?}: only sha256 and sha512 are verified; refused")),
    };
    let hexpart = &digest[digest.len().min(7)..];
    if hexpart.len() != len || !hexpart.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(format!("malformed digest {digest:?}"));
    }
    if got != digest {
        return Err(format!("arrived with digest {got}: refused"));
    }
    Ok(())
}

/// Downloads a blob to `dst`, verifying its digest as it streams and reading no more
/// than the `size` its descriptor gives.
fn fetch_blob(c: &Client, r: &Reference, digest: &str, size: u64, dst: &Path, scope: &str) -> Result<()> {
    let url = format!("{}/v2/{}/blobs/{digest}", c.base, r.repo);
    let resp = check(&c.registry, &format!("blob {digest}"), c.request("GET", &url, &[], None, scope)?)?;
    let mut reader = resp.into_reader().take(size + 1);
    let mut total = 0u64;
    let mut f = fs::File::create(dst).map_err(|e| Error::io("create", dst, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| net_err(&c.registry, format!("blob {digest}: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > size {
            return Err(net_err(&c.registry, format!("blob {digest} is larger than the {size} bytes its descriptor gives: refused")));
        }
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).map_err(|e| Error::io("write", dst, e))?;
    }
    let got = format!("sha256:{}", hex(&h.finalize()));
    if got != digest {
        return Err(net_err(&c.registry, format!("blob {digest} arrived with digest {got}: refused")));
    }
    Ok(())
}

/// A temporary directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` over `items` on three threads (layers move in parallel), printing the line
/// each returns; the first error, if any, is the result.
fn in_parallel<T: Sync, R>(items: &[T], out: &mut (dyn Write + Send), f: impl Fn(&T) -> (String, Result<R>) + Sync) -> Result<()> {
    let failures: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    let printer = Mutex::new(out);
    std::thread::scope(|s| {
        for chunk in items.chunks(items.len().div_ceil(3).max(1)) {
            let (f, failures, printer) = (&f, &failures, &printer);
            s.spawn(move || {
                for item in chunk {
                    let (line, res) = f(item);
                    if let Ok(mut p) = printer.lock() {
                        let _ = writeln!(p, "{line}");
                    }
                    if let Err(e) = res {
                        if let Ok(mut v) = failures.lock() {
                            v.push(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    match failures.into_inner() {
        Ok(mut v) if !v.is_empty() => Err(v.remove(0)),
        _ => Ok(()),
    }
}

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
    let scratch = Scratch(paths.lib.join("tmp").join(format!("pull-{}", crate::container::id::random(6))));
    fs::create_dir_all(&scratch.0).map_err(|e| Error::io("create", &scratch.0, e))?;
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
    let img = super::get(paths, name)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_docker_splits_them() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!((r.registry.as_str(), r.repo.as_str(), r.reference.as_str()), ("docker.io", "library/busybox", "latest"));
        let r = Reference::parse("127.0.0.1:5000/team/site:v1").unwrap();
        assert_eq!((r.registry.as_str(), r.repo.as_str(), r.reference.as_str()), ("127.0.0.1:5000", "team/site", "v1"));
        let r = Reference::parse("localhost/site").unwrap();
        assert_eq!((r.registry.as_str(), r.repo.as_str()), ("localhost", "site"));
        assert!(Reference::parse("bad name").is_err());
    }

    #[test]
    fn plain_http_only_for_loopback_or_listed() {
        assert!(plain_http_allowed("127.0.0.1:5000", &[]));
        assert!(plain_http_allowed("localhost:5000", &[]));
        assert!(plain_http_allowed("[::1]:5000", &[]));
        assert!(!plain_http_allowed("registry.example:5000", &[]));
        assert!(plain_http_allowed("registry.example:5000", &["registry.example:5000".into()]));
    }

    #[test]
    fn credentials_stay_with_their_origin() {
        let c = Client::new("127.0.0.1:5000", &[], Some("dTpw".into()));
        assert!(c.own("http://127.0.0.1:5000/v2/x/blobs/uploads/1"));
        assert!(!c.own("http://127.0.0.2:5000/upload"), "another host");
        assert!(!c.own("http://127.0.0.1:5001/upload"), "another port");
        assert!(!c.own("https://127.0.0.1:5000/upload"), "another scheme");
        assert_eq!(origin("https://Reg.Example/v2/"), Some("https://reg.example:443".into()));
        assert_eq!(origin("http://u:p@reg.example:80/x"), Some("http://reg.example:80".into()));
        assert_eq!(origin("ftp://x"), None);
    }

    #[test]
    fn digests_are_verified_or_refused() {
        let data = b"manifest";
        let s256 = digest_of(data);
        let s512 = format!("sha512:{}", hex(&sha2::Sha512::digest(data)));
        assert!(verify_digest(&s256, data).is_ok());
        assert!(verify_digest(&s512, data).is_ok());
        assert!(verify_digest(&s512, b"other").unwrap_err().contains("refused"));
        assert!(verify_digest("md5:0123", data).is_err());
        assert!(verify_digest("sha512:abc", data).unwrap_err().contains("malformed"));
        let r = Reference::parse(&format!("127.0.0.1:5000/x@{s512}")).unwrap();
        assert_eq!(r.reference, s512);
    }

    #[test]
    fn challenges_parse() {
        let (s, p) = challenge(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull,push""#);
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["scope"], "repository:a:pull,push");
        assert_eq!(p["service"], "registry.example");
    }
}
