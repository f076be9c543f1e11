//! Image references as the distribution API splits them, and which registries may be
//! spoken to over plain HTTP.

use std::net::IpAddr;

use crate::error::Result;

/// An image reference split as the distribution API needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry `host[:port]` as the user wrote it (`docker.io` for none).
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
pub(super) fn origin(url: &str) -> Option<String> {
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
}
