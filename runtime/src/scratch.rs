//! Scratch space under the state root's `tmp` (0700): a directory or file removed when
//! its guard drops, whatever way the work ends — one guard for pulls, builds and the
//! daemon's uploads.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::paths::Paths;

/// A scratch path, removed (with its content) on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new, empty directory `tmp/<what>-<random>`.
    pub fn dir(paths: &Paths, what: &str) -> Result<Self> {
        let p = Self::path(paths, what);
        std::fs::create_dir_all(&p).map_err(|e| Error::io("create", &p, e))?;
        Ok(Self(p))
    }

    /// A fresh path `tmp/<what>-<random>`, not created: the caller makes the file.
    pub fn path(paths: &Paths, what: &str) -> PathBuf {
        paths.lib.join("tmp").join(format!("{what}-{}", crate::container::id::random(8)))
    }

    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
    }
}
