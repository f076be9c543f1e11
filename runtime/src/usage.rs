//! Disk use as `docker system df` reports it: each image's layers (shared ones counted
//! once in the total), each container's writable layer, each volume's data and how many
//! containers mount it.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::Result;
use crate::paths::Paths;

/// Bytes of the regular files under `p`, symlinks not followed, hard links counted once.
pub fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

/// The `GET /system/df` document.
pub fn system_df(paths: &Paths) -> Result<Value> {
    let images = crate::image::list(paths)?;
    let containers = crate::container::all(paths)?;
    let mut layer_total = 0;
    let mut counted = BTreeSet::new();
    let mut by_id: std::collections::BTreeMap<String, (Vec<String>, u64, u64)> = Default::default();
    for img in &images {
        let size: u64 = img.layers.iter().map(|l| du(&crate::image::layer_dir(paths, l))).sum();
        for l in &img.layers {
            if counted.insert(l.clone()) {
                layer_total += du(&crate::image::layer_dir(paths, l));
            }
        }
        let e = by_id.entry(img.id.clone()).or_insert((Vec::new(), size, img.created));
        e.0.push(img.name.clone());
    }
    let image_docs: Vec<Value> = by_id
        .iter()
        .map(|(id, (tags, size, created))| {
            let users = containers.iter().filter(|c| c.spec.image_id == *id).count();
            json!({"Id": id, "RepoTags": tags, "Created": created, "Size": size, "SharedSize": -1, "VirtualSize": size, "Containers": users})
        })
        .collect();
    let container_docs: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.spec.image, "ImageID": c.spec.image_id,
                "Command": c.spec.args.join(" "), "Created": c.created, "State": c.state_text(), "Status": c.status_text(),
                "SizeRw": du(&paths.container(&c.id).join("upper")), "SizeRootFs": 0,
            })
        })
        .collect();
    let volume_docs: Vec<Value> = crate::volume::list(paths)
        .iter()
        .map(|v| {
            let refs = containers.iter().filter(|c| c.spec.volumes.iter().any(|m| m.volume.as_deref() == Some(v.name.as_str()))).count();
            let mut d = v.docker(paths);
            d["UsageData"] = json!({"Size": du(&crate::volume::mountpoint(paths, &v.name)), "RefCount": refs});
            d
        })
        .collect();
    Ok(json!({"LayersSize": layer_total, "Images": image_docs, "Containers": container_docs, "Volumes": volume_docs, "BuildCache": []}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn du_counts_files_once_and_not_through_symlinks() {
        let d = std::env::temp_dir().join(format!("berth-du-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a"), [0u8; 100]).unwrap();
        std::fs::hard_link(d.join("a"), d.join("sub/b")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("etc")).unwrap();
        assert_eq!(super::du(&d), 100);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
