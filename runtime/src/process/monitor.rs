//! Starting a container and supervising it: clone the child into its namespaces, put it
//! in its cgroup, wire its network, let it exec, then wait for it, record the exit code
//! and clean up. Runs inline for a foreground `run` and in a detached monitor for `-d`.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};

use super::init::{child_main, read_failure, InitConfig, CGROUP_READY, GO};
use super::rootfs::Plan;
use crate::cgroups::{devices::Devices, Cgroup};
use crate::clock::now;
use crate::container::{self, Container, NetMode, Status};
use crate::error::{Error, Result};
use crate::network;
use crate::paths::Paths;
use crate::security::Prepared;
use netd::network::endpoint::Endpoint;

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// Host PID of PID 1.
    pub pid: Pid,
    /// Its cgroup.
    pub cgroup: Cgroup,
    /// The leader end of its terminal, for a detached container with `-t`.
    pub tty: Option<OwnedFd>,
    /// The read ends of its stdout and stderr, for a container without `-t`: whoever
    /// supervises copies them into the log (and, in the foreground, to its own stdio).
    pub output: Option<(OwnedFd, OwnedFd)>,
}

/// The monitor's ends of what a detached PID 1 writes to.
enum Ends {
    /// Run in the foreground with `-t`: the caller's terminal.
    None,
    /// Pipes, read ends.
    Pipes(OwnedFd, OwnedFd),
    /// The console socket PID 1 sends its terminal's leader over.
    Console(OwnedFd),
}

fn plan(paths: &Paths, c: &Container) -> Result<Plan> {
    let dir = paths.container(&c.id);
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }
    // overlayfs cannot take an upper directory on overlayfs (the kernel answers EINVAL):
    // say so and what to do, before anything is started.
    if nix::sys::statfs::statfs(&upper).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC) {
        return Err(Error::StoreOnOverlay(paths.lib.clone()));
    }
    // In a plain chroot "/" is no mount of its own: making it private, and pivot_root,
    // would fail with EINVAL deep in the start. (mountinfo shows mount points as seen
    // from this root.)
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mountinfo.is_empty() && !mountinfo.lines().any(|l| l.split(' ').nth(4) == Some("/")) {
        return Err(Error::RootNotMounted);
    }
    let lowers: Vec<PathBuf> = c.spec.layers.iter().rev().map(|l| crate::image::layer_dir(paths, l)).collect();
    if let Some(missing) = lowers.iter().find(|l| !l.is_dir()) {
        return Err(Error::MissingLayer(missing.clone()));
    }
    let mut etc = vec![(dir.join("hosts"), "/etc/hosts"), (dir.join("resolv.conf"), "/etc/resolv.conf")];
    if c.spec.net != NetMode::Host {
        etc.push((dir.join("hostname"), "/etc/hostname"));
    }
    Ok(Plan { lowers, upper, work, merged, volumes: c.spec.volumes.clone(), etc, privileged: c.spec.security.privileged })
}

/// What a half-started container holds; dropped unarmed, it undoes all of it.
struct Undo<'a> {
    paths: &'a Paths,
    c: &'a Container,
    pid: Pid,
    cgroup: Option<Cgroup>,
    endpoint: Option<Option<Endpoint>>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
        match &self.cgroup {
            Some(cg) => cg.remove(),
            None => Cgroup::existing(&self.c.id).remove(),
        }
        if let Some(ep) = &self.endpoint {
            let _ = network::teardown(self.paths, self.c, ep.as_ref());
        }
    }
}

/// The netns to join in `container:<x>` mode, opened before the child exists.
fn joined_netns(paths: &Paths, c: &Container) -> Result<Option<OwnedFd>> {
    let NetMode::Container(id) = &c.spec.net else { return Ok(None) };
    let other = container::lookup(paths, id)?;
    let pid = other
        .state
        .pid
        .filter(|_| other.alive())
        .ok_or_else(|| Error::State(format!("cannot join network of container {}: it is not running", other.name)))?;
    let f = fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| Error::io("open netns of", other.name.clone(), e))?;
    Ok(Some(OwnedFd::from(f)))
}

