//! Creating a container's record and starting it under its own monitor process, which
//! outlives whoever asked (the CLI's `run -d`, the daemon's `POST /containers/{id}/start`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use super::{config::Config, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::process::monitor;

impl Container {
    /// Resolves `cfg` and stores the record (status created). A container of that name
    /// that died unseen with `--rm` frees it first; on failure nothing is left, the
    /// anonymous volumes made for it included.
    pub fn create(paths: &Paths, cfg: &Config, warn: &mut dyn FnMut(&str)) -> Result<Container> {
        let c = cfg.resolve(paths, warn)?;
        if let Ok(old) = super::lookup(paths, &c.name) {
            monitor::sweep(paths, old)?;
        }
        if let Err(e) = super::store::create(paths, &c) {
            crate::volume::remove_anonymous(paths, &c.spec.volumes);
            return Err(e);
        }
        netd::fault::point("run-created");
        Ok(c)
    }

    /// Drops the record of a container that never ran, with the anonymous volumes made
    /// for it.
    pub fn discard(&self, paths: &Paths) {
        let _ = monitor::remove_files(paths, &self.id);
        crate::volume::remove_anonymous(paths, &self.spec.volumes);
    }

    /// Starts it in the background: `berth __monitor ID`, run from `berth` (this
    /// executable for the CLI, the installed one for the daemon), in a session of its own,
    /// starts PID 1 and reports; this returns once PID 1 runs, or with why it could not.
    /// A container running already is left as it is. On failure what the monitor took is
    /// released and the record stays, as Docker keeps a container whose start failed.
    pub fn start(&self, paths: &Paths, berth: &Path) -> Result<()> {
        self.start_with(paths, berth, None)
    }

    /// [`Container::start`] by `standby`, a monitor started ahead of time, when given
    /// (and still there; else by one spawned now): the daemon keeps one, so that a start
    /// does not wait for a process to be spawned, exec'd and set up.
    pub fn start_with(&self, paths: &Paths, berth: &Path, standby: Option<Standby>) -> Result<()> {
        // Started by hand: whatever stopped it by hand is over.
        super::update(paths, &self.id, |r| r.state.stopped_by_hand = false)?;
        self.launch_with(paths, berth, standby)
    }

    /// [`Container::start`] without clearing the stopped-by-hand mark: a restart by
    /// policy, which gives up if the mark is set before the run is recorded.
    pub(super) fn launch(&self, paths: &Paths, berth: &Path) -> Result<()> {
        self.launch_with(paths, berth, None)
    }

    fn launch_with(&self, paths: &Paths, berth: &Path, standby: Option<Standby>) -> Result<()> {
        let c = self.clone().settled(paths)?;
        if c.state.status == Status::Running && c.alive() {
            return Ok(());
        }
        let out = match standby.and_then(|s| s.hand(&c.id)) {
            Some(out) => out,
            None => spawn_monitor(paths, berth, &c.id)?,
        };
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let l = line.trim_end();
        if l == "ok" {
            return Ok(());
        }
        // A monitor that died (rather than reported an error after undoing its steps)
        // may have left a cgroup, an address, ports: released here.
        if !l.starts_with("err ") {
            if let Ok(rec) = super::lookup(paths, &c.id) {
                let _ = monitor::reap_stale(paths, &rec);
            }
        }
        let (code, msg) = match l.strip_prefix("err ").and_then(|r| r.split_once(' ')) {
            Some((code, msg)) => (code.parse().unwrap_or(125), msg.to_string()),
            None => (125, "container monitor failed to start".to_string()),
        };
        Err(Error::Start { code, msg })
    }
}

/// Spawns `berth __monitor ID` with its stderr in the container's monitor.log; returns
/// the pipe it reports on once the process it began as has exited (`detach_from_caller`).
fn spawn_monitor(paths: &Paths, berth: &Path, id: &str) -> Result<ChildStdout> {
    let mlog = open_monitor_log(paths, id)?;
    let mut cmd = monitor_command(paths, berth);
    cmd.arg(id).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(mlog);
    // Nothing runs between fork and exec (the monitor makes its own session), so the
    // child is spawned without copying this process's page tables (posix_spawn):
    // the daemon's memory stays its own.
    let mut child = cmd.spawn().map_err(|e| Error::io("start monitor", berth, e))?;
    let out = child.stdout.take().ok_or_else(|| Error::State("the monitor has no stdout".into()))?;
    // The monitor's parent, which exits as the monitor begins.
    let _ = child.wait();
    Ok(out)
}

/// `berth --root LIB --run-root RUN __monitor`, for the caller to finish.
fn monitor_command(paths: &Paths, berth: &Path) -> Command {
    let mut cmd = Command::new(berth);
    cmd.arg("--root").arg(&paths.lib).arg("--run-root").arg(&paths.run).arg("__monitor");
    cmd
}

/// The container's monitor.log, truncated: the monitor's stderr.
fn open_monitor_log(paths: &Paths, id: &str) -> Result<std::fs::File> {
    let path = paths.container(id).join("monitor.log");
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).map_err(|e| Error::io("create", path, e))
}

/// A monitor started ahead of time (`berth __monitor --standby`): exec'd, detached and
/// in a session of its own, waiting for the ID of the container it is to start. It exits
/// when its pipe closes unused, so a daemon that keeps one leaves nothing when it ends.
#[derive(Debug)]
pub struct Standby {
    ids: ChildStdin,
    out: ChildStdout,
    /// Its process ID.
    pub pid: i32,
}

