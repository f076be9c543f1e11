//! `import`, `load`, `images`, `rmi`.

use std::path::Path;

use super::format::{self, Format};
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

const TITLES: [(&str, &str); 6] = [
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Layers", "LAYERS"),
];

/// Lists images.
pub fn list(paths: &Paths, quiet: bool, no_trunc: bool, format: &Format) -> Result<i32> {
    let items: Vec<serde_json::Value> = image::list(paths)?
        .iter()
        .map(|i| {
            let (repo, tag) = i.name.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((&i.name, ""));
            let id: String = if no_trunc { i.id.clone() } else { i.id.trim_start_matches("sha256:").chars().take(12).collect() };
            serde_json::json!({
                "Repository": repo, "Tag": tag, "ID": id,
                "CreatedAt": netd::clock::rfc3339(i.created),
                "CreatedSince": format!("{} seconds ago", now().saturating_sub(i.created)),
                "Layers": i.layers.len(),
            })
        })
        .collect();
    if quiet {
        for i in &items {
            println!("{}", i["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    format::print_list(format, &items, &TITLES, || {
        let mut lines = vec![format!("{:<32}  {:<12}  {:<8}  CREATED", "REPOSITORY:TAG", "IMAGE ID", "LAYERS")];
        for i in &items {
            let name = format!("{}:{}", i["Repository"].as_str().unwrap_or_default(), i["Tag"].as_str().unwrap_or_default());
            lines.push(format!(
                "{name:<32}  {:<12}  {:<8}  {}",
                i["ID"].as_str().unwrap_or_default(),
                i["Layers"],
                i["CreatedSince"].as_str().unwrap_or_default()
            ));
        }
        lines
    })?;
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
