//! The container's network: parsing `--net`, attaching through the netd engine
//! in-process, and the /etc files that name the container and its resolvers.

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;

use netd::engine::AttachOptions;
use netd::network::endpoint::Endpoint;

use crate::container::{self, Container, NetMode};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Parses `--net`: bridge, host, none, container:<name|id>, or a network name.
pub fn parse_mode(paths: &Paths, s: &str) -> Result<NetMode> {
    Ok(match s {
        "" | "bridge" | "default" => NetMode::Bridge("bridge".into()),
        "host" => NetMode::Host,
        "none" => NetMode::None,
        other => {
            if let Some(target) = other.strip_prefix("container:") {
                let c =
                    container::lookup(paths, target).map_err(|_| Error::NoNetwork(format!("container:{target} (no such container)")))?;
                if !c.alive() {
                    return Err(Error::State(format!("cannot join network of container {}: it is not running", c.name)));
                }
                NetMode::Container(c.id)
            } else {
                paths.networking().network(other)?;
                NetMode::Bridge(other.to_string())
            }
        }
    })
}

/// Wires the container whose PID 1 is `pid`: bridge attach, or `lo` up for `none`.
pub fn setup(paths: &Paths, c: &Container, pid: i32) -> Result<Option<Endpoint>> {
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    match &c.spec.net {
        NetMode::Bridge(name) => {
            let nets = paths.networking();
            let net = nets.network(name)?;
            nets.loopback_up(&netns)?;
            let opts = AttachOptions {
                ports: c.spec.ports.clone(),
                ip: c.spec.ip,
                aliases: c.spec.aliases.clone(),
                ..AttachOptions::iface("eth0")
            };
            Ok(Some(nets.attach(&net, &c.id, &netns, &opts)?))
        }
        NetMode::None => {
            paths.networking().loopback_up(&netns)?;
            Ok(None)
        }
        NetMode::Host | NetMode::Container(_) => Ok(None),
    }
}

/// Releases the container's address, ports and masquerade reference, and deletes its
/// veth (`ep`, the attachment as recorded). Idempotent.
pub fn teardown(paths: &Paths, c: &Container, ep: Option<&Endpoint>) -> Result<()> {
    let nets = paths.networking();
    if let NetMode::Bridge(name) = &c.spec.net {
        let net = nets.network(name)?;
        nets.detach(&net, &c.id, None, "eth0", ep)?;
    }
    // Networks connected while it ran (`network connect`, the daemon's API).
    for (name, ifname) in nets.attachments(&c.id)? {
        if let Ok(net) = nets.network(&name) {
            nets.detach(&net, &c.id, None, &ifname, None)?;
        }
    }
    Ok(())
}

/// What `network connect` asks for beyond the network and the container.
#[derive(Debug, Clone, Default)]
pub struct Join {
    /// `--ip`: the address to take there.
    pub ip: Option<IpAddr>,
    /// `--alias`: more names there.
    pub aliases: Vec<String>,
}

/// `berth network connect` (`join` given) / `disconnect` (`None`): a running bridge-mode
/// container joins or leaves another network (eth1, eth2, ...).
pub fn connect(paths: &Paths, network: &str, container: &str, join: Option<&Join>) -> Result<()> {
    let c = container::lookup(paths, container)?;
    if !c.alive() && c.state.status != container::Status::Running {
        let net = paths.networking().network(network)?;
        return configure(paths, &c, &net.name, join);
    }
    let pid = c.state.pid.filter(|_| c.alive()).ok_or_else(|| Error::State(format!("container {} is not running", c.name)))?;
    if !matches!(c.spec.net, NetMode::Bridge(_)) {
        return Err(Error::State(format!(
            "container {} uses network mode {}: it cannot join other networks",
            c.name,
            c.spec.net.display()
        )));
    }
    let nets = paths.networking();
    let net = nets.network(network)?;
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    if let Some(j) = join {
        if !j.aliases.is_empty() && net.name == "bridge" {
            return Err(Error::Conflict("network-scoped aliases are only supported for user-defined networks"));
        }
        // The engine refuses a network the container is on already, its first one included.
        nets.connect(&net, &c.id, &netns, j.ip, &j.aliases)?;
    } else {
        nets.disconnect(&net, &c.id, Some(&netns))?;
    }
    Ok(())
}