impl Standby {
    /// Spawns one and waits until it is ready: detached (the process spawned exits at
    /// once) and waiting for an ID, which it says with `ready PID`.
    pub fn spawn(paths: &Paths, berth: &Path) -> Result<Self> {
        let mut cmd = monitor_command(paths, berth);
        cmd.arg("--standby").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| Error::io("start a standby monitor", berth, e))?;
        let (ids, out) = (child.stdin.take(), child.stdout.take());
        let _ = child.wait();
        let (Some(ids), Some(mut out)) = (ids, out) else {
            return Err(Error::State("the standby monitor has no pipes".into()));
        };
        // Read a byte at a time: what follows on this pipe is the start's report, read
        // by whoever starts a container with it.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.len() < 32
            && std::io::Read::read(&mut out, &mut b).map_err(|e| Error::io("read", "the standby's pipe", e))? == 1
            && b[0] != b'\n'
        {
            line.push(b[0]);
        }
        let pid = std::str::from_utf8(&line).ok().and_then(|l| l.strip_prefix("ready ")?.parse().ok());
        match pid {
            Some(pid) => Ok(Self { ids, out, pid }),
            None => Err(Error::State("the standby monitor did not get ready".into())),
        }
    }

    /// Tells it to start container `id`; its report pipe, or `None` when it is gone.
    fn hand(mut self, id: &str) -> Option<ChildStdout> {
        self.ids.write_all(format!("{id}\n").as_bytes()).ok()?;
        Some(self.out)
    }
}

/// Leaves the caller's children: the process the caller spawned exits at once (the caller
/// reaps it, see `launch`) and its child goes on as the monitor, an orphan that init
/// reaps when it ends. A daemon that starts containers for months would otherwise collect
/// one zombie per ended container.
fn detach_from_caller() -> Result<()> {
    // SAFETY: nothing has started a thread in this process yet; the parent only _exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(nix::unistd::ForkResult::Child) => Ok(()),
        Err(e) => Err(Error::sys("fork the monitor", e)),
    }
}

/// The monitor's side of [`Container::start`]: starts PID 1, reports `ok` or
/// `err CODE MESSAGE` on stdout, then becomes the waiter that supervises.
pub fn monitor(paths: &Paths, id: &str) -> Result<i32> {
    detach_from_caller()?;
    // A session of its own: the monitor outlives its caller's terminal and session.
    let _ = nix::unistd::setsid();
    run_monitor(paths, id)
}

/// `berth __monitor --standby` ([`Standby`]): detaches as [`monitor()`] does, says `ready
/// PID` on stdout, then waits for a container ID on stdin and monitors that container, its stderr in the
/// container's monitor.log. Exits 0 when stdin closes first.
pub fn standby(paths: &Paths) -> Result<i32> {
    detach_from_caller()?;
    let _ = nix::unistd::setsid();
    let mut out = std::io::stdout();
    writeln!(out, "ready {}", std::process::id()).and_then(|()| out.flush()).map_err(|e| Error::io("write", "the standby's pipe", e))?;
    let mut id = String::new();
    if std::io::stdin().lock().read_line(&mut id).map_err(|e| Error::io("read", "the standby's stdin", e))? == 0 {
        return Ok(0);
    }
    // The ID comes from the daemon; its record must exist before a file is made for it,
    // and the record's own ID names the files.
    let id = super::lookup(paths, id.trim_end())?.id;
    let log = open_monitor_log(paths, &id)?;
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null").map_err(|e| Error::io("open", "/dev/null", e))?;
    nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&log), 2).map_err(|e| Error::sys("redirect the monitor's stderr", e))?;
    nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0).map_err(|e| Error::sys("close the standby's stdin", e))?;
    run_monitor(paths, &id)
}

/// Starts container `id`, reports on stdout, and supervises it until it exits.
fn run_monitor(paths: &Paths, id: &str) -> Result<i32> {
    let c = super::lookup(paths, id)?;
    let mut out = std::io::stdout();
    match monitor::start(paths, &c, true) {
        Ok(mut started) => {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
            // The caller is gone after reading its line; nothing more goes to that pipe.
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1);
            }
            if started.tty.is_some() {
                // A terminal needs its leader end held and read: this process stays.
                let code = super::tty::serve_and_supervise(paths, &c, started);
                super::restart::after_exit(paths, &c, code);
                return Ok(code);
            }
            // Waiting (and logging) is done by a small process image (same PID): see
            // process::waiter.
            let log = c.log(paths);
            if let (Some(output), Ok(log)) = (&started.output, &log) {
                let err = crate::process::waiter::become_waiter(&paths.lib, &paths.run, &c.id, started.pid, output, log);
                tracing::warn!(error = %err, "cannot exec the waiter; supervising in this process");
            }
            // As the waiter does: the output until it is closed, then the exit.
            if let (Some((o, e)), Ok(log)) = (started.output.take(), log) {
                super::log::copy(o, e, &mut super::log::Writer::new(log), &mut || {});
            }
            let code = monitor::supervise(paths, &c, started, true);
            super::restart::after_exit(paths, &c, code);
            Ok(code)
        }
        Err(e) => {
            let msg = e.to_string().replace('\n', " ");
            let _ = writeln!(out, "err {} {msg}", e.exit_code());
            Ok(e.exit_code())
        }
    }
}
