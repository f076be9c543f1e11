//! `ps`, `logs`, `inspect`, `port`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use serde_json::json;

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

fn ago(t: u64) -> String {
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

/// Lists containers.
pub fn ps(paths: &Paths, all: bool, quiet: bool) -> Result<i32> {
    // What died unseen is released (and removed with --rm) as it is listed.
    let mut list = Vec::new();
    for c in container::all(paths)? {
        if let Some(c) = crate::process::monitor::sweep(paths, c)?.filter(|c| all || c.effective_status() == Status::Running) {
            list.push(c);
        }
    }
    if quiet {
        for c in &list {
            println!("{}", c.short_id());
        }
        return Ok(0);
    }
    println!("{:<12}  {:<16}  {:<24}  {:<16}  {:<28}  {:<30}  NAMES", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS");
    for c in &list {
        let mut cmd = format!("\"{}\"", c.spec.args.join(" "));
        // Cut by characters: a byte index could split a multi-byte one.
        if cmd.chars().count() > 24 {
            cmd = format!("{}…\"", cmd.chars().take(22).collect::<String>());
        }
        println!(
            "{:<12}  {:<16}  {:<24}  {:<16}  {:<28}  {:<30}  {}",
            c.short_id(),
            c.spec.image,
            cmd,
            ago(c.created),
            status(c),
            ports(c),
            c.name
        );
    }
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

/// Details as JSON.
pub fn inspect(paths: &Paths, names: &[String]) -> Result<i32> {
    let mut out = Vec::new();
    for n in names {
        let c = container::lookup(paths, n)?;
        let ep = c.state.endpoint.as_ref();
        let st = c.effective_status();
        out.push(json!({
            "Id": c.id,
            "Name": c.name,
            "Created": c.created,
            "Image": c.spec.image,
            "ImageId": c.spec.image_id,
            "State": {
                "Status": match st { Status::Created => "created", Status::Running => "running", Status::Exited => "exited" },
                "Running": st == Status::Running,
                "Pid": if st == Status::Running { c.state.pid.unwrap_or(0) } else { 0 },
                "ExitCode": c.state.exit_code.unwrap_or(0),
                "StartedAt": c.state.started_at,
                "FinishedAt": c.state.finished_at,
                "Error": c.state.error,
            },
            "Config": {
                "Cmd": c.spec.args,
                "Env": c.spec.env,
                "WorkingDir": c.spec.workdir,
                "Hostname": c.spec.hostname,
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
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(0)
}

/// Published ports, as `docker port` prints them.
pub fn port(paths: &Paths, name: &str) -> Result<i32> {
    let c = container::lookup(paths, name)?;
    for m in c.published() {
        println!("{}/{} -> {}:{}", m.container_port, m.proto, m.host_ip_display(), m.host_port);
    }
    Ok(0)
}
