//! `netd`: maintenance commands of the network engine. `netd cleanup` removes every
//! firewall rule and record berth and its CNI plugins installed.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// berth's network engine.
#[derive(Debug, Parser)]
#[command(name = "netd", version, about)]
struct Cli {
    /// The run directory shared by berth and the CNI plugins (their `stateDir`).
    #[arg(long, env = "BERTH_RUN_ROOT", default_value = "/run/berth", global = true)]
    run_root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Remove all of berth's firewall chains and rules (both families) and the records
    /// of what they published; containers keep their addresses but lose published ports
    /// and masquerade until they are attached again.
    Cleanup,
    /// Re-install berth's firewall rules that something removed (a firewall reload,
    /// `iptables -F`), from the records of what was installed.
    Reconcile,
}

fn main() -> anyhow::Result<()> {
    netd::logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Cleanup => {
            let fw = netd::firewall::select("auto", &cli.run_root, netd::firewall::DEFAULT_MARK_BIT)?;
            fw.cleanup().context("removing firewall rules")?;
            for dir in ["cni-portmap", "endpoint-ports", "endpoints", "endpoint-network", "cni-bridge", "ports"] {
                let p = cli.run_root.join(dir);
                match std::fs::remove_dir_all(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", p.display()))
                    }
                    _ => {}
                }
            }
            println!("removed berth's firewall rules and records under {}", cli.run_root.display());
        }
        Command::Reconcile => {
            let r = netd::reconcile::reconcile(&cli.run_root).context("reconciling firewall rules")?;
            println!("re-installed the rules of {} networks and {} port publications", r.networks, r.ports);
        }
    }
    Ok(())
}
