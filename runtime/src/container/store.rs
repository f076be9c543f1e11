//! On-disk container records: `containers/<id>/container.json`.

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

/// Finds a container by name, full ID or unique ID prefix.
pub fn lookup(paths: &Paths, key: &str) -> Result<Container> {
    let all = all(paths)?;
    if let Some(c) = all.iter().find(|c| c.name == key || c.id == key) {
        return Ok(c.clone());
    }
    let matches: Vec<&Container> = all.iter().filter(|c| key.len() >= 3 && c.id.starts_with(key)).collect();
    match matches.as_slice() {
        [c] => Ok((*c).clone()),
        [] => Err(Error::NoContainer(key.to_string())),
        _ => Err(Error::Ambiguous(key.to_string())),
    }
}

/// Records a new container, refusing a name already in use (atomically).
pub fn create(paths: &Paths, c: &Container) -> Result<()> {
    let _l = lock(paths)?;
    if all(paths)?.iter().any(|o| o.name == c.name) {
        return Err(Error::NameInUse(c.name.clone()));
    }
    save(paths, c)
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

/// Deletes the container's directory.
pub fn remove_dir(paths: &Paths, id: &str) -> Result<()> {
    let dir = paths.container(id);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", dir, e)),
        _ => Ok(()),
    }
}
