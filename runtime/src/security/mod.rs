//! Confinement by default, as Docker confines containers: capabilities, a seccomp filter,
//! no_new_privs on request, masked and read-only kernel paths, a device allowlist. The
//! container record keeps the resolved settings, so `exec` confines the same way.

pub mod caps;
pub mod profile;
pub mod seccomp;

use serde::{Deserialize, Serialize};

use profile::Profile;

/// Why a security setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A capability name nobody knows.
    #[error("unknown capability {0:?} (e.g. NET_ADMIN, SYS_PTRACE, ALL)")]
    UnknownCapability(String),
    /// A `--security-opt` value berth does not support.
    #[error("invalid --security-opt {0:?}: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges")]
    BadOption(String),
    /// A seccomp profile file that cannot be read or parsed.
    #[error("seccomp profile {path}: {why}")]
    Profile {
        /// The file given.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The profile cannot be compiled or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// berth's default profile (Docker's policy).
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile given with `--security-opt seccomp=FILE`, kept in the record.
    Profile(Box<Profile>),
}

/// A container's confinement, resolved from the flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// `--privileged`: every capability, no filter, no masks, every device, writable /sys.
    pub privileged: bool,
    /// Capabilities of root in the container, "CAP_..." names.
    pub capabilities: Vec<String>,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
}

impl Default for Security {
    fn default() -> Self {
        let mut capabilities: Vec<String> = caps::DEFAULT.iter().map(|s| s.to_string()).collect();
        capabilities.sort();
        Self { privileged: false, capabilities, seccomp: Seccomp::Default, no_new_privileges: false }
    }
}

impl Security {
    /// Resolves `--privileged`, `--cap-add`, `--cap-drop` and `--security-opt`.
    pub fn from_flags(privileged: bool, cap_add: &[String], cap_drop: &[String], opts: &[String]) -> Result<Self, Error> {
        let mut s = Security::default();
        let base = if privileged { caps::all() } else { s.capabilities.clone() };
        s.capabilities = caps::tweak(&base, cap_add, cap_drop)?;
        s.privileged = privileged;
        if privileged {
            s.seccomp = Seccomp::Unconfined;
        }
        for o in opts {
            let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
            match (k, v) {
                ("seccomp", "unconfined") => s.seccomp = Seccomp::Unconfined,
                ("seccomp", "") => return Err(Error::BadOption(o.clone())),
                ("seccomp", path) if !privileged => s.seccomp = Seccomp::Profile(Box::new(read_profile(path)?)),
                ("seccomp", _) => {}
                ("no-new-privileges", "" | "true") => s.no_new_privileges = true,
                ("no-new-privileges", "false") => s.no_new_privileges = false,
                _ => return Err(Error::BadOption(o.clone())),
            }
        }
        Ok(s)
    }

    /// The filter for this container, or `None` when unconfined. Compiling takes ~13 ms,
    /// so compiled filters are kept in `cache` (keyed by profile, capabilities, kernel and
    /// libseccomp version) and compiled once per combination.
    pub fn filter(&self, cache: Option<&std::path::Path>) -> Result<Option<seccomp::Bpf>, Error> {
        match &self.seccomp {
            Seccomp::Unconfined => Ok(None),
            // The built-in profile is keyed by its version, not by its 400 names.
            Seccomp::Default => seccomp::compile_cached(profile::DEFAULT_ID, profile::default_profile, &self.capabilities, cache).map(Some),
            Seccomp::Profile(p) => {
                let id = serde_json::to_string(p).map_err(|e| Error::Seccomp(e.to_string()))?;
                seccomp::compile_cached(&id, || (**p).clone(), &self.capabilities, cache).map(Some)
            }
        }
    }

    /// Everything the process needs to confine itself, prepared before fork; `cache` is
    /// where compiled seccomp filters are kept (berth's run directory).
    pub fn prepare(&self, cache: Option<&std::path::Path>) -> Result<Prepared, Error> {
        Ok(Prepared {
            caps: caps::Resolved::new(&self.capabilities)?,
            filter: self.filter(cache)?,
            no_new_privileges: self.no_new_privileges,
        })
    }
}

fn read_profile(path: &str) -> Result<Profile, Error> {
    let bad = |why: String| Error::Profile { path: path.to_string(), why };
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let p: Profile = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
    // Compile once now so a broken profile fails `run`, not the container's start.
    seccomp::compile(&p, &[]).map_err(|e| bad(e.to_string()))?;
    Ok(p)
}

/// Confinement ready to apply in the container's process.
#[derive(Debug, Clone)]
pub struct Prepared {
    caps: caps::Resolved,
    filter: Option<seccomp::Bpf>,
    no_new_privileges: bool,
}

/// The step of [`Prepared::confine`] that failed.
pub type Step = (&'static str, std::io::Error);

impl Prepared {
    /// Confines the calling process and switches to `uid:gid`, in runc's order: bounding
    /// set, then (without no_new_privs, while CAP_SYS_ADMIN is still held) the filter,
    /// then the user, then the remaining capability sets, then (with no_new_privs) the
    /// filter last. Only syscalls: safe between fork and exec.
    pub fn confine(&self, ids: Option<(u32, u32)>) -> Result<(), Step> {
        self.caps.limit_bounding().map_err(|e| ("drop bounding capabilities", e))?;
        if self.no_new_privileges {
            // SAFETY: plain prctl.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(("set no_new_privs", std::io::Error::last_os_error()));
            }
        } else if let Some(f) = &self.filter {
            f.load().map_err(|e| ("load seccomp filter", e))?;
        }
        let uid = match ids {
            Some((uid, gid)) => {
                let e = |what| move |err: nix::Error| (what, std::io::Error::from(err));
                nix::unistd::setgroups(&[]).map_err(e("setgroups"))?;
                nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)).map_err(e("setgid"))?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).map_err(e("setuid"))?;
                uid
            }
            None => 0,
        };
        self.caps.apply(uid).map_err(|e| ("set capabilities", e))?;
        if self.no_new_privileges {
            if let Some(f) = &self.filter {
                f.load().map_err(|e| ("load seccomp filter", e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags() {
        let d = Security::from_flags(false, &[], &[], &[]).unwrap();
        assert_eq!(d, Security::default());
        let p = Security::from_flags(true, &[], &[], &[]).unwrap();
        assert!(p.privileged && p.seccomp == Seccomp::Unconfined && p.capabilities.contains(&"CAP_SYS_ADMIN".into()));
        let n = Security::from_flags(false, &[], &[], &s(&["no-new-privileges", "seccomp=unconfined"])).unwrap();
        assert!(n.no_new_privileges && n.seccomp == Seccomp::Unconfined);
        assert!(matches!(Security::from_flags(false, &[], &[], &s(&["apparmor=x"])), Err(Error::BadOption(_))));
        assert!(matches!(Security::from_flags(false, &[], &[], &s(&["seccomp=/nonexistent.json"])), Err(Error::Profile { .. })));
    }
}
