//! Volumes: directories berth manages under `<root>/volumes/<name>/_data` that outlive
//! the containers mounting them (Docker's `local` driver). A named volume is created on
//! first use; an anonymous one (`-v /data`) gets a random name and goes with `rm -v`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::container::{self, Volume};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// A volume's record (`volume.json` beside its `_data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Name.
    pub name: String,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container (`-v /path`), removed with it by `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
}

impl Record {
    /// The volume as the Docker Engine API shows it (`volume inspect`, `GET /volumes`).
    pub fn docker(&self, paths: &Paths) -> serde_json::Value {
        serde_json::json!({
            "Name": self.name,
            "Driver": "local",
            "Mountpoint": mountpoint(paths, &self.name).display().to_string(),
            "CreatedAt": netd::clock::rfc3339(self.created),
            "Labels": self.labels,
            "Scope": "local",
            "Options": {},
            "Anonymous": self.anonymous,
        })
    }
}

fn dir(paths: &Paths, name: &str) -> PathBuf {
    paths.lib.join("volumes").join(name)
}

/// Where a volume's data is (what containers mount).
pub fn mountpoint(paths: &Paths, name: &str) -> PathBuf {
    dir(paths, name).join("_data")
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, 2 to 255 characters.
pub fn check_name(name: &str) -> Result<()> {
    let ok = (2..=255).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Flag {
            flag: "volume name",
            value: name.into(),
            why: "use 2-255 of [a-zA-Z0-9_.-], starting with a letter or digit".into(),
        })
    }
}

/// The record of `name`, if the volume exists.
pub fn get(paths: &Paths, name: &str) -> Option<Record> {
    check_name(name).ok()?;
    fs::read(dir(paths, name).join("volume.json")).ok().and_then(|d| serde_json::from_slice(&d).ok())
}

/// Creates a volume (an existing one is returned as it is, as Docker does).
pub fn create(paths: &Paths, name: &str, labels: BTreeMap<String, String>, anonymous: bool) -> Result<Record> {
    check_name(name)?;
    if let Some(r) = get(paths, name) {
        return Ok(r);
    }
    let d = dir(paths, name);
    let data = mountpoint(paths, name);
    fs::create_dir_all(&data).map_err(|e| Error::io("create", &data, e))?;
    let r = Record { name: name.into(), created: crate::clock::now(), labels, anonymous };
    let json = serde_json::to_vec_pretty(&r).map_err(|e| Error::Record { path: d.clone(), why: e.to_string() })?;
    // The record last: a directory without one is not a volume, and the next create
    // completes it.
    netd::state::write_atomic(&d.join("volume.json"), &json)?;
    Ok(r)
}

/// Every volume, by name.
pub fn list(paths: &Paths) -> Vec<Record> {
    let mut v: Vec<Record> = fs::read_dir(paths.lib.join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| get(paths, &e.file_name().to_string_lossy()))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The names of the containers (any state) that mount `name`.
pub fn users(paths: &Paths, name: &str) -> Result<Vec<String>> {
    Ok(container::all(paths)?
        .into_iter()
        .filter(|c| c.spec.volumes.iter().any(|v| v.volume.as_deref() == Some(name)))
        .map(|c| c.name)
        .collect())
}

/// Removes a volume no container uses, with its data.
pub fn remove(paths: &Paths, name: &str) -> Result<()> {
    if get(paths, name).is_none() {
        return Err(Error::State(format!("no such volume: {name}")));
    }
    let users = users(paths, name)?;
    if !users.is_empty() {
        return Err(Error::State(format!("volume {name} is in use by container {} (remove it first)", users.join(", "))));
    }
    delete(paths, name)
}

/// Removes a volume known to be unused, with its data.
fn delete(paths: &Paths, name: &str) -> Result<()> {
    let d = dir(paths, name);
    // The record first: a half-removed volume is no volume.
    let rec = d.join("volume.json");
    fs::remove_file(&rec).map_err(|e| Error::io("remove", &rec, e))?;
    fs::remove_dir_all(&d).map_err(|e| Error::io("remove", &d, e))
}

/// Removes the unused volumes: anonymous ones, or all with `all`; returns their names.
pub fn prune(paths: &Paths, all: bool) -> Result<Vec<String>> {
    let used: Vec<String> = container::all(paths)?.into_iter().flat_map(|c| c.spec.volumes).filter_map(|v| v.volume).collect();
    let mut gone = Vec::new();
    for r in list(paths) {
        if (all || r.anonymous) && !used.contains(&r.name) {
            delete(paths, &r.name)?;
            gone.push(r.name);
        }
    }
    Ok(gone)
}

/// Removes the anonymous volumes of a container being removed (`rm -v`, `--rm`).
pub fn remove_anonymous(paths: &Paths, vols: &[Volume]) {
    for v in vols.iter().filter(|v| v.anonymous) {
        if let Some(name) = &v.volume {
            if let Err(e) = remove(paths, name) {
                tracing::warn!(volume = %name, error = %e, "anonymous volume left");
            }
        }
    }
}

/// What a `-v` or `--mount` names, before anything is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host path.
    Bind(String),
    /// A named volume.
    Named(String),
    /// A new anonymous volume.
    Anonymous,
}

/// One mount request, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What is mounted.
    pub source: Source,
    /// Where, inside the container's root (cleaned: `..` cannot climb out).
    pub target: String,
    /// Read-only.
    pub readonly: bool,
}

fn flag_err(flag: &'static str, value: &str, why: &str) -> Error {
    Error::Flag { flag, value: value.into(), why: why.into() }
}

fn target(flag: &'static str, spec: &str, t: &str) -> Result<String> {
    if !t.starts_with('/') {
        return Err(flag_err(flag, spec, "the container path must be absolute"));
    }
    let t = format!("/{}", crate::beneath::clean_in_root(t).display());
    if t == "/" {
        return Err(flag_err(flag, spec, "cannot mount over the root"));
    }
    Ok(t)
}

/// Parses `-v HOST:CTR[:ro|rw]`, `-v NAME:CTR[:ro|rw]` or `-v CTR`.
pub fn parse_v(spec: &str) -> Result<Request> {
    let flag = "--volume";
    if spec.contains(char::is_control) {
        return Err(flag_err(flag, spec, "control characters"));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, ctr, mode) = match parts.as_slice() {
        [c] => (None, *c, ""),
        [s, c] => (Some(*s), *c, ""),
        [s, c, m] => (Some(*s), *c, *m),
        _ => return Err(flag_err(flag, spec, "use HOST:CONTAINER[:ro], NAME:CONTAINER[:ro] or CONTAINER")),
    };
    let readonly = match mode {
        "" | "rw" => false,
        "ro" => true,
        _ => return Err(flag_err(flag, spec, "the mode is ro or rw")),
    };
    let source = match src {
        None => Source::Anonymous,
        Some(s) if s.starts_with('/') => Source::Bind(s.into()),
        Some(s) => {
            check_name(s)?;
            Source::Named(s.into())
        }
    };
    Ok(Request { source, target: target(flag, spec, ctr)?, readonly })
}

/// Parses `--mount type=bind|volume,source=...,target=...[,readonly]`.
pub fn parse_mount(spec: &str) -> Result<Request> {
    let flag = "--mount";
    if spec.contains(char::is_control) {
        return Err(flag_err(flag, spec, "control characters"));
    }
    let (mut ty, mut src, mut dst, mut readonly) = ("volume", None, None, false);
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => {
                ty = if v == "bind" {
                    "bind"
                } else if v == "volume" {
                    "volume"
                } else {
                    return Err(flag_err(flag, spec, "type is bind or volume"));
                }
            }
            "source" | "src" => src = Some(v),
            "target" | "destination" | "dst" => dst = Some(v),
            "readonly" | "ro" => readonly = matches!(v, "" | "true" | "1"),
            _ => return Err(flag_err(flag, spec, "keys are type, source, target, readonly")),
        }
    }
    let dst = dst.ok_or_else(|| flag_err(flag, spec, "target= is required"))?;
    let source = match (ty, src) {
        ("bind", Some(s)) if s.starts_with('/') => Source::Bind(s.into()),
        ("bind", _) => return Err(flag_err(flag, spec, "a bind mount needs an absolute source=")),
        (_, None | Some("")) => Source::Anonymous,
        (_, Some(s)) => {
            check_name(s)?;
            Source::Named(s.into())
        }
    };
    Ok(Request { source, target: target(flag, spec, dst)?, readonly })
}

/// Turns requests into the container's mounts, creating the volumes they name. A host
/// path must exist. Nothing is created unless every request is valid; on a failure the
/// volumes created by this call are removed again.
pub fn resolve(paths: &Paths, reqs: &[Request]) -> Result<Vec<Volume>> {
    for r in reqs {
        if let Source::Bind(h) = &r.source {
            if !std::path::Path::new(h).exists() {
                return Err(flag_err("--volume", h, "the host path does not exist"));
            }
        }
    }
    let mut out = Vec::new();
    let mut created: Vec<String> = Vec::new();
    for r in reqs {
        let (name, anonymous) = match &r.source {
            Source::Bind(h) => {
                out.push(Volume { host: h.clone(), container: r.target.clone(), readonly: r.readonly, volume: None, anonymous: false });
                continue;
            }
            Source::Named(n) => (n.clone(), false),
            Source::Anonymous => (crate::container::id::random(32), true),
        };
        if get(paths, &name).is_none() {
            created.push(name.clone());
        }
        if let Err(e) = create(paths, &name, BTreeMap::new(), anonymous) {
            // Made by this call and used by nothing yet.
            created.iter().for_each(|c| drop(delete(paths, c)));
            return Err(e);
        }
        let host = mountpoint(paths, &name).display().to_string();
        out.push(Volume { host, container: r.target.clone(), readonly: r.readonly, volume: Some(name), anonymous });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_specs_parse_as_docker_reads_them() {
        assert_eq!(
            parse_v("data:/srv:ro").unwrap(),
            Request { source: Source::Named("data".into()), target: "/srv".into(), readonly: true }
        );
        assert_eq!(parse_v("/h:/c").unwrap().source, Source::Bind("/h".into()));
        assert_eq!(parse_v("/c").unwrap().source, Source::Anonymous);
        assert_eq!(parse_v("data:/../../etc").unwrap().target, "/etc");
        for bad in ["data:/", "da ta:/x", "x:/y", "data:rel", "data:/x:rx", "a:b:c:d", "-x:/y"] {
            assert!(parse_v(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn mount_specs_parse() {
        let r = parse_mount("type=volume,source=data,target=/srv,readonly").unwrap();
        assert_eq!(r, Request { source: Source::Named("data".into()), target: "/srv".into(), readonly: true });
        assert_eq!(parse_mount("type=bind,src=/h,dst=/c").unwrap().source, Source::Bind("/h".into()));
        assert_eq!(parse_mount("target=/c").unwrap().source, Source::Anonymous);
        for bad in ["type=tmpfs,target=/x", "type=bind,target=/x", "source=data", "type=volume,source=data,target=/x,colour=red"] {
            assert!(parse_mount(bad).is_err(), "{bad} accepted");
        }
    }
}
