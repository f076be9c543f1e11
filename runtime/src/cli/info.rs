//! `ps`, `logs`, `inspect`, `port`.

use std::io::Write;

use serde_json::json;

use super::format::{self, Format};
use crate::container::log::{Entry, Stream};
use crate::container::output::Until;
use crate::container::{self, Container};
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

/// Prints the container's log (stdout's entries on stdout, stderr's on stderr), its last
/// `tail` lines; with `follow`, keeps printing until it exits.
pub fn logs(paths: &Paths, name: &str, follow: bool, timestamps: bool, tail: Option<usize>) -> Result<i32> {
    let c = container::lookup(paths, name)?;
    let (entries, end) = c.log_entries(paths)?;
    let from = tail.map_or(0, |n| entries.len().saturating_sub(n));
    print_entries(&entries[from..], timestamps)?;
    if follow {
        let mut f = c.follow(paths, Some(end), Until::NotRunning)?;
        while let Some(entries) = f.next_entries() {
            print_entries(&entries, timestamps)?;
        }
    }
    Ok(0)
}

fn print_entries(entries: &[Entry], timestamps: bool) -> Result<()> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for e in entries {
        let w: &mut dyn Write = match e.stream {
            Stream::Stdout => &mut out,
            Stream::Stderr => &mut err,
        };
        let r = if timestamps { write!(w, "{} {}", e.time, e.log) } else { w.write_all(e.log.as_bytes()) };
        r.and_then(|()| w.flush()).map_err(|e| Error::io("write", "stdout", e))?;
    }
    Ok(())
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
