//! One registry's HTTP client: requests with the stored credentials or a bearer token
//! (which go only to the registry's own origin), answers checked, documents read under a
//! cap, blobs streamed to disk and verified by digest.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::auth::challenge;
use super::reference::{origin, plain_http_allowed, Reference};
use crate::error::{Error, Result};
use crate::image::unpack::hex;

pub(super) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_HUB: &str = "registry-1.docker.io";

/// The largest manifest, index or token response read (Docker caps manifests at 4 MiB).
pub(super) const MAX_DOCUMENT: u64 = 4 << 20;

/// A request body: bytes, or a blob streamed from its file.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

pub(super) struct Client {
    agent: ureq::Agent,
    pub(super) base: String,
    pub(super) registry: String,
    basic: Option<String>,
    tokens: Mutex<BTreeMap<String, String>>,
    insecure: Vec<String>,
}

pub(super) fn net_err(registry: &str, e: impl std::fmt::Display) -> Error {
    Error::State(format!("registry {registry}: {e}"))
}

impl Client {
    pub(super) fn new(registry: &str, insecure: &[String], basic: Option<String>) -> Self {
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
    pub(super) fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Body<'_>>,
        scope: &str,
    ) -> Result<ureq::Response> {
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

pub(super) fn check(registry: &str, what: &str, r: ureq::Response) -> Result<ureq::Response> {
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

pub(super) fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// A response body, refused past `max` bytes (never read further).
pub(super) fn read_capped(resp: ureq::Response, max: u64) -> std::io::Result<Vec<u8>> {
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
pub(super) fn fetch_blob(c: &Client, r: &Reference, digest: &str, size: u64, dst: &Path, scope: &str) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
