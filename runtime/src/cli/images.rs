//! `import`, `load`, `images`, `rmi`.

use std::path::Path;

use crate::clock::now;
use crate::container;
use crate::error::{Error, Result};
use crate::image;
use crate::paths::Paths;

/// Imports a rootfs tarball.
pub fn import(paths: &Paths, file: &Path, name: &str) -> Result<i32> {
    let img = image::import(paths, file, name)?;
    println!("{}", img.id);
    Ok(0)
}

/// Loads a docker-save or OCI archive.
pub fn load(paths: &Paths, file: &Path) -> Result<i32> {
    for img in image::load(paths, file)? {
        println!("Loaded image: {}", img.name);
    }
    Ok(0)
}

/// Lists images.
pub fn list(paths: &Paths) -> Result<i32> {
    println!("{:<32}  {:<12}  {:<8}  CREATED", "REPOSITORY:TAG", "IMAGE ID", "LAYERS");
    for i in image::list(paths)? {
        let id: String = i.id.trim_start_matches("sha256:").chars().take(12).collect();
        println!("{:<32}  {:<12}  {:<8}  {} seconds ago", i.name, id, i.layers.len(), now().saturating_sub(i.created));
    }
    Ok(0)
}

/// Removes images.
pub fn rmi(paths: &Paths, names: &[String], force: bool) -> Result<i32> {
    for n in names {
        let img = image::get(paths, n)?;
        if !force {
            if let Some(c) = container::all(paths)?.into_iter().find(|c| c.spec.image_id == img.id) {
                return Err(Error::State(format!("image {} is used by container {} (remove it first or use -f)", img.name, c.name)));
            }
        }
        let in_use: Vec<String> = container::all(paths)?.into_iter().flat_map(|c| c.spec.layers).collect();
        image::remove(paths, n, &in_use)?;
        println!("Untagged: {}", img.name);
    }
    Ok(0)
}
