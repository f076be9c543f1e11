//! The `berth` command line: one file per group of commands, each a thin layer over the
//! library (image, container, process, network).
//!
//! The doc comments on clap's argument structs are the `--help` text, written for a
//! terminal (`NAME[:TAG]`, `<root>`), not rustdoc markup.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

pub mod format;
mod images;
mod info;
mod lifecycle;
mod network;
mod run;
mod system;
mod volumes;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::paths::Paths;
use format::Format;

pub use run::RunArgs;

const EXAMPLES: &str = "\
Examples:
  berth import rootfs.tar busybox                      make an image from a root filesystem
  berth run -d --name web -p 4000:80 busybox httpd -f -p 80
  curl http://127.0.0.1:4000/                          the container answers on the host
  berth ps --format 'table {{.Names}}\\t{{.Ports}}'
  berth inspect -f '{{.NetworkSettings.IPAddress}}' web
  berth rm -f web

Exit codes: 125 berth failed, 126 the command cannot run, 127 not found, else the command's.";

/// berth: run containers whose ports answer on the host, the way `docker run` does.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, disable_help_subcommand = true, after_help = EXAMPLES)]
pub struct Cli {
    /// Persistent state: images, layers, volumes, containers, IPAM.
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
    #[command(after_help = "Example:\n  berth images --format '{{.Repository}}:{{.Tag}} {{.ID}}'")]
    Images {
        /// Only print IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Full IDs.
        #[arg(long)]
        no_trunc: bool,
        /// table, json, `table TEMPLATE` or a Go template: .Repository .Tag .ID .CreatedAt
        /// .CreatedSince .Layers.
        #[arg(long)]
        format: Option<String>,
        /// Only this repository (REPOSITORY or REPOSITORY:TAG).
        reference: Option<String>,
    },
    /// Create an image from a container's changes (its writable layer; the per-container
    /// /etc/hosts, /etc/hostname and /etc/resolv.conf are left out).
    #[command(
        after_help = "Examples:\n  berth commit -m 'add the site' web site:v1\n  berth commit -c 'CMD [\"httpd\", \"-f\", \"-p\", \"80\"]' -c 'EXPOSE 80' web site:v2"
    )]
    Commit {
        /// Commit message (the history entry's comment).
        #[arg(short, long, default_value = "")]
        message: String,
        /// A Dockerfile instruction applied to the config (CMD, ENTRYPOINT, ENV, EXPOSE,
        /// LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable.
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        /// Container name or ID.
        container: String,
        /// Image name (default: the new image's short ID).
        image: Option<String>,
    },
    /// Build an image from a Dockerfile: one layer per RUN, COPY, ADD and WORKDIR, each
    /// step cached.
    #[command(
        after_help = "Examples:\n  berth build -t site:v1 .\n  berth build -f docker/Dockerfile --build-arg VERSION=2 --no-cache -t site:v2 ."
    )]
    Build {
        /// Name the result NAME[:TAG] (repeatable).
        #[arg(short, long)]
        tag: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile).
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// A build argument, KEY=VALUE (for ARG).
        #[arg(long)]
        build_arg: Vec<String>,
        /// Run every step, using no cached result.
        #[arg(long)]
        no_cache: bool,
        /// The build context directory (`.dockerignore` in it excludes files).
        context: PathBuf,
    },
    /// Download an image from a registry (OCI distribution API; linux/amd64 of an index).
    #[command(
        after_help = "Examples:\n  berth pull 127.0.0.1:5000/site:v1\n  berth pull --insecure-registry registry.lan:5000 registry.lan:5000/site:v1"
    )]
    Pull {
        /// Speak plain HTTP to this registry (host:port); loopback registries always may.
        #[arg(long)]
        insecure_registry: Vec<String>,
        /// [registry/]name[:tag|@digest].
        name: String,
    },
    /// Upload an image to the registry its name starts with.
    #[command(after_help = "Example:\n  berth tag site:v1 127.0.0.1:5000/site:v1 && berth push 127.0.0.1:5000/site:v1")]
    Push {
        /// Speak plain HTTP to this registry (host:port); loopback registries always may.
        #[arg(long)]
        insecure_registry: Vec<String>,
        /// registry/name[:tag].
        name: String,
    },
    /// Store credentials for a registry (in <root>/auth.json, mode 0600) after checking them.
    Login {
        /// User name.
        #[arg(short, long)]
        username: String,
        /// Password (prefer --password-stdin: arguments are visible to other users).
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Speak plain HTTP to this registry.
        #[arg(long)]
        insecure_registry: Vec<String>,
        /// Registry host[:port].
        server: String,
    },
    /// Forget a registry's credentials.
    Logout {
        /// Registry host[:port].
        server: String,
    },
    /// Give an image another name.
    Tag {
        /// Image name or ID.
        source: String,
        /// New name, NAME[:TAG].
        target: String,
    },
    /// Write images to an archive that docker load, podman load and berth load read.
    #[command(after_help = "Example:\n  berth save -o site.tar site:v1 && podman load -i site.tar")]
    Save {
        /// Output file (default: stdout, unless it is a terminal).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Image names or IDs.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Show how an image was made, newest layer first.
    History {
        /// Full commands and IDs.
        #[arg(long)]
        no_trunc: bool,
        /// Only print image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// table, json, `table TEMPLATE` or a Go template: .ID .CreatedAt .CreatedSince
        /// .CreatedBy .Size .Comment.
        #[arg(long)]
        format: Option<String>,
        /// Image name or ID.
        image: String,
    },
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
    #[command(
        after_help = "Examples:\n  berth ps -a --filter status=exited -q\n  berth ps --filter label=tier=web --filter network=appnet\n  berth ps --format 'table {{.ID}}\\t{{.Names}}\\t{{.Status}}'\n  berth ps --format json"
    )]
    Ps {
        /// Show all containers.
        #[arg(short, long)]
        all: bool,
        /// Only print IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Full IDs and commands.
        #[arg(long)]
        no_trunc: bool,
        /// Only containers matching: name=SUBSTRING, status=created|running|paused|restarting|exited,
        /// label=KEY[=VALUE], network=NAME (repeat a key for OR, combine keys for AND).
        #[arg(short, long)]
        filter: Vec<String>,
        /// table, json, `table TEMPLATE` or a Go template: .ID .Image .Command .CreatedAt
        /// .RunningFor .Ports .Status .State .Names .Labels .Networks.
        #[arg(long)]
        format: Option<String>,
    },
    /// Print a container's output: what it wrote to stdout on stdout, to stderr on
    /// stderr (a container with a terminal has only stdout).
    Logs {
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Start each line with the time it was logged (RFC 3339, UTC).
        #[arg(short, long)]
        timestamps: bool,
        /// Only the last N lines.
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        /// Container name or ID.
        container: String,
    },
    /// Run a command inside a running container's namespaces.
    Exec {
        /// Keep stdin open.
        #[arg(short, long)]
        interactive: bool,
        /// A terminal: the caller's as is, or with --console-socket a new one made in
        /// the container.
        #[arg(short, long)]
        tty: bool,
        /// With -t: make the terminal in the container's devpts, as the command's
        /// controlling terminal, and send its leader end over the unix socket at PATH
        /// (SCM_RIGHTS, as runc's console socket); netd's exec -t uses it.
        #[arg(long, value_name = "PATH", requires = "tty")]
        console_socket: Option<std::path::PathBuf>,
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
    /// Create a container (as `run` would) without starting it; prints its ID.
    Create(Box<RunArgs>),
    /// Start created or stopped containers, detached.
    Start {
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers (as `stop`), then start them again.
    Restart {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container (its DNS name on user networks follows).
    Rename {
        /// Container name or ID.
        container: String,
        /// The new name.
        new_name: String,
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
    /// Freeze every process of containers (the cgroup freezer).
    Pause {
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    Unpause {
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        /// Remove their anonymous volumes too (named volumes stay).
        #[arg(short, long)]
        volumes: bool,
        /// Container names or IDs.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print containers' details as JSON (times in RFC 3339, as Docker).
    #[command(after_help = "Examples:\n  berth inspect -f '{{.State.Pid}}' web\n  berth inspect -f '{{json .Config}}' web")]
    Inspect {
        /// A Go template applied to each container (or json).
        #[arg(short, long)]
        format: Option<String>,
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
    /// Manage volumes: directories that outlive the containers mounting them.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Print berth's version and the kernel's.
    Version {
        /// json or a Go template (.Version .Os .Arch .Kernel .GitCommit).
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Show what berth sees: firewall backend, cgroup version, storage, counts.
    Info {
        /// json or a Go template (.FirewallBackend.Driver .CgroupVersion .Containers ...).
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  berth completion bash > /etc/bash_completion.d/berth\n  berth completion zsh > \"${fpath[1]}/_berth\"\n  berth completion fish > ~/.config/fish/completions/berth.fish"
    )]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// (internal) Write man pages into a directory (the build's `make man`).
    #[command(name = "__man", hide = true)]
    Man {
        /// Directory for berth.1, berth-run.1, ...
        dir: PathBuf,
    },
    /// (internal) Supervise a detached container.
    #[command(name = "__monitor", hide = true)]
    Monitor {
        /// Container ID.
        #[arg(required_unless_present = "standby")]
        id: Option<String>,
        /// Wait for the container ID on stdin (a monitor the daemon keeps ready).
        #[arg(long, conflicts_with = "id")]
        standby: bool,
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

/// `berth volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name if none is given); an existing one is kept.
    #[command(after_help = "Example:\n  berth volume create data && berth run -v data:/srv busybox sh -c 'echo hi > /srv/f'")]
    Create {
        /// Label, KEY=VALUE.
        #[arg(short, long)]
        label: Vec<String>,
        /// Name.
        name: Option<String>,
    },
    /// List volumes.
    Ls {
        /// Only print names.
        #[arg(short, long)]
        quiet: bool,
        /// table, json, `table TEMPLATE` or a Go template: .Name .Driver .Mountpoint
        /// .Labels .Anonymous .CreatedAt.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show volumes as the Docker Engine API does.
    Inspect {
        /// A Go template applied to each volume (or json).
        #[arg(short, long)]
        format: Option<String>,
        /// Volume names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses, with their data.
    Rm {
        /// Accepted for Docker's scripts; a volume in use is never removed.
        #[arg(short, long)]
        force: bool,
        /// Volume names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused ones with -a).
    Prune {
        /// Named volumes too.
        #[arg(short, long)]
        all: bool,
        /// Do not ask (berth never asks; accepted for Docker's scripts).
        #[arg(short, long)]
        force: bool,
    },
}

/// `berth network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network: a bridge with its own subnet, or (-d macvlan|ipvlan) containers
    /// with their own addresses on a parent interface's LAN.
    Create {
        /// Driver: bridge (default), macvlan or ipvlan. macvlan/ipvlan containers cannot
        /// reach the parent's own addresses (the kernel's rule) and publish no ports.
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR form (default: a free 172.18-31.0.0/16); with --ipv6, give it
        /// again for the IPv6 subnet (default: a random fdXX:XXXX:XXXX::/64).
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway address (default: the subnet's first address); one per family. On
        /// macvlan and ipvlan l2, containers get a default route only through a gateway
        /// given here (as Docker 29).
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
        /// Driver option. bridge: com.docker.network.bridge.name=NAME (as --bridge), or
        /// com.docker.network.bridge.gateway_mode_ipv4|ipv6=nat|nat-unprotected
        /// (nat-unprotected lets hosts that route the subnet here reach unpublished ports).
        /// macvlan: parent=IF (IF.VID: an 802.1Q link made when missing, removed with the
        /// network; none: an internal network on a dummy parent), macvlan_mode=bridge|
        /// private|vepa|passthru. ipvlan: parent, ipvlan_mode=l2|l3|l3s,
        /// ipvlan_flag=bridge|private|vepa.
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
    Ls {
        /// Only print IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Full IDs.
        #[arg(long)]
        no_trunc: bool,
        /// table, json, `table TEMPLATE` or a Go template: .ID .Name .Driver .Scope
        /// .Subnet .Bridge .Internal .IPv6 .Labels .CreatedAt.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show networks as the Docker Engine API does (a JSON array), with their containers.
    #[command(after_help = "Example:\n  berth network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' bridge")]
    Inspect {
        /// A Go template applied to each network (or json).
        #[arg(short, long)]
        format: Option<String>,
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

/// `--label K=V` (a bare K has an empty value, as in Docker); control characters refused.
pub(crate) fn labels(labels: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for l in labels {
        if l.contains(char::is_control) || l.starts_with('=') || l.is_empty() {
            return Err(crate::error::Error::Flag {
                flag: "--label",
                value: l.clone(),
                why: "use KEY=VALUE without control characters".into(),
            });
        }
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// This executable, which runs the monitor of a container started detached.
fn berth_exe() -> Result<std::path::PathBuf> {
    std::env::current_exe().map_err(|e| crate::error::Error::io("find", "/proc/self/exe", e))
}

/// Runs a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    // These need no state directories (and must work for a user without them).
    match &cli.command {
        Command::Version { format } => return system::version(&Format::parse(format.as_deref())),
        Command::Completion { shell } => return system::completion(*shell),
        Command::Man { dir } => return system::man(dir),
        _ => {}
    }
    let paths = Paths::new(cli.root, cli.run_root);
    paths.ensure()?;
    match cli.command {
        Command::Import { file, name } => images::import(&paths, &file, &name),
        Command::Load { input } => images::load(&paths, &input),
        Command::Images { quiet, no_trunc, format, reference } => {
            images::list(&paths, quiet, no_trunc, &Format::parse(format.as_deref()), reference.as_deref())
        }
        Command::Rmi { force, images } => images::rmi(&paths, &images, force),
        Command::Commit { message, change, container, image } => images::commit(&paths, &container, image.as_deref(), &message, &change),
        Command::Build { tag, file, build_arg, no_cache, context } => {
            let opts = crate::image::build::Options { context, file, tags: tag, build_args: labels(&build_arg)?, no_cache };
            let img = crate::image::build::build(&paths, &opts, &mut std::io::stdout())?;
            let _ = img;
            Ok(0)
        }
        Command::Pull { insecure_registry, name } => {
            crate::image::registry::pull(&paths, &name, &insecure_registry, &mut std::io::stdout()).map(|_| 0)
        }
        Command::Push { insecure_registry, name } => {
            crate::image::registry::push(&paths, &name, &insecure_registry, &mut std::io::stdout()).map(|_| 0)
        }
        Command::Login { username, password, password_stdin, insecure_registry, server } => {
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                (None, true) => {
                    let mut p = String::new();
                    std::io::stdin().read_line(&mut p).map_err(|e| crate::error::Error::io("read", "stdin", e))?;
                    p.trim_end_matches(['\n', '\r']).to_string()
                }
                _ => return Err(crate::error::Error::Conflict("give the password with exactly one of --password and --password-stdin")),
            };
            crate::image::registry::login(&paths, &server, &username, &password, &insecure_registry)?;
            println!("Login Succeeded");
            Ok(0)
        }
        Command::Logout { server } => {
            crate::image::registry::logout(&paths, &server)?;
            println!("Removing login credentials for {server}");
            Ok(0)
        }
        Command::Tag { source, target } => images::tag(&paths, &source, &target),
        Command::Save { output, images } => images::save(&paths, &images, output.as_deref()),
        Command::History { no_trunc, quiet, format, image } => {
            images::history(&paths, &image, no_trunc, quiet, &Format::parse(format.as_deref()))
        }
        Command::Run(args) => run::run(&paths, *args),
        Command::Ps { all, quiet, no_trunc, filter, format } => {
            let list = info::Listing {
                all,
                quiet,
                no_trunc,
                filters: crate::container::list::Filters::parse(&filter)?,
                format: Format::parse(format.as_deref()),
            };
            info::ps(&paths, &list)
        }
        Command::Logs { follow, timestamps, tail, container } => info::logs(&paths, &container, follow, timestamps, tail),
        Command::Exec { interactive: _, tty: _, console_socket, env, workdir, container, cmd } => {
            let opts = crate::container::ExecOptions { env: &env, workdir: workdir.as_deref(), console: console_socket.as_deref() };
            crate::container::lookup(&paths, &container)?.exec(&paths, &cmd, &opts)
        }
        Command::Create(args) => run::create(&paths, *args),
        Command::Start { containers } => lifecycle::start(&paths, &containers),
        Command::Restart { time, containers } => lifecycle::restart(&paths, &containers, time),
        Command::Rename { container, new_name } => lifecycle::rename(&paths, &container, &new_name),
        Command::Stop { time, containers } => lifecycle::stop(&paths, &containers, time),
        Command::Kill { signal, containers } => lifecycle::kill(&paths, &containers, &signal),
        Command::Rm { force, volumes, containers } => lifecycle::rm(&paths, &containers, force, volumes),
        Command::Pause { containers } => lifecycle::pause(&paths, &containers, true),
        Command::Unpause { containers } => lifecycle::pause(&paths, &containers, false),
        Command::Inspect { format, containers } => info::inspect(&paths, &containers, &Format::parse(format.as_deref())),
        Command::Wait { containers } => lifecycle::wait(&paths, &containers),
        Command::Port { container } => info::port(&paths, &container),
        Command::Network(NetworkCommand::Create { driver, subnet, gateway, ipv6, ip_range, bridge, opt, label, internal, name }) => {
            let req =
                network::Create { subnets: subnet, gateways: gateway, ipv6, ip_range, bridge, opts: opt, labels: label, internal, driver };
            network::create(&paths, &name, &req)
        }
        Command::Network(NetworkCommand::Ls { quiet, no_trunc, format }) => {
            network::ls(&paths, quiet, no_trunc, &Format::parse(format.as_deref()))
        }
        Command::Network(NetworkCommand::Inspect { format, names }) => network::inspect(&paths, &names, &Format::parse(format.as_deref())),
        Command::Network(NetworkCommand::Rm { names }) => network::rm(&paths, &names),
        Command::Network(NetworkCommand::Prune { force: _ }) => network::prune(&paths),
        Command::Network(NetworkCommand::Connect { ip, alias, network, container }) => {
            let join = crate::network::Join { ip, aliases: alias };
            crate::network::connect(&paths, &network, &container, Some(&join)).map(|()| 0)
        }
        Command::Network(NetworkCommand::Disconnect { network, container }) => {
            crate::network::connect(&paths, &network, &container, None).map(|()| 0)
        }
        Command::Volume(v) => volumes::dispatch(&paths, v),
        Command::Version { format } => system::version(&Format::parse(format.as_deref())),
        Command::Info { format } => system::info(&paths, &Format::parse(format.as_deref())),
        Command::Completion { shell } => system::completion(shell),
        Command::Man { dir } => system::man(&dir),
        Command::Monitor { id: Some(id), .. } => crate::container::monitor(&paths, &id),
        Command::Monitor { id: None, .. } => crate::container::standby(&paths),
        Command::Reap { id, code } => run::reap(&paths, &id, code),
    }
}
