//! `berth run` and the detached monitor it starts.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command as Process, Stdio};

use clap::Args;
use netd::portmap::{expand_publish, PortMapping, Proto};

use crate::container::{self, Container, Limits, NetMode, Spec, State};
use crate::error::{Error, Result};
use crate::image;
use crate::network;
use crate::paths::Paths;
use crate::process::monitor;

/// `berth run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Container name.
    #[arg(long)]
    pub name: Option<String>,
    /// Network: bridge (default), host, none, container:<name|id>, or a network name.
    #[arg(long = "net", visible_alias = "network", default_value = "bridge")]
    pub net: String,
    /// The container's IPv4 or IPv6 address on its user network.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Another name of the container on its user network (resolved by netd's DNS).
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// The signal `stop` sends (default: the image's STOPSIGNAL, else SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Overrides the image's ENTRYPOINT ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Label, KEY=VALUE (`ps --filter label=KEY[=VALUE]` selects by it).
    #[arg(short = 'l', long)]
    pub label: Vec<String>,
    /// Publish a port: [hostIP:][hostPort[-end]:]containerPort[-end][/tcp|udp|sctp].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every exposed port of the image to an ephemeral host port (49153-60999).
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Set an environment variable (K=V, or K to copy it from this environment).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// HOST:CONTAINER[:ro] bind mount, NAME:CONTAINER[:ro] named volume (created on first
    /// use), or CONTAINER alone: a new anonymous volume (removed by `rm -v`).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Mount: type=volume|bind,source=NAME|/path,target=/path[,readonly].
    #[arg(long)]
    pub mount: Vec<String>,
    /// Hostname (default: the short container ID).
    #[arg(long)]
    pub hostname: Option<String>,
    /// DNS server for /etc/resolv.conf.
    #[arg(long)]
    pub dns: Vec<IpAddr>,
    /// Memory limit, e.g. 64m, 1g.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// CPU limit, e.g. 0.5.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// For Docker compatibility: a foreground run always reads the caller's stdin, a
    /// detached one /dev/null.
    #[arg(short, long)]
    pub interactive: bool,
    /// The caller's terminal is used as is (no new pseudo-terminal).
    #[arg(short, long)]
    pub tty: bool,
    /// Give the container every capability and device, no seccomp filter, no masked paths.
    #[arg(long)]
    pub privileged: bool,
    /// Add a capability to Docker's default set (e.g. NET_ADMIN, or ALL).
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the set (e.g. NET_RAW, or ALL).
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json (Docker's format), no-new-privileges.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Image name or ID.
    pub image: String,
    /// Command and arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// Docker's smallest memory limit: below it a container cannot even start.
const MIN_MEMORY: u64 = 6 << 20;

/// Parses "64m", "1g", "512k", "1048576" into bytes; refuses what is not a finite size
/// between 6 MiB and 8 EiB (NaN, fractions of a byte, overflow), as Docker does.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let bad = |why: &str| Error::Flag { flag: "size", value: s.to_string(), why: why.to_string() };
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad("e.g. 64m, 1g"));
    }
    let n: f64 = num.parse().map_err(|_| bad("e.g. 64m, 1g"))?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes >= 9.2e18 {
        return Err(bad("too large"));
    }
    let bytes = bytes as u64;
    if bytes < MIN_MEMORY {
        return Err(bad("the minimum memory limit is 6m"));
    }
    Ok(bytes)
}

/// The mappings `-p` and `-P` ask for. Ports left to pick stay ephemeral: the engine picks
/// them when it claims them, so concurrent runs cannot pick the same one.
fn ports(a: &RunArgs, exposed: &[String]) -> Result<Vec<PortMapping>> {
    let mut out: Vec<PortMapping> = Vec::new();
    for spec in &a.publish {
        out.extend(expand_publish(spec).map_err(|e| Error::Flag {
            flag: "port spec",
            value: spec.clone(),
            why: match e {
                netd::Error::BadPortMapping { spec: part, why } if part != *spec => format!("{part}: {why}"),
                netd::Error::BadPortMapping { why, .. } => why,
                e => e.to_string(),
            },
        })?);
    }
    if a.publish_all {
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

/// `--network-alias` names: container-name grammar, only on user networks (as Docker).
fn aliases(given: &[String], net: &NetMode) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(Vec::new());
    }
    if !matches!(net, NetMode::Bridge(n) if n != "bridge") {
        return Err(Error::Conflict("network-scoped aliases are only supported for user-defined networks"));
    }
    given.iter().map(|a| Ok(netd::name::Name::container(a).map_err(netd::Error::from)?.to_string())).collect()
}

