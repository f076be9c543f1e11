//! The `dhcp` CNI plugin, and with `daemon` as its first argument the daemon that holds
//! the leases: `dhcp daemon [-socketpath P] [-pidfile F] [-hostprefix D] [-broadcast]
//! [-timeout T] [-resendmax T] [-statedir D]` (the reference's flags; a socket passed by
//! systemd — LISTEN_FDS=1 — is used as it is).

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use anyhow::{bail, Context};

fn daemon(args: &[String]) -> anyhow::Result<()> {
    let mut socket = PathBuf::from(berth_cni::plugin::dhcp::DEFAULT_SOCKET);
    let (mut pidfile, mut hostprefix, mut state) = (None, PathBuf::from("/"), PathBuf::from("/run/cni/dhcp-leases"));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).with_context(|| format!("-{name} needs a value"));
        match name {
            "socketpath" => socket = value()?.into(),
            "pidfile" => pidfile = Some(PathBuf::from(value()?)),
            "hostprefix" => hostprefix = value()?.into(),
            "statedir" => state = value()?.into(),
            // Accepted for the reference's unit files: berth's client sets the broadcast
            // flag when it has no address and times its resends itself.
            "broadcast" => {}
            "timeout" | "resendmax" | "resendtimeout" => {
                value()?;
            }
            other => bail!("dhcp daemon: unknown flag -{other}"),
        }
    }
    let listener = match std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<i32>().ok()) {
        Some(1) if std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id()) => {
            // SAFETY: systemd passes the listening socket as descriptor 3 (SD_LISTEN_FDS_START).
            unsafe { UnixListener::from_raw_fd(3) }
        }
        _ => {
            if let Some(dir) = socket.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            }
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                bail!("dhcp daemon: {} is served by a running daemon", socket.display());
            }
            let _ = std::fs::remove_file(&socket);
            UnixListener::bind(&socket).with_context(|| format!("listen on {}", socket.display()))?
        }
    };
    if let Some(p) = pidfile {
        std::fs::write(&p, format!("{}\n", std::process::id())).with_context(|| format!("write {}", p.display()))?;
    }
    let d = netd::dhcp::daemon::Daemon::open(&state, &hostprefix)?;
    tracing::info!(socket = %socket.display(), state = %state.display(), "dhcp daemon serving");
    d.serve(listener)?;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("daemon") {
        netd::logging::init();
        if let Err(e) = daemon(&args[1..]) {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
        return;
    }
    berth_cni::skel::run(&berth_cni::plugin::dhcp::Dhcp)
}