/// A container that is not running joins (`join`) or leaves its network in its record:
/// the network it is attached to when it starts, as Docker keeps a created container's
/// endpoint settings (docker-compose disconnects and reconnects each container before it
/// starts it, to set its aliases). One network before the start: more are connected once
/// it runs.
fn configure(paths: &Paths, c: &Container, name: &str, join: Option<&Join>) -> Result<()> {
    let on = matches!(&c.spec.net, NetMode::Bridge(n) if n == name);
    match join {
        Some(_) if on => Err(netd::Error::AlreadyAttached { network: name.to_string(), container: c.id.clone() }.into()),
        Some(_) if c.spec.net != NetMode::None => Err(Error::State(format!(
            "container {} is not running and is on network {} already: a stopped container joins one network; connect more once it runs",
            c.name,
            c.spec.net.display()
        ))),
        Some(j) => {
            let net = NetMode::Bridge(name.to_string());
            let aliases = crate::container::config::aliases(&j.aliases, &net)?;
            if j.ip.is_some() && name == "bridge" {
                return Err(Error::Conflict("user specified IP address is supported on user defined networks only"));
            }
            container::update(paths, &c.id, |r| {
                r.spec.net = net;
                r.spec.aliases = aliases;
                r.spec.ip = j.ip;
            })?;
            Ok(())
        }
        None if on => {
            container::update(paths, &c.id, |r| {
                r.spec.net = NetMode::None;
                r.spec.aliases.clear();
                r.spec.ip = None;
            })?;
            Ok(())
        }
        None => Err(netd::Error::NotAttached { network: name.to_string(), container: c.id.clone() }.into()),
    }
}

/// The host's resolvers minus loopback ones (unreachable from a container netns).
fn host_resolv() -> String {
    let data = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    data.lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            !(f.next() == Some("nameserver") && f.next().and_then(|ip| ip.parse::<IpAddr>().ok()).is_some_and(|ip| ip.is_loopback()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The container's /etc files that are bind-mounted: hosts, resolv.conf, hostname.
const ETC_FILES: [&str; 3] = ["hosts", "resolv.conf", "hostname"];

/// Makes the files [`write_etc`] fills, empty if they do not exist, before PID 1
/// bind-mounts them.
pub fn prepare_etc(paths: &Paths, c: &Container) -> Result<()> {
    let dir = paths.container(&c.id);
    for name in ETC_FILES {
        etc_file(&dir.join(name), false)?;
    }
    Ok(())
}

/// Opens one of the container's /etc files for writing, made if missing (readable by
/// the container's user, whoever it is), emptied if `truncate`; never through a symlink.
fn etc_file(path: &std::path::Path, truncate: bool) -> Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io("write", path, e))
}

/// Writes hosts, resolv.conf and hostname into the container's directory, from which
/// they are bind-mounted: in place, as PID 1 may have mounted them already.
pub fn write_etc(paths: &Paths, c: &Container, ep: Option<&Endpoint>) -> Result<()> {
    let dir = paths.container(&c.id);
    let w = |name: &str, data: String| {
        let path = dir.join(name);
        std::io::Write::write_all(&mut etc_file(&path, true)?, data.as_bytes()).map_err(|e| Error::io("write", path, e))
    };
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if c.spec.net == NetMode::Host {
        hosts = fs::read_to_string("/etc/hosts").unwrap_or(hosts);
    } else {
        let ip = ep.map(|e| e.address.ip().to_string()).unwrap_or_else(|| "127.0.1.1".into());
        hosts.push_str(&format!("{ip}\t{} {}\n", c.spec.hostname, c.name));
        if let Some(v6) = ep.and_then(|e| e.address6) {
            hosts.push_str(&format!("{}\t{} {}\n", v6.ip(), c.spec.hostname, c.name));
        }
    }
    w("hosts", hosts)?;
    let resolv = match (&c.spec.net, ep) {
        _ if !c.spec.dns.is_empty() => c.spec.dns.iter().map(|ip| format!("nameserver {ip}\n")).collect(),
        // User networks resolve container names through netd on the gateway address.
        (NetMode::Bridge(name), Some(ep)) if name != "bridge" && crate::daemon::ensure(paths) => match ep.gateway {
            Some(gw) if ep.resolver => format!("nameserver {gw}\noptions ndots:0\n"),
            // macvlan/ipvlan: netd answers inside the container's own netns, as Docker.
            _ if !ep.resolver => "nameserver 127.0.0.11\noptions ndots:0\n".to_string(),
            _ => host_resolv(),
        },
        _ => host_resolv(),
    };
    w("resolv.conf", resolv)?;
    w("hostname", format!("{}\n", c.spec.hostname))
}
