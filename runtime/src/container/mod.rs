//! Containers: the one library the CLI and the daemon share. A record holds what was
//! asked for (spec) and what is (state), one JSON file per container written atomically,
//! names reserved under one short flock; the lifecycle (create, start, stop, kill, wait,
//! remove), listing and the Docker-shaped inspect document are methods here.

pub mod config;
mod exec;
pub mod id;
pub mod inspect;
pub mod list;
pub mod log;
pub mod output;
mod pause;
pub mod restart;
mod start;
mod stop;
mod store;
pub mod tty;

pub use config::Config;
pub use exec::ExecOptions;

/// How long the exit code of a container removed as it exited (`--rm`) is kept.
const EXIT_KEPT_SECS: u64 = 300;

/// Keeps the exit code of an auto-removed container for its waiters (under the run
/// root, a few minutes), dropping codes older than that.
pub fn record_exit(paths: &Paths, id: &str, code: i32) {
    let dir = paths.run.join("exits");
    if netd::state::private_dir(&dir).is_err() {
        return;
    }
    let _ = netd::state::write_atomic(&dir.join(id), code.to_string().as_bytes());
    let now = std::time::SystemTime::now();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|a| a.as_secs() > EXIT_KEPT_SECS);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The exit code of container `id` if it was removed as it exited.
pub fn removed_exit(paths: &Paths, id: &str) -> Option<i32> {
    netd::name::Name::container(id).ok()?;
    std::fs::read_to_string(paths.run.join("exits").join(id)).ok()?.trim().parse().ok()
}
pub use start::{monitor, standby, Standby};

use std::net::IpAddr;

use netd::network::endpoint::Endpoint;

use crate::paths::Paths;
use netd::portmap::PortMapping;
use serde::{Deserialize, Serialize};

pub use store::{all, create, lock, lookup, remove_dir, rename, save, update};

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A bridge network by name ("bridge" is docker0).
    Bridge(String),
    /// The host's netns.
    Host,
    /// A new netns with only `lo`.
    None,
    /// The netns of another container (its ID).
    Container(String),
}

impl NetMode {
    /// The name `inspect` shows ("bridge", "host", "none", `container:<id>`).
    pub fn display(&self) -> String {
        match self {
            NetMode::Bridge(n) => n.clone(),
            NetMode::Host => "host".into(),
            NetMode::None => "none".into(),
            NetMode::Container(id) => format!("container:{id}"),
        }
    }
}

/// A mount of a host directory: a bind mount, or a volume's data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Host path.
    pub host: String,
    /// Path in the container.
    pub container: String,
    /// Read-only.
    pub readonly: bool,
    /// The volume it is, if any (not a bind mount).
    #[serde(default)]
    pub volume: Option<String>,
    /// An anonymous volume made for this container.
    #[serde(default)]
    pub anonymous: bool,
}

/// Resource limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// CPUs (0.5 = half a CPU).
    pub cpus: Option<f64>,
    /// Maximum number of tasks.
    pub pids: Option<i64>,
}

/// What `berth run` asked for, resolved against the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Image name as given.
    pub image: String,
    /// Image ID.
    pub image_id: String,
    /// Layer digests, bottom first.
    pub layers: Vec<String>,
    /// argv (entrypoint + command).
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: String,
    /// User.
    pub user: String,
    /// Hostname.
    pub hostname: String,
    /// DNS servers for resolv.conf (empty: the host's, minus loopback ones).
    pub dns: Vec<IpAddr>,
    /// Bind mounts.
    pub volumes: Vec<Volume>,
    /// Network mode.
    pub net: NetMode,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// Limits.
    pub limits: Limits,
    /// Remove when it exits.
    pub auto_remove: bool,
    /// Keep stdin open.
    pub interactive: bool,
    /// Allocate a terminal.
    pub tty: bool,
    /// Capabilities, seccomp, no_new_privs, privileged (Docker's defaults for old records).
    #[serde(default)]
    pub security: crate::security::Security,
    /// `--network-alias`: more names on its user network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`: the address it asked for on its user network.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// `--label`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The signal `stop` sends (the image's STOPSIGNAL, `--stop-signal`); SIGTERM if none.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--restart`.
    #[serde(default)]
    pub restart: restart::Restart,
}

