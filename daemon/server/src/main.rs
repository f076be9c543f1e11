//! `netd`: berth's daemon. With no command it serves the Docker Engine API — networks from
//! its engine, containers through berth's container library — on two unix sockets: its
//! own (`/run/berth/netd.sock`, which the runtime's network calls use too) and
//! `/run/berth/docker.sock` for Docker's clients (`DOCKER_HOST=unix:///run/berth/docker.sock`).
//! `netd cleanup` and `netd reconcile` are its maintenance commands.

mod api;
mod containers;
mod dns;
mod engine_routes;
mod events;
mod images;
mod links;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// berth's network daemon.
#[derive(Debug, Parser)]
#[command(name = "netd", version, about)]
struct Cli {
    /// The run directory shared by berth and the CNI plugins (their `stateDir`).
    #[arg(long, env = "BERTH_RUN_ROOT", default_value = "/run/berth", global = true)]
    run_root: PathBuf,
    /// berth's persistent root: networks, IPAM, container records.
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth", global = true)]
    root: PathBuf,
    /// The API socket (mode 0660, root).
    #[arg(long, default_value = "/run/berth/netd.sock", global = true)]
    socket: PathBuf,
    /// The Docker API socket for Docker's clients (mode 0660, root); "" serves none.
    #[arg(long, default_value = "/run/berth/docker.sock", global = true)]
    docker_socket: PathBuf,
    /// The `berth` executable each container's monitor runs as (default: beside netd,
    /// else on PATH).
    #[arg(long, env = "BERTH_BIN", global = true)]
    berth: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Return the host to its state before berth: remove all of berth's firewall chains
    /// and rules (both families, both backends: iptables chains and the nftables table
    /// `inet berth`), the bridges it created and the records of what they
    /// published, and restore the host-wide sysctls it changed (ip_forward). Run it with no
    /// container running: containers lose their network.
    Cleanup,
    /// Re-install berth's firewall rules that something removed (a firewall reload,
    /// `nft flush ruleset`, `iptables -F`), from the records of what was installed, each
    /// with the backend that installed it; remove what a backend no record uses still has.
    Reconcile,
}

/// Serves the API until SIGTERM or SIGINT; the socket is removed on the way out.
async fn serve(cli: &Cli) -> anyhow::Result<()> {
    // One netd per socket: a second would take the socket from the first, which would
    // then serve nothing and be forgotten.
    if std::os::unix::net::UnixStream::connect(&cli.socket).is_ok() {
        anyhow::bail!("a netd already serves {}", cli.socket.display());
    }
    // This process outlives its requests: nf_tables sockets are let go by a thread.
    netd::firewall::nft::msg::long_lived();
    let engine = netd::engine::Engine::new(cli.root.join("networks"), cli.root.join("ipam"), cli.run_root.clone());
    let paths = berth::paths::Paths::new(cli.root.clone(), cli.run_root.clone()).in_process();
    paths.ensure().context("preparing berth's state directories")?;
    // Start-up: what containers that died unseen held (a killed monitor, a reboot that
    // emptied /run) is released as berth's CLI releases it — listing sweeps them — then
    // the rules the records name are checked, then a watcher keeps them.
    if let Err(e) = berth::container::list::list(&paths, true, &Default::default()) {
        tracing::warn!(error = %e, "releasing dead containers at start-up failed");
    }
    if let Err(e) = netd::reconcile::links(&cli.run_root) {
        tracing::warn!(error = %e, "restoring bridges at start-up failed");
    }
    if let Err(e) = engine.reconcile() {
        tracing::warn!(error = %e, "reconcile at start-up failed");
    }
    let run = cli.run_root.clone();
    std::thread::spawn(move || netd::reconcile::watch(&run, std::time::Duration::from_millis(200), &|| false));
    tokio::spawn(links::watch(cli.run_root.clone()));
    tokio::spawn(dns::run(engine.clone(), paths.clone()));
    let app = Arc::new(api::App {
        engine,
        paths,
        berth: berth_binary(cli.berth.as_deref()),
        events: events::Events::default(),
        execs: Default::default(),
        standby: Default::default(),
    });
    app.standby.refill(&app.paths, &app.berth);
    // The records as they are now are the past: only what changes after is an event.
    if let Ok(all) = berth::container::all(&app.paths) {
        app.events.sync_quietly(all);
    }
    tokio::spawn(events::watch(app.clone()));
    let listener = bind(&cli.socket)?;
    let docker = if cli.docker_socket.as_os_str().is_empty() { None } else { Some(bind(&cli.docker_socket)?) };
    let pid_file = cli.run_root.join("netd.pid");
    netd::state::write_atomic(&pid_file, std::process::id().to_string().as_bytes())?;
    tracing::info!(socket = %cli.socket.display(), "netd serving");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
        }
    };
    // Restart policies, once netd serves (the monitors reach it for their network):
    // `always` containers, and `unless-stopped` ones not stopped by hand, that are not
    // running — what a reboot or a crash stopped — are started, as dockerd does.
    let boot = app.clone();
    tokio::task::spawn_blocking(move || {
        berth::container::restart::start_at_boot(&boot.paths, &boot.berth, &mut |c, started| match started {
            Ok(()) => tracing::info!(container = %c.name, policy = c.spec.restart.name(), "started by its restart policy"),
            Err(e) => tracing::warn!(container = %c.name, error = %e, "starting by restart policy failed"),
        })
    });
    let router = api::service(app);
    if let Some(d) = docker {
        tracing::info!(socket = %cli.docker_socket.display(), "serving the Docker API");
        tokio::spawn(std::future::IntoFuture::into_future(axum::serve(d, router.clone())));
    }
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    let _ = std::fs::remove_file(&cli.socket);
    if !cli.docker_socket.as_os_str().is_empty() {
        let _ = std::fs::remove_file(&cli.docker_socket);
    }
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}

