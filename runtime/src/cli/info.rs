//! `ps`, `logs`, `inspect`, `port`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use serde_json::json;

use super::format::{self, Format};
use crate::container::{self, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// "5 seconds ago", "3 minutes ago"... as Docker's CREATED columns.
pub(super) fn ago(t: u64) -> String {
    format!("{} ago", crate::clock::since(t))
}

fn ports(c: &Container) -> String {
    c.published()
        .iter()
        .map(|m| format!("{}:{}->{}/{}", m.host_ip_display(), m.host_port, m.container_port, m.proto))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status(c: &Container) -> String {
    c.status_text()
}

/// How `ps` lists.
#[derive(Debug)]
pub struct Listing {
    /// Stopped ones too.
    pub all: bool,
    /// IDs only.
    pub quiet: bool,
    /// Full IDs and commands.
    pub no_trunc: bool,
    /// `--filter`.
    pub filters: crate::container::list::Filters,
    /// `--format`.
    pub format: Format,
}

fn state_name(c: &Container) -> &'static str {
    c.state_text()
}

fn labels_text(l: &std::collections::BTreeMap<String, String>) -> String {
    l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A container as `docker ps --format` sees it.
fn ps_item(c: &Container, no_trunc: bool) -> serde_json::Value {
    let mut cmd = format!("\"{}\"", c.spec.args.join(" "));
    // Cut by characters: a byte index could split a multi-byte one.
    if !no_trunc && cmd.chars().count() > 24 {
        cmd = format!("{}…\"", cmd.chars().take(22).collect::<String>());
    }
    json!({
        "ID": if no_trunc { c.id.as_str() } else { c.short_id() },
        "Image": c.spec.image,
        "Command": cmd,
        "CreatedAt": netd::clock::rfc3339(c.created),
        "RunningFor": ago(c.created),
        "Ports": ports(c),
        "State": state_name(c),
        "Status": status(c),
        "Names": c.name,
        "Labels": labels_text(&c.spec.labels),
        "Networks": c.spec.net.display(),
    })
}

const PS_TITLES: [(&str, &str); 11] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Networks", "NETWORKS"),
];

/// Lists containers.
pub fn ps(paths: &Paths, l: &Listing) -> Result<i32> {
    let list = crate::container::list::list(paths, l.all, &l.filters)?;
    let items: Vec<serde_json::Value> = list.iter().map(|c| ps_item(c, l.no_trunc)).collect();
    if l.quiet {
        for i in &items {
            println!("{}", i["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    format::print_list(&l.format, &items, &PS_TITLES, || {
        let mut lines = vec![format!(
            "{:<12}  {:<16}  {:<24}  {:<16}  {:<28}  {:<30}  NAMES",
            "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS"
        )];
        for i in &items {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            lines.push(format!(
                "{:<12}  {:<16}  {:<24}  {:<16}  {:<28}  {:<30}  {}",
                s("ID"),
                s("Image"),
                s("Command"),
                s("RunningFor"),
                s("Status"),
                s("Ports"),
                s("Names")
            ));
        }
        lines
    })?;
    Ok(0)
}

/// Prints the container's log; with `follow`, keeps printing until it exits.
pub fn logs(paths: &Paths, name: &str, follow: bool) -> Result<i32> {
    let c = container::lookup(paths, name)?;
    let p = paths.container(&c.id).join("container.log");
    let mut f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(_) if !follow => return Ok(0),
        Err(e) => return Err(Error::io("open", &p, e)),
    };
    let mut out = std::io::stdout();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        f.read_to_end(&mut buf).map_err(|e| Error::io("read", &p, e))?;
        out.write_all(&buf).map_err(|e| Error::io("write", "stdout", e))?;
        let _ = out.flush();
        if !follow {
            return Ok(0);
        }
        let cur = container::lookup(paths, &c.id)?;
        if cur.effective_status() != Status::Running {
            buf.clear();
            f.read_to_end(&mut buf).map_err(|e| Error::io("read", &p, e))?;
            out.write_all(&buf).map_err(|e| Error::io("write", "stdout", e))?;
            return Ok(0);
        }
        let pos = f.stream_position().unwrap_or(0);
        std::thread::sleep(Duration::from_millis(100));
        let _ = f.seek(SeekFrom::Start(pos));
    }
}

/// Details as JSON (the Docker API's inspect document), or through `--format`. Each
/// name is tried; an unknown one is reported after the others are printed (as Docker).
pub fn inspect(paths: &Paths, names: &[String], format: &Format) -> Result<i32> {
    let mut out = Vec::new();
    let mut missing = None;
    for n in names {
        match container::lookup(paths, n) {
            Ok(c) => out.push(c.inspect(paths)),
            Err(e @ Error::NoContainer(_)) => missing = Some(e),
            Err(e) => return Err(e),
        }
    }
    format::print_objects(format, &out)?;
    missing.map_or(Ok(0), Err)
}

/// Published ports, as `docker port` prints them.
pub fn port(paths: &Paths, name: &str) -> Result<i32> {
    let c = container::lookup(paths, name)?;
    for m in c.published() {
        println!("{}/{} -> {}:{}", m.container_port, m.proto, m.host_ip_display(), m.host_port);
    }
    Ok(0)
}