impl Spec {
    /// A one-off container of `img` running `args` (a build's RUN): the default network,
    /// Docker's confinement, nothing published or mounted.
    pub fn one_off(
        img: &crate::image::Image,
        args: Vec<String>,
        env: Vec<String>,
        workdir: String,
        user: String,
        hostname: String,
    ) -> Self {
        Spec {
            image: "build".into(),
            image_id: img.id.clone(),
            layers: img.layers.clone(),
            args,
            env,
            workdir,
            user,
            hostname,
            dns: Vec::new(),
            volumes: Vec::new(),
            net: NetMode::Bridge("bridge".into()),
            ports: Vec::new(),
            limits: Limits::default(),
            auto_remove: false,
            interactive: false,
            tty: false,
            security: Default::default(),
            aliases: Vec::new(),
            ip: None,
            labels: Default::default(),
            stop_signal: None,
            restart: Default::default(),
        }
    }
}

impl State {
    /// The state of a container recorded and not yet started.
    pub fn created() -> Self {
        State {
            status: Status::Created,
            pid: None,
            pid_start: None,
            monitor_pid: None,
            monitor_start: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            endpoint: None,
            error: String::new(),
            restart_count: 0,
            stopped_by_hand: false,
            restart_delay_ms: 0,
            restarting: false,
        }
    }
}

/// Lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Recorded, not started.
    Created,
    /// PID 1 is running.
    Running,
    /// PID 1 exited.
    Exited,
}

/// What is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Status.
    pub status: Status,
    /// Host PID of the container's PID 1.
    pub pid: Option<i32>,
    /// PID 1's start time (clock ticks after boot, /proc/PID/stat): with the PID, its
    /// identity, so a PID reused after a crash is never taken for the container.
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// PID of the monitor that supervises it.
    pub monitor_pid: Option<i32>,
    /// The monitor's start time, as `pid_start`.
    #[serde(default)]
    pub monitor_start: Option<u64>,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// Start time, seconds since the epoch.
    pub started_at: Option<u64>,
    /// Exit time.
    pub finished_at: Option<u64>,
    /// The network attachment, in bridge mode.
    pub endpoint: Option<Endpoint>,
    /// Why it failed to start, if it did.
    pub error: String,
    /// How many times its restart policy started it again.
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped or killed by `stop`/`kill` (Docker's "manually stopped"): its restart
    /// policy leaves it stopped until it is started.
    #[serde(default)]
    pub stopped_by_hand: bool,
    /// The delay before its last restart, which the next doubles.
    #[serde(default)]
    pub restart_delay_ms: u64,
    /// Waiting out its restart policy's delay before the next run (Docker's
    /// "restarting"); see [`Container::restarting`].
    #[serde(default)]
    pub restarting: bool,
}

/// A container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Creation time.
    pub created: u64,
    /// What was asked for.
    pub spec: Spec,
    /// What is.
    pub state: State,
}

impl Container {
    /// Whether PID 1 is really alive (the record may be stale after a crash): the PID
    /// runs and is the same process (start time), not another that reused the PID.
    pub fn alive(&self) -> bool {
        self.state.status == Status::Running && self.state.pid.is_some_and(|p| netd::proc::same_process(p, self.state.pid_start))
    }

    /// The status `ps` shows, correcting a stale "running".
    pub fn effective_status(&self) -> Status {
        match self.state.status {
            Status::Running if !self.alive() && !self.monitor_alive() => Status::Exited,
            s => s,
        }
    }

    /// Whether its restart policy is about to start it again (Docker's "restarting"): it
    /// exited, was not stopped by hand, and the process that waits out the delay lives.
    pub fn restarting(&self) -> bool {
        self.state.restarting && self.state.status == Status::Exited && !self.state.stopped_by_hand && self.monitor_alive()
    }

    /// Whether the monitor process still runs.
    pub fn monitor_alive(&self) -> bool {
        self.state.monitor_pid.is_some_and(|p| netd::proc::same_process(p, self.state.monitor_start))
    }

    /// The published ports as they are: the attachment's (ephemeral host ports picked)
    /// while attached, else what was asked for.
    pub fn published(&self) -> &[PortMapping] {
        match &self.state.endpoint {
            Some(ep) => &ep.ports,
            None => &self.spec.ports,
        }
    }

    /// The short ID.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}
