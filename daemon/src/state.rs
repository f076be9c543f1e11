//! Small JSON state files: written to a temporary name and renamed into place, so a kill
//! at any point leaves either the old or the new file, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Opens (creating it and its directory) and exclusively flocks `path`; the lock is held
/// until the returned file is dropped. Every lock of berth and its plugins goes through
/// here, so concurrent processes serialise the same way.
pub fn lock_file(path: &Path) -> Result<fs::File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create lock directory", dir, e))?;
    }
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| Error::io("open lock", path, e))?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io("lock", path, err));
        }
    }
}

/// Writes `data` to `dst` through a temporary file in the same directory renamed into
/// place, so readers and a kill at any point see the old or the new content, never a
/// torn one. Leftover temporaries are named `.tmp-*`.
pub fn write_atomic(dst: &Path, data: &[u8]) -> Result<()> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let name = dst.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(data).map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, dst).map_err(|e| Error::io("rename", dst, e))
}

/// A directory of JSON records keyed by name.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// Turns an arbitrary key (network/container/ifname) into a safe file name.
pub fn file_key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect::<String>())
        .collect::<Vec<_>>()
        .join("~")
}

impl StateDir {
    /// Opens (creating) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create state directory", &dir, e))?;
        Ok(Self { dir })
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Saves `value` under `key` atomically.
    pub fn save<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let data = serde_json::to_vec(value).map_err(|e| Error::io("encode state", self.dir.join(key), e.into()))?;
        write_atomic(&self.dir.join(format!("{key}.json")), &data)
    }

    /// Loads the record under `key`; `None` if there is none or it cannot be read.
    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let data = fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Removes the record; a missing one is success.
    pub fn remove(&self, key: &str) -> Result<()> {
        let p = self.dir.join(format!("{key}.json"));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", p, e)),
            _ => Ok(()),
        }
    }

    /// Every record's key.
    pub fn keys(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_suffix(".json").filter(|_| !n.starts_with('.')).map(str::to_string)
            })
            .collect()
    }
}
