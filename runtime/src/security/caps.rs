//! Capabilities: Docker's default set, `--cap-add`/`--cap-drop` arithmetic, and setting
//! all five sets of the container's process (bounding, permitted, effective, inheritable,
//! ambient) the way runc does for Docker.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use super::Error;

/// Docker's default capability set (CapEff 00000000a80425fb).
pub const DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Parses "NET_ADMIN", "cap_net_admin" or "CAP_NET_ADMIN".
pub fn parse(name: &str) -> Result<Capability, Error> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    Capability::from_str(&full).map_err(|_| Error::UnknownCapability(name.to_string()))
}

/// Every capability berth itself holds (what `--privileged` and `--cap-add ALL` give;
/// a runtime confined by its own parent cannot hand out more).
pub fn all() -> Vec<String> {
    let mut v: Vec<String> = held().iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

/// Docker's `--cap-add`/`--cap-drop` rules over a base set: `ALL` in adds starts from
/// every capability, `ALL` in drops from none; then drops are removed and adds added.
pub fn tweak(base: &[String], add: &[String], drop: &[String]) -> Result<Vec<String>, Error> {
    let is_all = |s: &String| s.eq_ignore_ascii_case("ALL");
    let mut set: Vec<String> = if add.iter().any(is_all) {
        all()
    } else if drop.iter().any(is_all) {
        Vec::new()
    } else {
        base.to_vec()
    };
    for d in drop.iter().filter(|d| !is_all(d)) {
        let c = parse(d)?.to_string();
        set.retain(|x| *x != c);
    }
    for a in add.iter().filter(|a| !is_all(a)) {
        let c = parse(a)?.to_string();
        if !set.contains(&c) {
            set.push(c);
        }
    }
    set.sort();
    Ok(set)
}

/// A capability set resolved before fork, so applying it in the child only makes syscalls.
#[derive(Debug, Clone)]
pub struct Resolved {
    keep: CapsHashSet,
    supported: CapsHashSet,
}

impl Resolved {
    /// Resolves names (already validated) against what this process holds.
    pub fn new(names: &[String]) -> Result<Self, Error> {
        let held = held();
        let mut keep = CapsHashSet::new();
        for n in names {
            let c = parse(n)?;
            if held.contains(&c) {
                keep.insert(c);
            }
        }
        Ok(Self { keep, supported: caps::runtime::thread_all_supported() })
    }

    /// Shrinks the bounding set: no later exec can regain what is not kept.
    pub fn limit_bounding(&self) -> std::io::Result<()> {
        for c in self.supported.difference(&self.keep) {
            caps::drop(None, CapSet::Bounding, *c).map_err(io)?;
        }
        Ok(())
    }

    /// Sets effective, permitted, inheritable and ambient after the user switch: root
    /// keeps the set in effective and permitted, another user has none (as with Docker);
    /// inheritable and ambient are empty either way.
    pub fn apply(&self, uid: u32) -> std::io::Result<()> {
        caps::clear(None, CapSet::Ambient).map_err(io)?;
        caps::clear(None, CapSet::Inheritable).map_err(io)?;
        if uid == 0 {
            caps::set(None, CapSet::Effective, &self.keep).map_err(io)?;
            caps::set(None, CapSet::Permitted, &self.keep).map_err(io)?;
        } else {
            caps::clear(None, CapSet::Effective).map_err(io)?;
            caps::clear(None, CapSet::Permitted).map_err(io)?;
        }
        Ok(())
    }
}

/// The capabilities this process may pass on: its permitted set.
fn held() -> CapsHashSet {
    caps::read(None, CapSet::Permitted).unwrap_or_default()
}

fn io(e: caps::errors::CapsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_set_is_dockers_mask() {
        let mask: u64 = DEFAULT.iter().map(|n| 1u64 << parse(n).unwrap().index()).sum();
        assert_eq!(mask, 0xa80425fb);
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let base = s(DEFAULT);
        let t = tweak(&base, &s(&["net_admin"]), &s(&["NET_RAW", "cap_chown"])).unwrap();
        assert!(t.contains(&"CAP_NET_ADMIN".into()) && !t.contains(&"CAP_NET_RAW".into()) && !t.contains(&"CAP_CHOWN".into()));
        assert_eq!(tweak(&base, &s(&["KILL"]), &s(&["ALL"])).unwrap(), s(&["CAP_KILL"]));
        assert!(tweak(&base, &s(&["ALL"]), &s(&["SYS_ADMIN"])).unwrap().len() > DEFAULT.len());
        assert!(matches!(tweak(&base, &s(&["BOGUS"]), &[]), Err(Error::UnknownCapability(_))));
    }
}