fn env(image_env: &[String], flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = image_env.to_vec();
    for e in flags {
        let kv = if e.contains('=') {
            e.clone()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            }
        };
        let key = kv.split('=').next().unwrap_or("").to_string();
        out.retain(|x| x.split('=').next() != Some(key.as_str()));
        out.push(kv);
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    out
}

/// Validates the flags against the image and builds the container record.
fn build(paths: &Paths, a: &RunArgs) -> Result<Container> {
    let img = image::get(paths, &a.image)?;
    let net = network::parse_mode(paths, &a.net)?;
    let mut publish = !a.publish.is_empty() || a.publish_all;
    if publish && net == NetMode::Host {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
        publish = false;
    }
    if publish && matches!(net, NetMode::None | NetMode::Container(_)) {
        return Err(Error::Conflict("conflicting options: port publishing and the container type network mode"));
    }
    let ports = if publish { ports(a, &img.config.exposed_ports)? } else { Vec::new() };
    let mut mounts = a.volume.iter().map(|v| crate::volume::parse_v(v)).collect::<Result<Vec<_>>>()?;
    for m in &a.mount {
        mounts.push(crate::volume::parse_mount(m)?);
    }
    let name = match &a.name {
        Some(n) => netd::name::Name::container(n).map_err(netd::Error::from)?.to_string(),
        None => format!("berth_{}", netd::netlink::random_hex(4)),
    };
    let mut args = match &a.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => img.config.entrypoint.clone(),
    };
    args.extend(if a.cmd.is_empty() { img.config.cmd.clone() } else { a.cmd.clone() });
    if args.is_empty() {
        return Err(Error::Conflict("no command specified (the image has none)"));
    }
    let limits = Limits {
        memory: a.memory.as_deref().map(parse_bytes).transpose()?,
        cpus: match a.cpus {
            Some(c) if !(c > 0.0 && c <= 1024.0) => {
                return Err(Error::Flag { flag: "--cpus", value: c.to_string(), why: "must be > 0 and at most 1024".into() })
            }
            c => c,
        },
        pids: a.pids_limit,
    };
    let id = netd::netlink::random_hex(32);
    let aliases = aliases(&a.network_alias, &net)?;
    if a.ip.is_some() && !matches!(&net, NetMode::Bridge(n) if n != "bridge") {
        return Err(Error::Conflict("user specified IP address is supported on user defined networks only"));
    }
    let spec = Spec {
        image: a.image.clone(),
        image_id: img.id.clone(),
        layers: img.layers.clone(),
        args,
        env: env(&img.config.env, &a.env),
        workdir: a.workdir.clone().unwrap_or(img.config.working_dir.clone()),
        user: img.config.user.clone(),
        hostname: a.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        dns: a.dns.clone(),
        volumes: Vec::new(),
        net,
        ports,
        limits,
        auto_remove: a.rm,
        interactive: a.interactive,
        tty: a.tty,
        security: crate::security::Security::from_flags(a.privileged, &a.cap_add, &a.cap_drop, &a.security_opt)?,
        aliases,
        ip: a.ip,
        stop_signal: {
            let s = a.stop_signal.clone().or_else(|| Some(img.config.stop_signal.clone()).filter(|s| !s.is_empty()));
            if let Some(sig) = &s {
                super::lifecycle::parse_signal(sig)?;
            }
            s
        },
        labels: {
            let mut l = img.config.labels.clone();
            l.extend(super::labels(&a.label)?);
            l
        },
    };
    let state = State::created();
    // Volumes last: every flag is valid by now, so a refused run creates none.
    let spec = Spec { volumes: crate::volume::resolve(paths, &mounts)?, ..spec };
    Ok(Container { id, name, created: crate::clock::now(), spec, state })
}

