//! On-disk container records: `containers/<id>/container.json`, and a name index
//! `containers/.names/<name>` (holding the ID) so that a name check or a lookup by name
//! or full ID reads one record, not all of them.

use std::fs::{self, File};

use super::Container;
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Takes the containers lock (name reservation, record updates); held briefly.
pub fn lock(paths: &Paths) -> Result<File> {
    Ok(netd::state::lock_file(&paths.containers().join(".lock"))?)
}

/// Writes a record atomically (temp + rename).
pub fn save(paths: &Paths, c: &Container) -> Result<()> {
    let data = serde_json::to_vec_pretty(c).map_err(|e| Error::Record { path: paths.container(&c.id), why: e.to_string() })?;
    Ok(netd::state::write_atomic(&paths.container(&c.id).join("container.json"), &data)?)
}

/// Every container record.
pub fn all(paths: &Paths) -> Result<Vec<Container>> {
    let Ok(rd) = fs::read_dir(paths.containers()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Container> = rd
        .flatten()
        .filter_map(|e| fs::read(e.path().join("container.json")).ok())
        .filter_map(|d| serde_json::from_slice(&d).ok())
        .collect();
    out.sort_by_key(|c: &Container| std::cmp::Reverse(c.created));
    Ok(out)
}

/// The record of `id`, if there is one. `id` is used as a path component only when it
/// is a valid container name (no `/`, no `..`).
fn read(paths: &Paths, id: &str) -> Option<Container> {
    netd::name::Name::container(id).ok()?;
    serde_json::from_slice(&fs::read(paths.container(id).join("container.json")).ok()?).ok()
}

fn name_file(paths: &Paths, name: &str) -> Option<std::path::PathBuf> {
    netd::name::Name::container(name).ok().map(|_| paths.containers().join(".names").join(name))
}

/// The container holding `name`, by the index (one read).
fn by_name(paths: &Paths, name: &str) -> Option<Container> {
    let indexed = name_file(paths, name).and_then(|f| fs::read_to_string(f).ok()).and_then(|id| read(paths, id.trim()));
    indexed.filter(|c| c.name == name)
}

/// Finds a container by name, full ID or unique ID prefix; the first two read one
/// record, a prefix lists the IDs and reads the one that matches.
pub fn lookup(paths: &Paths, key: &str) -> Result<Container> {
    if let Some(c) = by_name(paths, key).or_else(|| read(paths, key)) {
        return Ok(c);
    }
    // Only a hex string of 3 or more can be an ID prefix: anything else costs no listing.
    let prefix = key.len() >= 3 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let ids: Vec<String> = if prefix {
        fs::read_dir(paths.containers())
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| !n.starts_with('.')).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(key)).collect();
    match matches.as_slice() {
        [id] => read(paths, id).ok_or_else(|| Error::NoContainer(key.to_string())),
        // Records of an older version, before the index: found by a scan, once (the
        // next `create` builds the index). With an index, a name not in it is unknown.
        [] if !paths.containers().join(".names").is_dir() => {
            all(paths)?.into_iter().find(|c| c.name == key).ok_or_else(|| Error::NoContainer(key.to_string()))
        }
        [] => Err(Error::NoContainer(key.to_string())),
        _ => Err(Error::Ambiguous(key.to_string())),
    }
}

/// Records a new container, refusing a name already in use (atomically, under the lock:
/// an index entry whose record is gone or names another container is stale).
pub fn create(paths: &Paths, c: &Container) -> Result<()> {
    let _l = lock(paths)?;
    let index = name_file(paths, &c.name).ok_or_else(|| Error::NameInUse(c.name.clone()))?;
    if let Some(dir) = index.parent().filter(|d| !d.exists()) {
        // First use of the index (records of an older version): build it once.
        netd::state::private_dir(dir)?;
        for o in all(paths)? {
            if let Some(f) = name_file(paths, &o.name) {
                netd::state::write_atomic(&f, o.id.as_bytes())?;
            }
        }
    }
    if by_name(paths, &c.name).is_some() {
        return Err(Error::NameInUse(c.name.clone()));
    }
    // The name first: a crash before the record leaves an entry naming no record, which
    // holds nothing; the other order would leave a record its name cannot find.
    netd::state::write_atomic(&index, c.id.as_bytes())?;
    if let Err(e) = save(paths, c) {
        let _ = fs::remove_file(&index);
        return Err(e);
    }
    Ok(())
}

/// Re-reads the record and applies `f` under the lock.
pub fn update(paths: &Paths, id: &str, f: impl FnOnce(&mut Container)) -> Result<Container> {
    let _l = lock(paths)?;
    let p = paths.container(id).join("container.json");
    let data = fs::read(&p).map_err(|e| Error::io("read", &p, e))?;
    let mut c: Container = serde_json::from_slice(&data).map_err(|e| Error::Record { path: p.clone(), why: e.to_string() })?;
    f(&mut c);
    save(paths, &c)?;
    Ok(c)
}

/// Deletes the container's directory and its name's index entry.
pub fn remove_dir(paths: &Paths, id: &str) -> Result<()> {
    if let Some(f) = read(paths, id).and_then(|c| name_file(paths, &c.name)) {
        if fs::read_to_string(&f).is_ok_and(|held| held.trim() == id) {
            let _ = fs::remove_file(f);
        }
    }
    let dir = paths.container(id);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", dir, e)),
        _ => Ok(()),
    }
}

/// Renames container `id` to `name` (checked as a container name), refusing a name in
/// use: the new index entry first, then the record, then the old entry goes.
pub fn rename(paths: &Paths, id: &str, name: &str) -> Result<()> {
    let name = netd::name::Name::container(name.trim_start_matches('/')).map_err(netd::Error::from)?.to_string();
    let _l = lock(paths)?;
    let p = paths.container(id).join("container.json");
    let data = fs::read(&p).map_err(|e| Error::io("read", &p, e))?;
    let mut c: Container = serde_json::from_slice(&data).map_err(|e| Error::Record { path: p.clone(), why: e.to_string() })?;
    if c.name == name {
        return Ok(());
    }
    if by_name(paths, &name).is_some() {
        return Err(Error::NameInUse(name));
    }
    let index = name_file(paths, &name).ok_or_else(|| Error::NameInUse(name.clone()))?;
    if let Some(dir) = index.parent() {
        netd::state::private_dir(dir)?;
    }
    netd::state::write_atomic(&index, c.id.as_bytes())?;
    let old = name_file(paths, &c.name);
    c.name = name;
    if let Err(e) = save(paths, &c) {
        let _ = fs::remove_file(&index);
        return Err(e);
    }
    if let Some(old) = old {
        let _ = fs::remove_file(old);
    }
    Ok(())
}
