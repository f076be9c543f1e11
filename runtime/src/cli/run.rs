//! `berth run` and the detached monitor it starts.

use std::net::IpAddr;

use clap::Args;
use netd::portmap::{expand_publish, PortMapping};

use crate::container::{config::MIN_MEMORY, Config, Container, Limits};
use crate::error::{Error, Result};
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
    /// Start it again when it exits: no, always, unless-stopped, on-failure[:MAX]
    /// (after 100 ms doubling per quick exit; `stop` and `kill` end it; netd starts
    /// always and unless-stopped ones when it starts).
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
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

/// The mappings `-p` asks for. Ports left to pick stay ephemeral: the engine picks them
/// when it claims them, so concurrent runs cannot pick the same one.
fn publish(specs: &[String]) -> Result<Vec<PortMapping>> {
    let mut out: Vec<PortMapping> = Vec::new();
    for spec in specs {
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
    Ok(out)
}

/// `-e K` copies K from this environment (skipped when unset), as Docker's CLI does.
fn env(flags: &[String]) -> Vec<String> {
    flags.iter().filter_map(|e| if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) }).collect()
}

/// The flags as the container library's request.
fn config(a: &RunArgs) -> Result<Config> {
    let mut mounts = a.volume.iter().map(|v| crate::volume::parse_v(v)).collect::<Result<Vec<_>>>()?;
    for m in &a.mount {
        mounts.push(crate::volume::parse_mount(m)?);
    }
    Ok(Config {
        image: a.image.clone(),
        name: a.name.clone(),
        entrypoint: a.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        cmd: a.cmd.clone(),
        env: env(&a.env),
        workdir: a.workdir.clone(),
        user: None,
        hostname: a.hostname.clone(),
        labels: super::labels(&a.label)?,
        net: a.net.clone(),
        ip: a.ip,
        aliases: a.network_alias.clone(),
        ports: publish(&a.publish)?,
        publish_all: a.publish_all,
        mounts,
        dns: a.dns.clone(),
        limits: Limits { memory: a.memory.as_deref().map(parse_bytes).transpose()?, cpus: a.cpus, pids: a.pids_limit },
        auto_remove: a.rm,
        interactive: a.interactive,
        tty: a.tty,
        security: crate::security::Security::from_flags(a.privileged, &a.cap_add, &a.cap_drop, &a.security_opt)?,
        stop_signal: a.stop_signal.clone(),
        restart: crate::container::restart::Restart::parse(&a.restart)?,
    })
}

/// `berth run`: returns the exit code (the container's in the foreground).
pub fn run(paths: &Paths, a: RunArgs) -> Result<i32> {
    let cfg = config(&a)?;
    if !a.detach {
        // Signals wait until the container runs, then go to it (docker's --sig-proxy).
        crate::process::sigproxy::hold();
    }
    let c = Container::create(paths, &cfg, &mut |w| eprintln!("WARNING: {w}"))?;
    if !a.detach {
        let started = match monitor::start(paths, &c, false) {
            Ok(s) => s,
            Err(e) => {
                c.discard(paths);
                crate::process::sigproxy::release();
                return Err(e);
            }
        };
        crate::process::sigproxy::forward_to(started.pid.as_raw());
        // A log that cannot be opened is not written; the terminal still gets it all.
        return Ok(monitor::supervise_foreground(paths, &c, started, c.log(paths).ok()));
    }
    let exe = super::berth_exe()?;
    if let Err(e) = c.start(paths, &exe) {
        c.discard(paths);
        return Err(e);
    }
    println!("{}", c.id);
    Ok(0)
}

/// `berth create`: the container made as `run` makes it, not started; prints its ID.
pub fn create(paths: &Paths, a: RunArgs) -> Result<i32> {
    let c = Container::create(paths, &config(&a)?, &mut |w| eprintln!("WARNING: {w}"))?;
    println!("{}", c.id);
    Ok(0)
}

/// `__reap ID CODE`: the cleanup after a detached container's PID 1 exited with `code`
/// (what a waiter started by an older `berth` execs; waiters now reap in-process).
pub fn reap(paths: &Paths, id: &str, code: i32) -> Result<i32> {
    monitor::reap_exited(paths, id, code)
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
