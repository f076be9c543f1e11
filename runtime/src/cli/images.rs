//! `import`, `load`, `images`, `rmi`.

use std::path::Path;

use super::format::{self, Format};
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
pub fn list(paths: &Paths, quiet: bool, no_trunc: bool, format: &Format, reference: Option<&str>) -> Result<i32> {
    let wanted = |name: &str| match reference {
        None => true,
        Some(r) if r.rsplit('/').next().is_some_and(|last| last.contains(':')) => name == r,
        Some(r) => name.rsplit_once(':').is_some_and(|(repo, _)| repo == r),
    };
    let items: Vec<serde_json::Value> = image::list(paths)?
        .iter()
        .filter(|i| wanted(&i.name))
        .map(|i| {
            let (repo, tag) = i.name.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((&i.name, ""));
            let id: String = if no_trunc { i.id.clone() } else { i.id.trim_start_matches("sha256:").chars().take(12).collect() };
            serde_json::json!({
                "Repository": repo, "Tag": tag, "ID": id,
                "CreatedAt": netd::clock::rfc3339(i.created),
                "CreatedSince": super::info::ago(i.created),
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

/// Removes images: an image's other names stay, and with them the image.
pub fn rmi(paths: &Paths, names: &[String], force: bool) -> Result<i32> {
    for n in names {
        let img = image::delete(paths, n, force)?;
        println!("Untagged: {}", img.name);
    }
    Ok(0)
}

/// `berth commit`: prints the new image's ID.
pub fn commit(paths: &Paths, container: &str, name: Option<&str>, message: &str, changes: &[String]) -> Result<i32> {
    let img = image::commit::commit(paths, container, name, message, changes)?;
    println!("{}", img.id);
    Ok(0)
}

/// `berth tag`.
pub fn tag(paths: &Paths, source: &str, target: &str) -> Result<i32> {
    let img = image::get(paths, source)?;
    image::store::tag(paths, &img, target)?;
    Ok(0)
}

/// `berth save`: to a file (written whole, then renamed: no half archive is left) or
/// to stdout.
pub fn save(paths: &Paths, names: &[String], output: Option<&Path>) -> Result<i32> {
    let images = names.iter().map(|n| image::get(paths, n)).collect::<Result<Vec<_>>>()?;
    match output {
        Some(out) => {
            let tmp = out.with_file_name(format!(".{}.tmp-{}", out.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
            let f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            let res = image::save::save(paths, &images, std::io::BufWriter::new(f));
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, out).map_err(|e| Error::io("rename", out, e))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(Error::Conflict("refusing to write an archive to a terminal: use -o FILE or redirect stdout"));
            }
            image::save::save(paths, &images, std::io::stdout().lock())?;
        }
    }
    Ok(0)
}

const HISTORY_TITLES: [(&str, &str); 6] = [
    ("ID", "IMAGE"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

fn size(n: u64) -> String {
    match n {
        0..=999 => format!("{n}B"),
        1000..=999_999 => format!("{:.1}kB", n as f64 / 1e3),
        _ => format!("{:.1}MB", n as f64 / 1e6),
    }
}

/// `berth history`: the config's history, newest first, each non-empty entry with the
/// size of its layer.
pub fn history(paths: &Paths, name: &str, no_trunc: bool, quiet: bool, format: &Format) -> Result<i32> {
    let img = image::get(paths, name)?;
    let cfg = image::store::config(paths, &img)?;
    let layers = image::store::layers_with(paths, &img, &cfg).unwrap_or_default();
    let mut sizes = layers.iter().map(|l| l.size);
    let mut items = Vec::new();
    let hist = cfg["history"].as_array().cloned().unwrap_or_default();
    for h in &hist {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let created = h["created"].as_str().unwrap_or("").to_string();
        let mut by = h["created_by"].as_str().unwrap_or("").to_string();
        if !no_trunc && by.chars().count() > 45 {
            by = format!("{}…", by.chars().take(44).collect::<String>());
        }
        let since = netd::clock::parse_rfc3339(&created).map(super::info::ago).unwrap_or_default();
        items.push(serde_json::json!({
            "ID": "<missing>", "CreatedAt": created, "CreatedSince": since,
            "CreatedBy": by, "Size": size(if empty { 0 } else { sizes.next().unwrap_or(0) }),
            "Comment": h["comment"].as_str().unwrap_or(""),
        }));
    }
    items.reverse();
    if let Some(top) = items.first_mut() {
        top["ID"] = serde_json::json!(if no_trunc { img.id.clone() } else { img.id.trim_start_matches("sha256:")[..12].to_string() });
    }
    if quiet {
        items.iter().for_each(|i| println!("{}", i["ID"].as_str().unwrap_or_default()));
        return Ok(0);
    }
    format::print_list(format, &items, &HISTORY_TITLES, || {
        let s = |i: &serde_json::Value, k: &str| i[k].as_str().unwrap_or_default().to_string();
        let rows: Vec<String> =
            std::iter::once("IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT".to_string())
                .chain(items.iter().map(|i| {
                    format!("{}\t{}\t{}\t{}\t{}", s(i, "ID"), s(i, "CreatedSince"), s(i, "CreatedBy"), s(i, "Size"), s(i, "Comment"))
                }))
                .collect();
        format::align(&rows)
    })?;
    Ok(0)
}