/// Drops the record of a container whose start failed, with the anonymous volumes made
/// for it.
fn discard(paths: &Paths, c: &Container) {
    let _ = monitor::remove_files(paths, &c.id);
    crate::volume::remove_anonymous(paths, &c.spec.volumes);
}

/// `berth run`: returns the exit code (the container's in the foreground).
pub fn run(paths: &Paths, a: RunArgs) -> Result<i32> {
    let c = build(paths, &a)?;
    if !a.detach {
        // Signals wait until the container runs, then go to it (docker's --sig-proxy).
        crate::process::sigproxy::hold();
    }
    // A container of that name that died unseen with --rm frees it.
    if let Ok(old) = container::lookup(paths, &c.name) {
        monitor::sweep(paths, old)?;
    }
    if let Err(e) = container::create(paths, &c) {
        crate::volume::remove_anonymous(paths, &c.spec.volumes);
        return Err(e);
    }
    netd::fault::point("run-created");
    if !a.detach {
        let started = match monitor::start(paths, &c, None) {
            Ok(s) => s,
            Err(e) => {
                discard(paths, &c);
                crate::process::sigproxy::release();
                return Err(e);
            }
        };
        crate::process::sigproxy::forward_to(started.pid.as_raw());
        return Ok(monitor::supervise(paths, &c, started));
    }
    let dir = paths.container(&c.id);
    let mlog = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join("monitor.log"))
        .map_err(|e| Error::io("create", dir.join("monitor.log"), e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "/proc/self/exe", e))?;
    let mut cmd = Process::new(exe);
    cmd.arg("--root").arg(&paths.lib).arg("--run-root").arg(&paths.run).arg("__monitor").arg(&c.id);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(mlog);
    // SAFETY: setsid is async-signal-safe; the monitor must outlive this CLI's session.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().map_err(|e| Error::io("start monitor", "berth __monitor", e))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let l = line.trim_end();
    if l != "ok" {
        let _ = child.wait();
        // A monitor that died (rather than reported an error after undoing its steps)
        // may have left a cgroup, an address, ports: released before the record goes.
        if !l.starts_with("err ") {
            if let Ok(rec) = container::lookup(paths, &c.id) {
                let _ = monitor::reap_stale(paths, &rec);
            }
        }
        discard(paths, &c);
        let (code, msg) = match l.strip_prefix("err ").and_then(|r| r.split_once(' ')) {
            Some((code, msg)) => (code.parse().unwrap_or(125), msg.to_string()),
            None => (125, "container monitor failed to start".to_string()),
        };
        return Err(Error::Start { code, msg });
    }
    println!("{}", c.id);
    Ok(0)
}

/// `__reap ID CODE`: the cleanup after a detached container's PID 1 exited with `code`.
pub fn reap(paths: &Paths, id: &str, code: i32) -> Result<i32> {
    let c = container::lookup(paths, id)?;
    Ok(monitor::reap(paths, &c, crate::cgroups::Cgroup::existing(id), code))
}

/// The detached monitor: starts the container, reports on stdout, then becomes the
/// waiter (a small image of itself) that supervises.
pub fn monitor(paths: &Paths, id: &str) -> Result<i32> {
    let c = container::lookup(paths, id)?;
    let log = paths.container(id).join("container.log");
    let mut out = std::io::stdout();
    match monitor::start(paths, &c, Some(log)) {
        Ok(started) => {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
            // The CLI is gone after reading its line; nothing more goes to that pipe.
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1);
            }
            // Waiting is done by a small process image (same PID): see process::waiter.
            let err = crate::process::waiter::become_waiter(&paths.lib, &paths.run, &c.id, started.pid);
            tracing::warn!(error = %err, "cannot exec the waiter; supervising in this process");
            Ok(monitor::supervise(paths, &c, started))
        }
        Err(e) => {
            let msg = e.to_string().replace('\n', " ");
            let _ = writeln!(out, "err {} {msg}", e.exit_code());
            Ok(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        for bad in ["nan", "0.1", "1e30g", "inf", "-5m", "", "m", "1k", "99999999999999g", "\u{e9}m"] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }
}
