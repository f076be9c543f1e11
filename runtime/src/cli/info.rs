//! `ps`, `logs`, `inspect`, `port`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use serde_json::json;

use super::format::{self, Format};
use crate::clock::now;
use crate::container::{self, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// "5 seconds", "3 minutes"... since `t`.
fn since(t: u64) -> String {
    let d = now().saturating_sub(t);
    match d {
        0..=59 => format!("{d} seconds"),
        60..=3599 => format!("{} minutes", d / 60),
        3600..=86399 => format!("{} hours", d / 3600),
        _ => format!("{} days", d / 86400),
    }
}

/// "5 seconds ago", "3 minutes ago"... as Docker's CREATED columns.
pub(super) fn ago(t: u64) -> String {
    format!("{} ago", since(t))
}

fn ports(c: &Container) -> String {
    c.published()
        .iter()
        .map(|m| format!("{}:{}->{}/{}", m.host_ip_display(), m.host_port, m.container_port, m.proto))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status(c: &Container) -> String {
    match c.effective_status() {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(c.state.started_at.unwrap_or(c.created))),
        Status::Exited => format!("Exited ({}) {}", c.state.exit_code.unwrap_or(0), ago(c.state.finished_at.unwrap_or(c.created))),
    }
}

/// `ps --filter`: each key's values are alternatives, keys must all match.
#[derive(Debug, Default)]
pub struct Filters {
    by: std::collections::BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `KEY=VALUE` filters; an unknown key or a bad status is an error, as Docker's.
    pub fn parse(given: &[String]) -> Result<Self> {
        let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for f in given {
            let bad = |why: &str| Error::Flag { flag: "--filter", value: f.clone(), why: why.into() };
            let (k, v) = f.split_once('=').ok_or_else(|| bad("use KEY=VALUE (name, status, label, network)"))?;
            match k {
                "name" | "label" | "network" | "id" => {}
                "status" if ["created", "running", "exited", "paused", "restarting", "removing", "dead"].contains(&v) => {}
                "status" => return Err(bad("status is one of created, running, exited, paused, restarting, removing, dead")),
                _ => return Err(bad("unknown filter; use name, status, label, network or id")),
            }
            by.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Self { by })
    }

    /// Whether the container passes.
    fn matches(&self, c: &Container) -> bool {
        self.by.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "name" => c.name.contains(v.trim_start_matches('/')),
                "id" => c.id.starts_with(v.as_str()),
                "status" => state_name(c) == v,
                "network" => c.spec.net.display() == *v,
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => c.spec.labels.get(lk).is_some_and(|x| x == lv),
                    None => c.spec.labels.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
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
    pub filters: Filters,
    /// `--format`.
    pub format: Format,
}

fn state_name(c: &Container) -> &'static str {
    match c.effective_status() {
        Status::Created => "created",
        Status::Running => "running",
        Status::Exited => "exited",
    }
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
    // What died unseen is released (and removed with --rm) as it is listed.
    let mut list = Vec::new();
    for c in container::all(paths)? {
        let shown = |c: &Container| {
            (l.all || c.effective_status() == Status::Running || l.filters.by.contains_key("status")) && l.filters.matches(c)
        };
        if let Some(c) = crate::process::monitor::sweep(paths, c)?.filter(shown) {
            list.push(c);
        }
    }
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

/// Details as JSON, or through `--format`. Each name is tried; an unknown one is reported
/// after the others are printed (as Docker).
pub fn inspect(paths: &Paths, names: &[String], format: &Format) -> Result<i32> {
    let t = |v: Option<u64>| v.map(netd::clock::rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    let mut out = Vec::new();
    let mut missing = None;
    for n in names {
        let c = match container::lookup(paths, n) {
            Ok(c) => c,
            Err(e @ Error::NoContainer(_)) => {
                missing = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let ep = c.state.endpoint.as_ref();
        let st = c.effective_status();
        out.push(json!({
            "Id": c.id,
            "Name": c.name,
            "Created": t(Some(c.created)),
            "Image": c.spec.image,
            "ImageId": c.spec.image_id,
            "State": {
                "Status": match st { Status::Created => "created", Status::Running => "running", Status::Exited => "exited" },
                "Running": st == Status::Running,
                "Pid": if st == Status::Running { c.state.pid.unwrap_or(0) } else { 0 },
                "ExitCode": c.state.exit_code.unwrap_or(0),
                "StartedAt": t(c.state.started_at),
                "FinishedAt": t(c.state.finished_at),
                "Error": c.state.error,
            },
            "Config": {
                "Cmd": c.spec.args,
                "Env": c.spec.env,
                "WorkingDir": c.spec.workdir,
                "Hostname": c.spec.hostname,
                "Image": c.spec.image,
                "User": c.spec.user,
                "Labels": c.spec.labels,
            },
            "HostConfig": {
                "NetworkMode": c.spec.net.display(),
                "Memory": c.spec.limits.memory.unwrap_or(0),
                "NanoCpus": c.spec.limits.cpus.map(|x| (x * 1e9) as u64).unwrap_or(0),
                "PidsLimit": c.spec.limits.pids.unwrap_or(0),
                "AutoRemove": c.spec.auto_remove,
            },
            "NetworkSettings": {
                "IPAddress": ep.map(|e| e.address.ip().to_string()).unwrap_or_default(),
                "IPPrefixLen": ep.map(|e| e.address.prefix()).unwrap_or(0),
                "GlobalIPv6Address": ep.and_then(|e| e.address6).map(|a| a.ip().to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": ep.and_then(|e| e.address6).map(|a| a.prefix()).unwrap_or(0),
                "Gateway": ep.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
                "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
                "Ports": c.published().iter().map(|m| json!({
                    "ContainerPort": format!("{}/{}", m.container_port, m.proto),
                    "HostIp": m.host_ip_display(),
                    "HostPort": m.host_port.to_string(),
                })).collect::<Vec<_>>(),
            },
        }));
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