/// Binds a unix socket root-only (0660), replacing a stale one.
fn bind(sock: &std::path::Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = sock.parent() {
        netd::state::private_dir(dir)?;
    }
    match std::fs::remove_file(sock) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).context("removing a stale socket"),
        _ => {}
    }
    let l = tokio::net::UnixListener::bind(sock).with_context(|| format!("binding {}", sock.display()))?;
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

/// The `berth` executable: given, beside netd, or on PATH.
fn berth_binary(given: Option<&std::path::Path>) -> PathBuf {
    given
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("berth"))).filter(|p| p.is_file()))
        .unwrap_or_else(|| "berth".into())
}

fn main() -> anyhow::Result<()> {
    netd::logging::init();
    let cli = Cli::parse();
    match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::Serve => {
            // One malloc arena per thread (glibc's default, up to 8 per core) costs
            // megabytes of RSS for a daemon that allocates little: two are plenty.
            // SAFETY: called before any other thread exists.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(serve(&cli))?;
        }
        Command::Cleanup => {
            // What records stand for outside the firewall (bandwidth's ifbs) goes while
            // they can still be read; then the records, so a running netd's watcher has
            // nothing to restore; then the rules.
            let ifbs = netd::network::bandwidth::remove_recorded(&cli.run_root).context("removing bandwidth's ifbs")?;
            netd::network::spoofchk::remove_all(&cli.run_root).context("removing the MAC spoof checks")?;
            netd::records::remove_all(&cli.run_root).context("removing records")?;
            let _ = std::fs::remove_file(cli.run_root.join("firewall-auto"));
            for backend in [netd::firewall::Backend::Iptables, netd::firewall::Backend::Nftables] {
                if backend == netd::firewall::Backend::Nftables && !netd::firewall::Nftables::available() {
                    continue;
                }
                let fw = netd::firewall::open(backend, &cli.run_root, netd::firewall::DEFAULT_MARK_BIT);
                fw.cleanup().with_context(|| format!("removing {backend} rules"))?;
            }
            let bridges = netd::network::bridge::remove_created(&cli.run_root).context("removing bridges")?;
            let sysctls = netd::sysctl::restore_all(&cli.run_root).context("restoring sysctls")?;
            println!(
                "removed berth's firewall rules, {} bridge(s) and {} ifb(s) it made and its records under {}; restored {} sysctl(s)",
                bridges.len(),
                ifbs,
                cli.run_root.display(),
                sysctls.len()
            );
        }
        Command::Reconcile => {
            let r = netd::reconcile::reconcile(&cli.run_root).context("reconciling firewall rules")?;
            println!(
                "re-installed the rules of {} network(s), {} firewall-plugin and {} ipMasq attachment(s) and {} MAC spoof check(s); rebuilt the rules of {} port publication(s)",
                r.networks, r.filters, r.masqs, r.spoofchks, r.ports
            );
        }
    }
    Ok(())
}