fn is_fifo(p: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

/// Sends PID 1 `byte` on the sync socket.
fn tell(sync: &OwnedFd, byte: u8) -> nix::Result<usize> {
    nix::sys::socket::send(sync.as_raw_fd(), &[byte], nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
}

/// Clones the container's PID 1 into its namespaces, waiting on the sync socket; returns
/// its PID, the monitor's end of the sync socket and the read end of the error pipe.
fn spawn_init(paths: &Paths, c: &Container, detached: bool, confine: Prepared) -> Result<(Pid, OwnedFd, OwnedFd, Ends)> {
    let mut flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if matches!(c.spec.net, NetMode::Bridge(_) | NetMode::None) {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // A socket pair rather than a pipe: the monitor's bytes go with MSG_NOSIGNAL, so a
    // PID 1 that has failed and exited costs the (foreground) CLI no SIGPIPE.
    let (sync_r, sync_w) = {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(|e| Error::sys("socketpair", e))?
    };
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    // PID 1 writes into pipes the supervisor logs (as dockerd logs an attached run), or,
    // detached with `-t`, makes its terminal in its own devpts and sends the leader back
    // over a socket pair; in the foreground with `-t` it has the caller's terminal.
    let (ends, output, console) = match (detached, c.spec.tty) {
        (false, true) => (Ends::None, None, None),
        (_, false) => {
            let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
            let (errs_r, errs_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
            (Ends::Pipes(out_r, errs_r), Some((out_w, errs_w)), None)
        }
        (true, true) => {
            use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
            let (ours, theirs) =
                socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(|e| Error::sys("socketpair", e))?;
            (Ends::Console(ours), None, Some(theirs))
        }
    };
    let cfg = InitConfig {
        args: c.spec.args.clone(),
        env: c.spec.env.clone(),
        workdir: c.spec.workdir.clone(),
        hostname: (c.spec.net != NetMode::Host).then(|| c.spec.hostname.clone()),
        rootfs: plan(paths, c)?,
        join_netns: joined_netns(paths, c)?,
        user: c.spec.user.clone(),
        confine,
        stdin: Some(paths.container(&c.id).join("stdin")).filter(|p| detached && output.is_some() && c.spec.interactive && is_fifo(p)),
        keep_stdin: !detached,
        output,
        console,
        cgroup_tasks: Cgroup::tasks_files(&c.id),
        sync: sync_r,
        sync_peer: sync_w,
        err: err_w,
    };
    let mut stack = vec![0u8; 1024 * 1024];
    // SAFETY: no CLONE_VM; the child gets a copy of this (single-threaded) process, like
    // fork, and either execs or exits without returning into our frames.
    let pid = unsafe { clone(Box::new(|| child_main(&cfg)), &mut stack, flags, Some(Signal::SIGCHLD as i32)) }
        .map_err(|e| Error::sys("clone container process", e))?;
    // Our copies of the error pipe's and the output pipes' write ends go with `cfg`, so
    // EOF means exec succeeded (or PID 1 and its children closed their output).
    let InitConfig { sync_peer, .. } = cfg;
    Ok((pid, sync_peer, err_r, ends))
}

/// Starts the container: on success PID 1 has exec'd its command and the record says
/// running; on failure everything done is undone and the error carries the exit code.
/// `detached`: stdin is not this process's (a FIFO or /dev/null), and with `-t` PID 1
/// makes its own terminal. Without `-t` its output comes back in [`Started::output`].
pub fn start(paths: &Paths, c: &Container, detached: bool) -> Result<Started> {
    let t0 = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, elapsed_us = t0.elapsed().as_micros() as u64, "start step");
    // Who is starting it, before anything is taken: `rm`/`stop` wait for a live monitor
    // to finish, and release what a dead one took, at once.
    container::update(paths, &c.id, |r| {
        r.state.monitor_pid = Some(std::process::id() as i32);
        r.state.monitor_start = netd::proc::start_time(std::process::id() as i32);
    })?;
    // Capabilities resolved and the seccomp filter compiled before the clone.
    let confine = c.spec.security.prepare(Some(&paths.seccomp_cache()))?;
    // PID 1 bind-mounts its /etc files while the network is made: they exist by then,
    // and get their contents (the address) in place once it is.
    network::prepare_etc(paths, c)?;
    step("confine");
    let (pid, sync_w, err_r, ends) = spawn_init(paths, c, detached, confine)?;
    let mut undo = Undo { paths, c, pid, cgroup: None, endpoint: None, armed: true };
    step("clone");
    let devices = if c.spec.security.privileged { Devices::All } else { Devices::Default };
    // The cgroup and the network are independent: the cgroup is made in a thread while
    // the network is set up. On v2, moving PID 1 into it waits for an RCU grace period
    // (5–25 ms here), about as long as the network takes; on v1 PID 1 joins it itself.
    // Once it is made PID 1 is told so, and makes its root file system (mounts,
    // pivot_root: ~2.5 ms) while the network is still being made.
    undo.endpoint = Some(None);
    let (cgroup, endpoint) = std::thread::scope(|s| {
        let sync = &sync_w;
        let made = s.spawn(move || {
            let cg = Cgroup::create(&c.id, &c.spec.limits, devices)?;
            if !cg.joined_by_pid1() {
                cg.add(pid.as_raw()).inspect_err(|_| cg.remove())?;
            }
            netd::fault::point("start-cgroup");
            // A PID 1 that failed already waits for GO and says why on the error pipe.
            let _ = tell(sync, CGROUP_READY);
            Ok::<_, Error>(cg)
        });
        netd::fault::delay("start-network");
        let endpoint = network::setup(paths, c, pid.as_raw());
        let cgroup = made.join().unwrap_or_else(|_| Err(Error::State("making the cgroup panicked".into())));
        (cgroup, endpoint)
    });
    if let Ok(ep) = &endpoint {
        undo.endpoint = Some(ep.clone());
    }
    let cgroup = cgroup?;
    undo.cgroup = Some(cgroup.clone());
    let endpoint = endpoint?;
    netd::fault::point("start-network");
    step("cgroup+network");
    let written = network::write_etc(paths, c, endpoint.as_ref());
    // Removed while it started (`rm -f` racing a start by policy): writing its /etc
    // files made its directory again, and the record is gone; nothing of it stays.
    let removed = || {
        let dir = paths.container(&c.id);
        if !dir.join("container.json").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    };
    if let Err(e) = written {
        removed();
        return Err(e);
    }
    // Stopped by hand while it started (a restart by policy racing `stop`): it does not
    // run; checked in the same update that records the run, which `stop` then sees.
    let mut stopped = false;
    container::update(paths, &c.id, |r| {
        stopped = r.state.stopped_by_hand;
        if stopped {
            return;
        }
        r.state.status = Status::Running;
        r.state.restarting = false;
        r.state.pid = Some(pid.as_raw());
        r.state.pid_start = netd::proc::start_time(pid.as_raw());
        r.state.monitor_pid = Some(std::process::id() as i32);
        r.state.monitor_start = netd::proc::start_time(std::process::id() as i32);
        r.state.started_at = Some(now());
        r.state.endpoint = endpoint.clone();
    })
    .inspect_err(|_| removed())?;
    if stopped {
        drop(undo);
        return Err(Error::State(format!("container {} was stopped while it started", c.name)));
    }
    netd::fault::point("start-recorded");
    // A PID 1 that failed while making its root waits for this byte, then exits, and the
    // error pipe says why; one killed meanwhile fails the send.
    let sent = tell(&sync_w, GO);
    drop(sync_w);
    step("record+go");
    let mut failure = read_failure(err_r.as_raw_fd());
    if let (None, Err(e)) = (&failure, sent) {
        failure = Some((125, format!("start container: {e}")));
    }
    step("rootfs+exec");
    let (mut tty, mut output) = (None, None);
    match ends {
        Ends::None => {}
        Ends::Pipes(out, err) => output = Some((out, err)),
        // PID 1 sent the leader before it exec'd.
        Ends::Console(sock) if failure.is_none() => match super::console::receive(sock.as_raw_fd()) {
            Ok(Some(leader)) => tty = Some(leader),
            _ => failure = Some((125, "the container did not send its terminal".into())),
        },
        Ends::Console(_) => {}
    }
    if let Some((code, msg)) = failure {
        drop(undo);
        let _ = container::update(paths, &c.id, |r| {
            r.state.status = Status::Exited;
            r.state.restarting = false;
            r.state.exit_code = Some(code);
            r.state.pid = None;
            r.state.error = msg.clone();
        });
        return Err(Error::Start { code, msg });
    }
    undo.armed = false;
    Ok(Started { pid, cgroup, tty, output })
}

/// [`supervise`] for a foreground run: what PID 1 writes (without `-t`) goes to this
/// process's stdout and stderr as it comes, and into `log` (the container's log, as
/// dockerd logs an attached run; none for a build step).
pub fn supervise_foreground(paths: &Paths, c: &Container, mut started: Started, log: Option<std::fs::File>) -> i32 {
    let copy = started
        .output
        .take()
        .map(|(o, e)| std::thread::spawn(move || container::log::copy(o, e, &mut container::log::Writer::echoing(log), &mut || {})));
    let code = supervise(paths, c, started, false);
    if let Some(t) = copy {
        let _ = t.join();
    }
    code
}

/// Waits for PID 1, records its exit code, and cleans up (network, cgroup, and the whole
/// container with `--rm`). Returns the exit code (128+signal when killed). `by_policy`:
/// the caller applies the restart policy next (see [`reap`]).
pub fn supervise(paths: &Paths, c: &Container, started: Started, by_policy: bool) -> i32 {
    let code = loop {
        match waitpid(started.pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => break 125,
        }
    };
    reap(paths, c, started.cgroup, code, by_policy)
}

/// After PID 1 exited with `code`: removes the cgroup, releases the network, records the
/// exit, and removes the container with `--rm`. Returns `code`. `by_policy`: the caller
/// applies the restart policy next; a container it brings back is marked restarting in
/// the update that records the exit, so that it never looks exited (and removable
/// without `-f`) in between.
pub fn reap(paths: &Paths, c: &Container, cgroup: Cgroup, code: i32, by_policy: bool) -> i32 {
    cgroup.remove();
    netd::fault::point("reap-cgroup");
    let ep = container::lookup(paths, &c.id).ok().and_then(|r| r.state.endpoint);
    if let Err(e) = network::teardown(paths, c, ep.as_ref()) {
        tracing::warn!(error = %e, id = %c.id, "network teardown failed");
    }
    netd::fault::point("reap-network");
    netd::fault::delay("reap-record");
    let _ = container::update(paths, &c.id, |r| {
        r.state.status = Status::Exited;
        r.state.exit_code = Some(code);
        r.state.pid = None;
        r.state.finished_at = Some(now());
        if by_policy {
            r.state.restarting = r.restarts_after(code);
        }
    });
    if c.spec.auto_remove {
        // Whoever waits for it (docker run --rm) learns the code after the record is gone.
        crate::container::record_exit(paths, &c.id, code);
        let _ = remove_files(paths, &c.id);
        crate::volume::remove_anonymous(paths, &c.spec.volumes);
    }
    code
}

/// The cleanup after a detached container's PID 1 exited with `code`: [`reap`], then its
/// restart policy. Returns the code.
pub fn reap_exited(paths: &Paths, id: &str, code: i32) -> Result<i32> {
    let c = container::lookup(paths, id)?;
    let code = reap(paths, &c, Cgroup::existing(id), code, true);
    container::restart::after_exit(paths, &c, code);
    Ok(code)
}

/// Cleans up after a container whose monitor is gone (crash): network, cgroup, record.
pub fn reap_stale(paths: &Paths, c: &Container) -> Result<()> {
    Cgroup::existing(&c.id).remove();
    network::teardown(paths, c, c.state.endpoint.as_ref())?;
    container::update(paths, &c.id, |r| {
        r.state.status = Status::Exited;
        r.state.pid = None;
        if r.state.exit_code.is_none() {
            r.state.exit_code = Some(137);
        }
    })?;
    Ok(())
}

/// A container whose supervisor died unseen (a crash, a SIGKILL, a start killed half-way
/// more than a minute ago) is put right: its network, cgroup and record released as
/// `reap_stale` does, and with `--rm` the container removed. Returns the record as it is
/// now, `None` if it was removed. Anything else is returned unchanged.
pub fn sweep(paths: &Paths, c: Container) -> Result<Option<Container>> {
    let dead = match c.state.status {
        Status::Running => !c.alive() && !c.monitor_alive(),
        // A start whose monitor is known and gone died half-way; without a monitor on
        // record, the CLI may still be about to start one.
        Status::Created => !c.monitor_alive() && (c.state.monitor_pid.is_some() || now().saturating_sub(c.created) > 60),
        _ => false,
    };
    if !dead {
        return Ok(Some(c));
    }
    // Its own monitor may have finished the job meanwhile (`--rm` removes the record
    // just before the monitor exits): a record gone under us is a container removed.
    let gone = |paths: &Paths| matches!(container::lookup(paths, &c.id), Err(Error::NoContainer(_)));
    if let Err(e) = reap_stale(paths, &c) {
        return if gone(paths) { Ok(None) } else { Err(e) };
    }
    if c.spec.auto_remove {
        remove_files(paths, &c.id)?;
        crate::volume::remove_anonymous(paths, &c.spec.volumes);
        return Ok(None);
    }
    match container::lookup(paths, &c.id) {
        Err(Error::NoContainer(_)) => Ok(None),
        r => r.map(Some),
    }
}

/// Removes the container's directory (its writable layer, logs, record).
pub fn remove_files(paths: &Paths, id: &str) -> Result<()> {
    let _l = container::lock(paths)?;
    container::remove_dir(paths, id)
}
