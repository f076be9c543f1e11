//! What a caller asks a new container to be — `berth run`'s flags or the Docker API's
//! `POST /containers/create` body, decoded by each front end into this one type — and its
//! resolution against the image into the record that is stored.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netd::portmap::{PortMapping, Proto};

use super::{Container, Limits, NetMode, Spec, State};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// A container as asked for, before the image fills in what was left out.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Image name or ID.
    pub image: String,
    /// Unique name (default: `berth_` and 8 hex digits).
    pub name: Option<String>,
    /// Overrides the image's ENTRYPOINT; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's CMD when not empty.
    pub cmd: Vec<String>,
    /// `K=V` entries over the image's environment.
    pub env: Vec<String>,
    /// Working directory (default: the image's).
    pub workdir: Option<String>,
    /// User (default: the image's).
    pub user: Option<String>,
    /// Hostname (default: the short ID).
    pub hostname: Option<String>,
    /// Labels over the image's.
    pub labels: BTreeMap<String, String>,
    /// Network mode: bridge, host, none, container:<name|id>, or a network name.
    pub net: String,
    /// The address on a user network.
    pub ip: Option<IpAddr>,
    /// More names on a user network.
    pub aliases: Vec<String>,
    /// Published ports (host ports 0 are picked at start).
    pub ports: Vec<PortMapping>,
    /// Publish every port the image exposes to an ephemeral host port.
    pub publish_all: bool,
    /// Mounts: binds, named and anonymous volumes.
    pub mounts: Vec<crate::volume::Request>,
    /// resolv.conf servers.
    pub dns: Vec<IpAddr>,
    /// Resource limits.
    pub limits: Limits,
    /// Removed when it exits.
    pub auto_remove: bool,
    /// Keeps stdin open.
    pub interactive: bool,
    /// A terminal.
    pub tty: bool,
    /// Capabilities, seccomp, privileges.
    pub security: crate::security::Security,
    /// The signal `stop` sends (default: the image's STOPSIGNAL, else SIGTERM).
    pub stop_signal: Option<String>,
    /// When it is started again after it exits.
    pub restart: super::restart::Restart,
}

/// Docker's smallest memory limit: below it a container cannot even start.
pub const MIN_MEMORY: u64 = 6 << 20;

/// Parses a signal by number or name (`9`, `KILL`, `SIGKILL`).
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    let bad = || Error::Flag { flag: "signal", value: s.to_string(), why: "no such signal".into() };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Checks limits as Docker does: memory at least 6 MiB, CPUs in (0, 1024].
fn check_limits(l: &Limits) -> Result<()> {
    if let Some(m) = l.memory.filter(|m| *m < MIN_MEMORY) {
        return Err(Error::Flag { flag: "memory", value: m.to_string(), why: "the minimum memory limit is 6m".into() });
    }
    match l.cpus {
        Some(c) if !(c > 0.0 && c <= 1024.0) => {
            Err(Error::Flag { flag: "--cpus", value: c.to_string(), why: "must be > 0 and at most 1024".into() })
        }
        _ => Ok(()),
    }
}

/// The mappings asked for, with the image's exposed ports added for `publish_all`; a host
/// port published twice is refused.
fn ports(cfg: &Config, exposed: &[String]) -> Result<Vec<PortMapping>> {
    let mut out = cfg.ports.clone();
    if cfg.publish_all {
        for e in exposed {
            let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            let exposed = || Error::Flag { flag: "exposed port of the image", value: e.clone(), why: "not PORT[/PROTO]".into() };
            let proto: Proto = proto.parse().map_err(|_| exposed())?;
            let cport: i64 = port.parse().map_err(|_| exposed())?;
            if out.iter().any(|m| m.container_port as i64 == cport && m.proto == proto) {
                continue;
            }
            out.push(PortMapping::ephemeral(None, cport, proto)?);
        }
    }
    for (i, m) in out.iter().enumerate().filter(|(_, m)| !m.is_ephemeral()) {
        if out[..i].iter().any(|o| {
            o.host_port == m.host_port && o.proto == m.proto && (o.host_ip.is_none() || m.host_ip.is_none() || o.host_ip == m.host_ip)
        }) {
            let value = format!("{}/{}", m.host_port, m.proto);
            return Err(Error::Flag { flag: "host port", value, why: "published twice".into() });
        }
    }
    Ok(out)
}

/// Network aliases: container-name grammar, only on user networks (as Docker).
pub(crate) fn aliases(given: &[String], net: &NetMode) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(Vec::new());
    }
    if !matches!(net, NetMode::Bridge(n) if n != "bridge") {
        return Err(Error::Conflict("network-scoped aliases are only supported for user-defined networks"));
    }
    given.iter().map(|a| Ok(netd::name::Name::container(a).map_err(netd::Error::from)?.to_string())).collect()
}

