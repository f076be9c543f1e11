//! Stopping, signalling and waiting for a container: one set of rules for the CLI and the
//! daemon.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use super::{lookup, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::process::monitor;

/// Waits until the monitor has recorded the exit (and cleaned up), or `timeout` passes.
/// A container removed meanwhile (`--rm`) has exited: its last record is returned.
pub(crate) fn wait_exited(paths: &Paths, id: &str, timeout: Duration) -> Result<Option<Container>> {
    let start = Instant::now();
    let mut last: Option<Container> = None;
    let mut monitor: Option<std::os::fd::OwnedFd> = None;
    loop {
        let c = match (lookup(paths, id), last.take()) {
            (Ok(c), _) => c,
            (Err(Error::NoContainer(_)), Some(mut gone)) => {
                gone.state.status = Status::Exited;
                gone.state.exit_code = super::removed_exit(paths, &gone.id).or(gone.state.exit_code);
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

impl Container {
    /// The container as it is once a start under way (its monitor lives, the record
    /// still says created) finished or failed: `stop` and `rm` act on that, never on a
    /// half-started container (whose address and ports would then leak).
    pub(crate) fn settled(self, paths: &Paths) -> Result<Container> {
        self.while_monitor(paths, |c| c.state.status == Status::Created)
    }

    /// The record once `pending` no longer holds or the monitor is gone (at most 30 s):
    /// the wait for a start under way, by its own monitor or by a restart policy's.
    fn while_monitor(self, paths: &Paths, pending: impl Fn(&Container) -> bool) -> Result<Container> {
        let start = Instant::now();
        let mut c = self;
        while pending(&c) && c.monitor_alive() && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(2));
            c = lookup(paths, &c.id)?;
        }
        Ok(c)
    }

    /// Signals PID 1, only if it is still the container's process (a PID reused after a
    /// crash belongs to someone else).
    fn signal(&self, sig: Signal) {
        if let Some(pid) = self.state.pid.filter(|_| self.alive()) {
            self.thaw_for_signal();
            let _ = send(Pid::from_raw(pid), sig);
        }
    }

    /// Stops it (see [`Container::stop`]) and starts it again under a new monitor run
    /// from `berth` (as [`Container::start`]).
    pub fn restart(&self, paths: &Paths, secs: u64, berth: &std::path::Path) -> Result<()> {
        self.stop(paths, secs)?;
        super::lookup(paths, &self.id)?.start(paths, berth)
    }

    /// Its stop signal (the image's STOPSIGNAL or the one asked for at create), then
    /// SIGKILL after `secs`; a container not running is left as it is.
    pub fn stop(&self, paths: &Paths, secs: u64) -> Result<()> {
        // Also when it is not running: its restart policy must not start it again (a
        // restart under way sees the mark when it records the run, and gives up).
        let c = self.clone().settled(paths)?.by_hand(paths)?;
        if c.state.status != Status::Running {
            return Ok(());
        }
        let sig = c.spec.stop_signal.as_deref().and_then(|s| super::config::parse_signal(s).ok()).unwrap_or(Signal::SIGTERM);
        c.signal(sig);
        netd::fault::point("stop-signalled");
        if wait_exited(paths, &c.id, Duration::from_secs(secs))?.is_none() {
            c.signal(Signal::SIGKILL);
            if wait_exited(paths, &c.id, Duration::from_secs(10))?.is_none() {
                return Err(Error::State(format!("container {} did not stop", c.name)));
            }
        }
        Ok(())
    }

    /// Sends `sig` to PID 1; a container not running is an error, as Docker's.
    pub fn kill(&self, paths: &Paths, sig: Signal) -> Result<()> {
        if !self.alive() {
            return Err(Error::State(format!("container {} is not running", self.name)));
        }
        self.by_hand(paths)?;
        self.signal(sig);
        Ok(())
    }

    /// Marks it stopped by hand (Docker's "manually stopped"): its restart policy leaves
    /// it stopped until it is started. Returns the record as marked.
    fn by_hand(&self, paths: &Paths) -> Result<Container> {
        super::update(paths, &self.id, |r| r.state.stopped_by_hand = true)
    }

    /// Blocks until it exits (or `timeout`); the record as it ended, `None` on timeout.
    pub fn wait(&self, paths: &Paths, timeout: Option<Duration>) -> Result<Option<Container>> {
        wait_exited(paths, &self.id, timeout.unwrap_or(Duration::from_secs(u64::MAX / 4)))
    }

    /// Removes it: a running one only with `force` (killed first); `volumes` removes the
    /// anonymous volumes made for it.
    pub fn remove(&self, paths: &Paths, force: bool, volumes: bool) -> Result<()> {
        let mut c = self.clone().settled(paths)?;
        // PID 1 is dead and its monitor has yet to record the exit: that record says
        // whether its policy brings it back (then it is restarting, as dockerd shows it).
        if c.state.status == Status::Running && !force && !c.alive() {
            c = c.while_monitor(paths, |c| c.state.status == Status::Running)?;
        }
        if c.restarting() {
            if !force {
                return Err(Error::State(format!("cannot remove restarting container {}: stop it first or use rm -f", c.name)));
            }
            // The restart under way gives up when it would record the run; wait for it to
            // have done so (its waiter ends) or to have run (then killed below).
            c = c.by_hand(paths)?.while_monitor(paths, |c| c.state.status != Status::Running)?;
        }
        if c.state.status == Status::Created {
            // A start that died half-way (its monitor or CLI killed) may hold a cgroup,
            // an address and ports: released before the record goes.
            monitor::reap_stale(paths, &c)?;
        }
        if c.state.status == Status::Running {
            if c.alive() && !force {
                return Err(Error::Running(c.name.clone()));
            }
            c.by_hand(paths)?;
            c.signal(Signal::SIGKILL);
            if wait_exited(paths, &c.id, Duration::from_secs(30))?.is_none() {
                return Err(Error::State(format!("container {} did not die", c.name)));
            }
        }
        netd::fault::point("rm-released");
        monitor::remove_files(paths, &c.id)?;
        if volumes {
            crate::volume::remove_anonymous(paths, &c.spec.volumes);
        }
        Ok(())
    }
}
