//! Credentials: `berth login` checks them against the registry and stores them 0600 as
//! Docker's `{"auths": {...}}`; a 401's challenge is parsed here.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

use super::client::Client;
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Stored credentials, `{"auths": {"host": {"auth": base64(user:pass)}}}` as Docker's.
fn auth_file(paths: &Paths) -> PathBuf {
    paths.lib.join("auth.json")
}

pub(super) fn credentials(paths: &Paths, registry: &str) -> Option<String> {
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

/// `key="value"` pairs of a WWW-Authenticate challenge.
pub(super) fn challenge(h: &str) -> (String, BTreeMap<String, String>) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn challenges_parse() {
        let (s, p) =
            super::challenge(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull,push""#);
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["scope"], "repository:a:pull,push");
        assert_eq!(p["service"], "registry.example");
    }
}
