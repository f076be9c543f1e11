//! The build cache: each step's result under a key of its parent and what it does.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::image::unpack::hex;
use crate::paths::Paths;

/// Where the manifest digest of a step's result is kept.
pub(super) fn cache_path(paths: &Paths, key: &str) -> PathBuf {
    paths.lib.join("build-cache").join(key)
}

/// A step's key: its parent's and its own text.
pub(super) fn next_key(parent: &str, text: &str) -> String {
    hex(&Sha256::digest(format!("{parent}\n{text}").as_bytes()))
}
