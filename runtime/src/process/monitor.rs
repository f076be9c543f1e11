//! Starting a container and supervising it: clone the child into its namespaces, put it
//! in its cgroup, wire its network, let it exec, then wait for it, record the exit code
//! and clean up. Runs inline for a foreground `run` and in a detached monitor for `-d`.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::OFlag;
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, write, Pid};

use super::init::{child_main, read_failure, InitConfig};
use super::rootfs::Plan;
use crate::cgroups::Cgroup;
use crate::container::{self, Container, NetMode, Status};
use crate::error::{Error, Result};
use crate::network;
use crate::paths::Paths;

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// Host PID of PID 1.
    pub pid: Pid,
    /// Its cgroup.
    pub cgroup: Cgroup,
}

fn plan(paths: &Paths, c: &Container) -> Result<Plan> {
    let dir = paths.container(&c.id);
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }
    let lowers: Vec<PathBuf> = c.spec.layers.iter().rev().map(|l| crate::image::layer_dir(paths, l)).collect();
    if let Some(missing) = lowers.iter().find(|l| !l.is_dir()) {
        return Err(Error::Invalid(format!("image layer {} is missing; load the image again", missing.display())));
    }
    let mut etc = vec![(dir.join("hosts"), "/etc/hosts"), (dir.join("resolv.conf"), "/etc/resolv.conf")];
    if c.spec.net != NetMode::Host {
        etc.push((dir.join("hostname"), "/etc/hostname"));
    }
    Ok(Plan {
        lowers,
        upper,
        work,
        merged,
        volumes: c.spec.volumes.clone(),
        etc,
        own_sysfs: !matches!(c.spec.net, NetMode::Host | NetMode::Container(_)),
    })
}

/// Starts the container: on success PID 1 has exec'd its command and the record says
/// running; on failure everything done is undone and the error carries the exit code.
pub fn start(paths: &Paths, c: &Container, log: Option<PathBuf>) -> Result<Started> {
    let t0 = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, elapsed_us = t0.elapsed().as_micros() as u64, "start step");
    let plan = plan(paths, c)?;
    let join_netns: Option<OwnedFd> = match &c.spec.net {
        NetMode::Container(id) => {
            let other = container::lookup(paths, id)?;
            let pid = other
                .state
                .pid
                .filter(|_| other.alive())
                .ok_or_else(|| Error::State(format!("cannot join network of container {}: it is not running", other.name)))?;
            let f = fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| Error::io("open netns of", other.name.clone(), e))?;
            Some(OwnedFd::from(f))
        }
        _ => None,
    };
    let mut flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if matches!(c.spec.net, NetMode::Bridge(_) | NetMode::None) {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let (sync_r, sync_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let cfg = InitConfig {
        args: c.spec.args.clone(),
        env: c.spec.env.clone(),
        workdir: c.spec.workdir.clone(),
        hostname: (c.spec.net != NetMode::Host).then(|| c.spec.hostname.clone()),
        rootfs: plan,
        join_netns,
        user: c.spec.user.clone(),
        log,
        sync: sync_r,
        sync_peer: sync_w,
        err: err_w,
    };
    let mut stack = vec![0u8; 1024 * 1024];
    // SAFETY: no CLONE_VM; the child gets a copy of this (single-threaded) process, like
    // fork, and either execs or exits without returning into our frames.
    let pid = unsafe { clone(Box::new(|| child_main(&cfg)), &mut stack, flags, Some(Signal::SIGCHLD as i32)) }
        .map_err(|e| Error::sys("clone container process", e))?;
    step("clone");
    let InitConfig { sync_peer: sync_w, err: err_w, .. } = cfg;
    drop(err_w);
    let abort = |e: Error| -> Error {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        e
    };
    let cgroup = match Cgroup::create(&c.id, &c.spec.limits).and_then(|cg| cg.add(pid.as_raw()).map(|_| cg)) {
        Ok(cg) => cg,
        Err(e) => {
            Cgroup::existing(&c.id).remove();
            return Err(abort(e));
        }
    };
    step("cgroup");
    let fail = |e: Error| {
        let e = abort(e);
        cgroup.remove();
        e
    };
    let endpoint = match network::setup(paths, c, pid.as_raw()) {
        Ok(ep) => ep,
        Err(e) => return Err(fail(e)),
    };
    step("network");
    let undo_net = |e: Error| {
        let e = fail(e);
        let _ = network::teardown(paths, c);
        e
    };
    if let Err(e) = network::write_etc(paths, c, endpoint.as_ref()) {
        return Err(undo_net(e));
    }
    let rec = container::update(paths, &c.id, |r| {
        r.state.status = Status::Running;
        r.state.pid = Some(pid.as_raw());
        r.state.monitor_pid = Some(std::process::id() as i32);
        r.state.started_at = Some(now());
        r.state.endpoint = endpoint.clone();
    });
    if let Err(e) = rec {
        return Err(undo_net(e));
    }
    if let Err(e) = write(sync_w.as_fd(), b"g") {
        return Err(undo_net(Error::sys("start container", e)));
    }
    drop(sync_w);
    step("record+go");
    let failure = read_failure(err_r.as_raw_fd());
    step("rootfs+exec");
    if let Some((code, msg)) = failure {
        let _ = waitpid(pid, None);
        cgroup.remove();
        let _ = network::teardown(paths, c);
        let _ = container::update(paths, &c.id, |r| {
            r.state.status = Status::Exited;
            r.state.exit_code = Some(code);
            r.state.pid = None;
            r.state.error = msg.clone();
        });
        return Err(Error::Start { code, msg });
    }
    Ok(Started { pid, cgroup })
}

/// Waits for PID 1, records its exit code, and cleans up (network, cgroup, and the whole
/// container with `--rm`). Returns the exit code (128+signal when killed).
pub fn supervise(paths: &Paths, c: &Container, started: Started) -> i32 {
    let code = loop {
        match waitpid(started.pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => break 125,
        }
    };
    started.cgroup.remove();
    if let Err(e) = network::teardown(paths, c) {
        tracing::warn!(error = %e, id = %c.id, "network teardown failed");
    }
    let _ = container::update(paths, &c.id, |r| {
        r.state.status = Status::Exited;
        r.state.exit_code = Some(code);
        r.state.pid = None;
        r.state.finished_at = Some(now());
    });
    if c.spec.auto_remove {
        let _ = remove_files(paths, &c.id);
    }
    code
}

/// Cleans up after a container whose monitor is gone (crash): network, cgroup, record.
pub fn reap_stale(paths: &Paths, c: &Container) -> Result<()> {
    Cgroup::existing(&c.id).remove();
    network::teardown(paths, c)?;
    container::update(paths, &c.id, |r| {
        r.state.status = Status::Exited;
        r.state.pid = None;
        if r.state.exit_code.is_none() {
            r.state.exit_code = Some(137);
        }
    })?;
    Ok(())
}

/// Removes the container's directory (its writable layer, logs, record).
pub fn remove_files(paths: &Paths, id: &str) -> Result<()> {
    let _l = container::lock(paths)?;
    container::remove_dir(paths, id)
}
