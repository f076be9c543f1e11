//! `stop`, `kill`, `rm`, `wait`.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use crate::container::{self, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::process::monitor;

pub(crate) fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Flag { flag: "signal", value: s.to_string(), why: "no such signal".into() });
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| Error::Flag { flag: "signal", value: s.to_string(), why: "no such signal".into() })
}

/// Waits until the monitor has recorded the exit (and cleaned up), or `timeout` passes.
/// A container removed meanwhile (`--rm`) has exited: its last record is returned.
fn wait_exited(paths: &Paths, id: &str, timeout: Duration) -> Result<Option<Container>> {
    let start = Instant::now();
    let mut last: Option<Container> = None;
    let mut monitor: Option<std::os::fd::OwnedFd> = None;
    loop {
        let c = match (container::lookup(paths, id), last.take()) {
            (Ok(c), _) => c,
            (Err(Error::NoContainer(_)), Some(mut gone)) => {
                gone.state.status = Status::Exited;
                return Ok(Some(gone));
            }
            (Err(e), _) => return Err(e),
        };
        if c.state.status != Status::Running {
            return Ok(Some(c));
        }
        // A supervisor that died unseen: released (removed with --rm) as `ps` does.
        last = Some(c.clone());
        match monitor::sweep(paths, c)? {
            Some(c) if c.state.status != Status::Running => return Ok(Some(c)),
            Some(_) => {}
            None => continue,
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        // The monitor records the exit and cleans up, then exits: its exit is the event
        // to wait for (a pidfd, opened once and checked to be the recorded process);
        // the record is re-read at least every 20 ms in case it changes first.
        if monitor.is_none() {
            monitor = last.as_ref().and_then(monitor_pidfd);
        }
        match &monitor {
            Some(fd) => {
                let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd; a failed or interrupted poll only shortens the wait.
                unsafe { libc::poll(&mut p, 1, 20) };
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A pidfd of the container's monitor, if it runs and is the process the record names.
fn monitor_pidfd(c: &Container) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = c.state.monitor_pid?;
    // SAFETY: pidfd_open returns a new descriptor that we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a freshly opened descriptor owned by nothing else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    // Opened first, checked after: if the PID was reused, this fd is not the monitor's.
    netd::proc::same_process(pid, c.state.monitor_start).then_some(fd)
}

/// A container whose start is under way (its monitor lives, the record still says
/// created) as it is once the start finished or failed: `stop` and `rm` act on that, never
/// on a half-started container (whose address and ports would then leak).
fn settled(paths: &Paths, mut c: Container) -> Result<Container> {
    let start = Instant::now();
    while c.state.status == Status::Created && c.monitor_alive() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(2));
        c = container::lookup(paths, &c.id)?;
    }
    Ok(c)
}

/// Signals PID 1, only if it is still the container's process (a PID reused after a
/// crash belongs to someone else).
fn signal(c: &Container, sig: Signal) {
    if let Some(pid) = c.state.pid.filter(|_| c.alive()) {
        let _ = send(Pid::from_raw(pid), sig);
    }
}

/// SIGTERM, then SIGKILL after `secs`.
pub fn stop(paths: &Paths, names: &[String], secs: u64) -> Result<i32> {
    for n in names {
        let c = settled(paths, container::lookup(paths, n)?)?;
        if c.state.status == Status::Running {
            // The image's STOPSIGNAL or --stop-signal (checked at run), else SIGTERM.
            let sig = c.spec.stop_signal.as_deref().and_then(|s| parse_signal(s).ok()).unwrap_or(Signal::SIGTERM);
            signal(&c, sig);
            netd::fault::point("stop-signalled");
            if wait_exited(paths, &c.id, Duration::from_secs(secs))?.is_none() {
                signal(&c, Signal::SIGKILL);
                if wait_exited(paths, &c.id, Duration::from_secs(10))?.is_none() {
                    return Err(Error::State(format!("container {} did not stop", c.name)));
                }
            }
        }
        println!("{n}");
    }
    Ok(0)
}

/// Sends a signal to PID 1.
pub fn kill(paths: &Paths, names: &[String], sig: &str) -> Result<i32> {
    let sig = parse_signal(sig)?;
    for n in names {
        let c = container::lookup(paths, n)?;
        if !c.alive() {
            return Err(Error::State(format!("container {} is not running", c.name)));
        }
        signal(&c, sig);
        println!("{n}");
    }
    Ok(0)
}

/// Removes stopped containers (running ones too with `force`).
pub fn rm(paths: &Paths, names: &[String], force: bool, volumes: bool) -> Result<i32> {
    for n in names {
        let c = settled(paths, container::lookup(paths, n)?)?;
        if c.state.status == Status::Created {
            // A start that died half-way (its monitor or CLI killed) may hold a cgroup,
            // an address and ports: released before the record goes.
            monitor::reap_stale(paths, &c)?;
        }
        if c.state.status == Status::Running {
            if c.alive() && !force {
                return Err(Error::State(format!("cannot remove running container {}: stop it first or use rm -f", c.name)));
            }
            signal(&c, Signal::SIGKILL);
            if wait_exited(paths, &c.id, Duration::from_secs(30))?.is_none() {
                return Err(Error::State(format!("container {} did not die", c.name)));
            }
        }
        netd::fault::point("rm-released");
        monitor::remove_files(paths, &c.id)?;
        if volumes {
            crate::volume::remove_anonymous(paths, &c.spec.volumes);
        }
        println!("{n}");
    }
    Ok(0)
}

/// Blocks until each container exits; prints exit codes.
pub fn wait(paths: &Paths, names: &[String]) -> Result<i32> {
    for n in names {
        let c = container::lookup(paths, n)?;
        let done = wait_exited(paths, &c.id, Duration::from_secs(u64::MAX / 4))?.ok_or_else(|| Error::State("wait interrupted".into()))?;
        println!("{}", done.state.exit_code.unwrap_or(0));
    }
    Ok(0)
}
