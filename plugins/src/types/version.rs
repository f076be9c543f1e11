//! CNI spec versions this implementation speaks.

/// Every version we accept in a config and can emit a result in.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest version, used for VERSION answers and for errors before a config is parsed.
pub const LATEST: &str = "1.1.0";

/// Parses "1.0.0" into a comparable tuple.
pub fn parse(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let t = (it.next()??, it.next().flatten().unwrap_or(0), it.next().flatten().unwrap_or(0));
    it.next().is_none().then_some(t)
}

/// Whether `v` is at least `min`.
pub fn at_least(v: &str, min: &str) -> bool {
    match (parse(v), parse(min)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

/// Whether results of this version carry the per-IP `version` field (before 1.0.0).
pub fn has_ip_version_field(v: &str) -> bool {
    !at_least(v, "1.0.0")
}

/// The VERSION command's answer for a plugin speaking `oldest` and later.
pub fn version_info(oldest: &str) -> serde_json::Value {
    let supported: Vec<&str> = SUPPORTED.iter().copied().filter(|v| at_least(v, oldest)).collect();
    serde_json::json!({ "cniVersion": LATEST, "supportedVersions": supported })
}
