//! `POST /containers/create`: Docker's container config decoded into the container
//! library's [`Config`]; what berth cannot do is refused with a 400 before anything is made.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth::container::{Config, Container, Limits};
use netd::portmap::{PortMapping, Proto};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error;
use crate::api::{bad, blocking, decode, App, Result};

/// A string or a list of strings, as Docker accepts `Cmd` and `Entrypoint`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Args {
    One(String),
    Many(Vec<String>),
}

impl Args {
    fn into_vec(self) -> Vec<String> {
        match self {
            Args::One(s) => s.split_whitespace().map(str::to_string).collect(),
            Args::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PortBinding {
    host_ip: String,
    host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicy {
    name: String,
    maximum_retry_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Mount {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    binds: Option<Vec<String>>,
    mounts: Option<Vec<Mount>>,
    port_bindings: Option<HashMap<String, Option<Vec<PortBinding>>>>,
    publish_all_ports: bool,
    network_mode: String,
    restart_policy: Option<RestartPolicy>,
    auto_remove: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    privileged: bool,
    security_opt: Option<Vec<String>>,
    dns: Option<Vec<String>>,
    memory: i64,
    nano_cpus: i64,
    pids_limit: Option<i64>,
    devices: Option<Vec<Value>>,
    runtime: String,
    userns_mode: String,
    pid_mode: String,
    ipc_mode: String,
    read_only_rootfs: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<IpamConfig>,
    aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    ipv4: String,
    #[serde(rename = "IPv6Address")]
    ipv6: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkingConfig {
    endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// The body of `POST /containers/create` (the fields berth reads; Docker's others are
/// ignored as dockerd ignores unknown ones).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Body {
    image: String,
    hostname: String,
    user: String,
    env: Option<Vec<String>>,
    cmd: Option<Args>,
    entrypoint: Option<Args>,
    working_dir: String,
    labels: Option<BTreeMap<String, String>>,
    tty: bool,
    open_stdin: bool,
    exposed_ports: Option<HashMap<String, Value>>,
    stop_signal: Option<String>,
    host_config: HostConfig,
    networking_config: NetworkingConfig,
}

/// `"80/tcp"` → (80, tcp).
fn port_key(key: &str) -> Result<(i64, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto: Proto = proto.parse().map_err(|_| bad(format!("invalid port {key:?}: unknown protocol")))?;
    let port: i64 = port.parse().map_err(|_| bad(format!("invalid port {key:?}")))?;
    Ok((port, proto))
}

fn ports(h: &HostConfig) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for (key, bindings) in h.port_bindings.iter().flatten() {
        let (cport, proto) = port_key(key)?;
        for b in bindings.iter().flatten() {
            let ip: Option<IpAddr> = match b.host_ip.as_str() {
                "" | "0.0.0.0" | "::" => None,
                s => Some(s.parse().map_err(|_| bad(format!("invalid host IP {s:?}")))?),
            };
            let m = if b.host_port.is_empty() || b.host_port == "0" {
                PortMapping::ephemeral(ip, cport, proto)
            } else {
                let spec = match ip {
                    Some(IpAddr::V6(v6)) => format!("[{v6}]:{}:{cport}/{proto}", b.host_port),
                    Some(v4) => format!("{v4}:{}:{cport}/{proto}", b.host_port),
                    None => format!("{}:{cport}/{proto}", b.host_port),
                };
                netd::portmap::expand_publish(&spec).map(|mut v| v.remove(0))
            };
            out.push(m.map_err(|e| bad(e.to_string()))?);
        }
    }
    Ok(out)
}

/// What berth cannot do, refused rather than ignored.
fn refuse(h: &HostConfig) -> Result<()> {
    if h.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(bad("devices are not supported by berth"));
    }
    for (what, v) in [("runtime", &h.runtime), ("userns mode", &h.userns_mode), ("pid mode", &h.pid_mode), ("ipc mode", &h.ipc_mode)] {
        if !matches!(v.as_str(), "" | "runc" | "private" | "shareable") {
            return Err(bad(format!("{what} {v:?} is not supported by berth")));
        }
    }
    if h.read_only_rootfs {
        return Err(bad("a read-only root filesystem is not supported by berth"));
    }
    Ok(())
}

fn mounts(h: &HostConfig) -> Result<Vec<berth::volume::Request>> {
    let mut out = Vec::new();
    for b in h.binds.iter().flatten() {
        out.push(berth::volume::parse_v(b).map_err(error)?);
    }
    for m in h.mounts.iter().flatten() {
        let mut spec = format!("type={},source={},target={}", m.kind, m.source, m.target);
        if m.read_only {
            spec.push_str(",readonly");
        }
        if m.source.contains(',') || m.target.contains(',') {
            return Err(bad(format!("invalid mount source or target: {spec}")));
        }
        out.push(berth::volume::parse_mount(&spec).map_err(error)?);
    }
    Ok(out)
}

fn config(name: Option<String>, b: Body) -> Result<Config> {
    if b.image.is_empty() {
        return Err(bad("config: image is required"));
    }
    let h = &b.host_config;
    refuse(h)?;
    let endpoints = b.networking_config.endpoints_config.unwrap_or_default();
    if endpoints.len() > 1 {
        return Err(bad("a container is created on one network; connect the others after it starts"));
    }
    let net = if h.network_mode.is_empty() || h.network_mode == "default" { "bridge".to_string() } else { h.network_mode.clone() };
    let ep = endpoints.get(&net);
    let ip = match ep.and_then(|e| e.ipam_config.as_ref()) {
        Some(i) if !i.ipv4.is_empty() => Some(i.ipv4.parse().map_err(|_| bad(format!("invalid IPv4 address {:?}", i.ipv4)))?),
        Some(i) if !i.ipv6.is_empty() => Some(i.ipv6.parse().map_err(|_| bad(format!("invalid IPv6 address {:?}", i.ipv6)))?),
        _ => None,
    };
    let dns = h.dns.iter().flatten().map(|d| d.parse().map_err(|_| bad(format!("invalid DNS server {d:?}")))).collect::<Result<_>>()?;
    let security = berth::security::Security::from_flags(
        h.privileged,
        h.cap_add.as_deref().unwrap_or_default(),
        h.cap_drop.as_deref().unwrap_or_default(),
        h.security_opt.as_deref().unwrap_or_default(),
    )
    .map_err(|e| error(e.into()))?;
    let limits = Limits {
        memory: (h.memory > 0).then_some(h.memory as u64),
        cpus: (h.nano_cpus > 0).then(|| h.nano_cpus as f64 / 1e9),
        pids: h.pids_limit.filter(|p| *p != 0),
    };
    let mut aliases = ep.and_then(|e| e.aliases.clone()).unwrap_or_default();
    // compose names the service as an alias, and Docker drops aliases that repeat the name.
    aliases.retain(|a| Some(a) != name.as_ref());
    if net == "bridge" {
        aliases.clear();
    }
    let ports = ports(h)?;
    Ok(Config {
        image: b.image,
        name,
        entrypoint: b.entrypoint.map(Args::into_vec),
        cmd: b.cmd.map(Args::into_vec).unwrap_or_default(),
        env: b.env.unwrap_or_default(),
        workdir: Some(b.working_dir).filter(|w| !w.is_empty()),
        user: Some(b.user).filter(|u| !u.is_empty()),
        hostname: Some(b.hostname).filter(|h| !h.is_empty()),
        labels: b.labels.unwrap_or_default(),
        net,
        ip,
        aliases,
        ports,
        publish_all: h.publish_all_ports,
        mounts: mounts(h)?,
        dns,
        limits,
        auto_remove: h.auto_remove,
        interactive: b.open_stdin,
        tty: b.tty,
        security,
        stop_signal: b.stop_signal.filter(|s| !s.is_empty()),
        restart: match &h.restart_policy {
            Some(p) => berth::container::restart::Restart::from_api(&p.name, p.maximum_retry_count).map_err(error)?,
            None => Default::default(),
        },
    })
}

/// `POST /containers/create?name=NAME`: 201 with the ID and warnings.
pub async fn create(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let b: Body = decode(&body)?;
    let name = q.get("name").filter(|n| !n.is_empty()).map(|n| n.trim_start_matches('/').to_string());
    let cfg = config(name, b)?;
    blocking(move || {
        let mut warnings = Vec::new();
        let c = Container::create(&app.paths, &cfg, &mut |w| warnings.push(w.to_string())).map_err(error)?;
        app.events.container(&c, "create");
        Ok((StatusCode::CREATED, Json(json!({"Id": c.id, "Warnings": warnings}))))
    })
    .await
}