/// The image's environment with `given` (`K=V`) over it; PATH defaulted as Docker does.
fn env(image_env: &[String], given: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = image_env.to_vec();
    for kv in given {
        let key = kv.split('=').next().unwrap_or("");
        if key.is_empty() || kv.contains('\0') {
            return Err(Error::Flag { flag: "env", value: kv.clone(), why: "use KEY=VALUE".into() });
        }
        out.retain(|x| x.split('=').next() != Some(key));
        out.push(kv.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    Ok(out)
}

impl Config {
    /// Validates everything against the image and the networks and builds the record;
    /// volumes are made last, so a refused container creates none. `warn` hears what is
    /// dropped rather than refused (ports on the host network).
    pub fn resolve(&self, paths: &Paths, warn: &mut dyn FnMut(&str)) -> Result<Container> {
        let img = crate::image::get(paths, &self.image)?;
        let net = crate::network::parse_mode(paths, &self.net)?;
        let mut publish = !self.ports.is_empty() || self.publish_all;
        if publish && net == NetMode::Host {
            warn("Published ports are discarded when using host network mode");
            publish = false;
        }
        if publish && matches!(net, NetMode::None | NetMode::Container(_)) {
            return Err(Error::Conflict("conflicting options: port publishing and the container type network mode"));
        }
        let ports = if publish { ports(self, &img.config.exposed_ports)? } else { Vec::new() };
        let name = match &self.name {
            Some(n) => netd::name::Name::container(n).map_err(netd::Error::from)?.to_string(),
            None => format!("berth_{}", super::id::random(4)),
        };
        let mut args = self.entrypoint.clone().unwrap_or_else(|| img.config.entrypoint.clone());
        args.extend(if self.cmd.is_empty() { img.config.cmd.clone() } else { self.cmd.clone() });
        if args.is_empty() {
            return Err(Error::Conflict("no command specified (the image has none)"));
        }
        check_limits(&self.limits)?;
        if self.auto_remove && self.restart.policy != super::restart::Policy::No {
            return Err(Error::Conflict("conflicting options: cannot specify both --restart and --rm"));
        }
        let id = super::id::random(32);
        let aliases = aliases(&self.aliases, &net)?;
        if self.ip.is_some() && !matches!(&net, NetMode::Bridge(n) if n != "bridge") {
            return Err(Error::Conflict("user specified IP address is supported on user defined networks only"));
        }
        let stop_signal = self.stop_signal.clone().or_else(|| Some(img.config.stop_signal.clone()).filter(|s| !s.is_empty()));
        if let Some(sig) = &stop_signal {
            parse_signal(sig)?;
        }
        let mut labels = img.config.labels.clone();
        labels.extend(self.labels.clone());
        let user = self.user.clone().filter(|u| !u.is_empty()).unwrap_or(img.config.user.clone());
        if user.contains(char::is_control) {
            return Err(Error::Flag { flag: "user", value: user, why: "control characters".into() });
        }
        let spec = Spec {
            image: self.image.clone(),
            image_id: img.id.clone(),
            layers: img.layers.clone(),
            args,
            env: env(&img.config.env, &self.env)?,
            workdir: self.workdir.clone().filter(|w| !w.is_empty()).unwrap_or(img.config.working_dir.clone()),
            user,
            hostname: self.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| id[..12].to_string()),
            dns: self.dns.clone(),
            volumes: Vec::new(),
            net,
            ports,
            limits: self.limits.clone(),
            auto_remove: self.auto_remove,
            interactive: self.interactive,
            tty: self.tty,
            security: self.security.clone(),
            aliases,
            ip: self.ip,
            stop_signal,
            labels,
            restart: self.restart,
        };
        let spec = Spec { volumes: crate::volume::resolve(paths, &self.mounts)?, ..spec };
        Ok(Container { id, name, created: crate::clock::now(), spec, state: State::created() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_by_key_and_defaults_path() {
        let e = env(&["A=1".into(), "B=2".into()], &["A=3".into()]).unwrap();
        assert_eq!(e, vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "B=2", "A=3"]);
        assert!(env(&[], &["=x".into()]).is_err());
    }

    #[test]
    fn limits_as_docker_checks_them() {
        assert!(check_limits(&Limits { memory: Some(1 << 20), ..Default::default() }).is_err());
        assert!(check_limits(&Limits { cpus: Some(0.0), ..Default::default() }).is_err());
        assert!(check_limits(&Limits { memory: Some(64 << 20), cpus: Some(0.5), pids: None }).is_ok());
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("kill").unwrap(), nix::sys::signal::Signal::SIGKILL);
        assert_eq!(parse_signal("15").unwrap(), nix::sys::signal::Signal::SIGTERM);
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
