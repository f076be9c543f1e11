//! The `berth` command line: one file per group of commands, each a thin layer over the
//! library (image, container, process, network).

mod exec;
mod images;
mod info;
mod lifecycle;
mod network;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::paths::Paths;

pub use run::RunArgs;

/// berth: run containers whose ports answer on the host, the way `docker run` does.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, disable_help_subcommand = true)]
pub struct Cli {
    /// Persistent state: images, layers, containers, IPAM.
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth", global = true)]
    pub root: PathBuf,
    /// Runtime state: firewall lock, port claims.
    #[arg(long, env = "BERTH_RUN_ROOT", default_value = "/run/berth", global = true)]
    pub run_root: PathBuf,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a root filesystem tarball (.tar or .tar.gz) as an image.
    Import {
        /// The tarball.
        file: PathBuf,
        /// Image name, e.g. busybox or busybox:1.35.
        name: String,
    },
    /// Load images from a `docker save` archive or an OCI image layout archive.
    Load {
        /// The archive.
        #[arg(short = 'i', long = "input")]
        input: PathBuf,
    },
    /// List images.
    Images,
    /// Remove images (their layers too, when no other image uses them).
    Rmi {
        /// Remove even if containers use the image.
        #[arg(short, long)]
        force: bool,
        /// Image names or IDs.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Create and start a container.
    Run(Box<RunArgs>),
    /// List containers (running ones unless -a).
    Ps {
        /// Show all containers.
        #[arg(short, long)]
        all: bool,
        /// Only print IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's output.
    Logs {
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Container name or ID.
        container: String,
    },
    /// Run a command inside a running container's namespaces.
    Exec {
        /// Keep stdin open.
        #[arg(short, long)]
        interactive: bool,
        /// The caller's terminal is used as is (no new pseudo-terminal).
        #[arg(short, long)]
        tty: bool,
        /// Set environment variables.
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Working directory inside the container.
        #[arg(short, long)]
        workdir: Option<String>,
        /// Container name or ID.
        container: String,
        /// Command and arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Stop containers: SIGTERM to PID 1, SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers' PID 1.
    Kill {
        /// Signal name or number.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print containers' details as JSON.
    Inspect {
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until containers exit; print their exit codes.
    Wait {
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List a container's published ports.
    Port {
        /// Container name or ID.
        container: String,
    },
    /// Manage user-defined bridge networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// (internal) Supervise a detached container.
    #[command(name = "__monitor", hide = true)]
    Monitor {
        /// Container ID.
        id: String,
    },
    /// (internal) Clean up after a detached container's PID 1 exited.
    #[command(name = "__reap", hide = true)]
    Reap {
        /// Container ID.
        id: String,
        /// PID 1's exit code.
        code: i32,
    },
}

/// `berth network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network with its own bridge and subnet.
    Create {
        /// Subnet in CIDR form (default: a free 172.18-31.0.0/16); with --ipv6, give it
        /// again for the IPv6 subnet (default: a random fdXX:XXXX:XXXX::/64).
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway address (default: the subnet's first address); one per family.
        #[arg(long)]
        gateway: Vec<std::net::IpAddr>,
        /// Dual stack: containers get an IPv6 address too.
        #[arg(long)]
        ipv6: bool,
        /// Allocate container addresses from this sub-range of the subnet only (CIDR).
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        /// Bridge interface name (default: br-<random>); an existing bridge is used and
        /// left in place on rm.
        #[arg(long)]
        bridge: Option<String>,
        /// Driver option: com.docker.network.bridge.name=NAME (as --bridge), or
        /// com.docker.network.bridge.gateway_mode_ipv4|ipv6=nat|nat-unprotected
        /// (nat-unprotected lets hosts that route the subnet here reach unpublished ports).
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        /// Label, KEY=VALUE.
        #[arg(long)]
        label: Vec<String>,
        /// No traffic between the network and the outside (other interfaces, other hosts).
        #[arg(long)]
        internal: bool,
        /// Network name.
        name: String,
    },
    /// List networks.
    Ls,
    /// Show networks as the Docker Engine API does (a JSON array), with their containers.
    Inspect {
        /// Network names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove a network no container uses.
    Rm {
        /// Network names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every user network that no container uses.
    Prune {
        /// Do not ask for confirmation (berth never asks; accepted for Docker's scripts).
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a running container to a network (it gets the next ethN).
    ///
    /// Example: berth network connect --alias cache --ip 10.89.0.50 appnet web
    Connect {
        /// The address to take on the network (default: the next free one).
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// Another name for the container on this network (repeatable).
        #[arg(long)]
        alias: Vec<String>,
        /// Network name.
        network: String,
        /// Container name or ID.
        container: String,
    },
    /// Disconnect a container from a network it was connected to.
    Disconnect {
        /// Network name.
        network: String,
        /// Container name or ID.
        container: String,
    },
}

/// Runs a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let paths = Paths::new(cli.root, cli.run_root);
    paths.ensure()?;
    match cli.command {
        Command::Import { file, name } => images::import(&paths, &file, &name),
        Command::Load { input } => images::load(&paths, &input),
        Command::Images => images::list(&paths),
        Command::Rmi { force, images } => images::rmi(&paths, &images, force),
        Command::Run(args) => run::run(&paths, *args),
        Command::Ps { all, quiet } => info::ps(&paths, all, quiet),
        Command::Logs { follow, container } => info::logs(&paths, &container, follow),
        Command::Exec { interactive: _, tty: _, env, workdir, container, cmd } => {
            exec::exec(&paths, &container, &cmd, &env, workdir.as_deref())
        }
        Command::Stop { time, containers } => lifecycle::stop(&paths, &containers, time),
        Command::Kill { signal, containers } => lifecycle::kill(&paths, &containers, &signal),
        Command::Rm { force, containers } => lifecycle::rm(&paths, &containers, force),
        Command::Inspect { containers } => info::inspect(&paths, &containers),
        Command::Wait { containers } => lifecycle::wait(&paths, &containers),
        Command::Port { container } => info::port(&paths, &container),
        Command::Network(NetworkCommand::Create { subnet, gateway, ipv6, ip_range, bridge, opt, label, internal, name }) => {
            let req = network::Create { subnets: subnet, gateways: gateway, ipv6, ip_range, bridge, opts: opt, labels: label, internal };
            network::create(&paths, &name, &req)
        }
        Command::Network(NetworkCommand::Ls) => network::ls(&paths),
        Command::Network(NetworkCommand::Inspect { names }) => network::inspect(&paths, &names),
        Command::Network(NetworkCommand::Rm { names }) => network::rm(&paths, &names),
        Command::Network(NetworkCommand::Prune { force: _ }) => network::prune(&paths),
        Command::Network(NetworkCommand::Connect { ip, alias, network, container }) => {
            let join = crate::network::Join { ip, aliases: alias };
            crate::network::connect(&paths, &network, &container, Some(&join)).map(|()| 0)
        }
        Command::Network(NetworkCommand::Disconnect { network, container }) => {
            crate::network::connect(&paths, &network, &container, None).map(|()| 0)
        }
        Command::Monitor { id } => run::monitor(&paths, &id),
        Command::Reap { id, code } => run::reap(&paths, &id, code),
    }
}
