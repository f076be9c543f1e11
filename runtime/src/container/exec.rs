//! A new process in a running container's namespaces and cgroup, as the image's user and
//! confined like the container's PID 1: `berth exec`, and the daemon's exec endpoints,
//! which run `berth exec` as dockerd runs `runc exec` (a fresh single-threaded process,
//! where forking into the namespaces is safe).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::Container;
use crate::error::{Error, Result};
use crate::paths::Paths;

/// How an exec runs besides its command.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecOptions<'a> {
    /// `KEY=VALUE`s added to the container's environment.
    pub env: &'a [String],
    /// The working directory (default the container's).
    pub workdir: Option<&'a str>,
    /// A console socket: the command gets a new terminal made in the container, whose
    /// leader is sent there (see `process::console`); else it gets this process's stdio.
    pub console: Option<&'a Path>,
}

impl Container {
    /// Runs `cmd` in the container; returns its exit code (126/127 if it cannot run).
    pub fn exec(&self, paths: &Paths, cmd: &[String], opts: &ExecOptions) -> Result<i32> {
        exec(paths, self, cmd, opts)
    }
}

fn exec(paths: &Paths, c: &Container, cmd: &[String], opts: &ExecOptions) -> Result<i32> {
    if cmd.is_empty() {
        return Err(Error::Conflict("no command specified"));
    }
    let pid = c.state.pid.filter(|_| c.alive()).ok_or_else(|| Error::State(format!("container {} is not running", c.name)))?;
    // Connected from here (paths mean the host's): the child sends the terminal later.
    let console = match opts.console {
        Some(p) => Some(UnixStream::connect(p).map_err(|e| Error::io("connect to the console socket", p, e))?),
        None => None,
    };
    // Namespaces in setns order: the mount namespace last, as it changes what paths mean.
    let kinds = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut fds = Vec::new();
    for (k, flag) in kinds {
        let p = format!("/proc/{pid}/ns/{k}");
        fds.push((File::open(&p).map_err(|e| Error::io("open", p, e))?, flag));
    }
    // PID 1's root directory. Joining a mount namespace puts the caller at the
    // namespace's root mount, which is the container's root only when the container was
    // pivoted from the namespace's own root: started from inside a chroot it is the host's
    // whole tree. Entering PID 1's root after joining is right in every case.
    let root_path = format!("/proc/{pid}/root");
    let root = File::open(&root_path).map_err(|e| Error::io("open", root_path, e))?;
    let root_failed = b"berth: exec: cannot enter the container's root directory\n".to_vec();
    // Opened here: the forked child only writes to them. Each must exist: an exec outside
    // the container's limits is refused, never run silently.
    let procs: Vec<std::path::PathBuf> = match crate::cgroups::Cgroup::existing(&c.id) {
        crate::cgroups::Cgroup::V1(d) => d.iter().map(|x| x.join("cgroup.procs")).collect(),
        crate::cgroups::Cgroup::V2(d) => vec![d.join("cgroup.procs")],
    };
    let mut cgroup_procs = Vec::new();
    for p in &procs {
        cgroup_procs.push(std::fs::OpenOptions::new().write(true).open(p).map_err(|e| Error::io("open", p, e))?);
    }
    // What the child says if a step fails, made before fork (no allocation after it).
    let cgroup_failed = b"berth: exec: cannot join the container's cgroup\n".to_vec();
    let ns_failed: Vec<Vec<u8>> =
        kinds.iter().map(|(k, _)| format!("berth: exec: cannot join the container's {k} namespace\n").into_bytes()).collect();
    // Prepared here (the filter compiled) so the forked child only makes syscalls.
    let confine = c.spec.security.prepare(Some(&paths.seccomp_cache()))?;
    let user = c.spec.user.clone();
    let mut envs = c.spec.env.clone();
    envs.extend(opts.env.iter().cloned());
    let wd =
        opts.workdir.map(str::to_string).unwrap_or_else(|| if c.spec.workdir.is_empty() { "/".into() } else { c.spec.workdir.clone() });
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]).env_clear();
    for e in &envs {
        if let Some((k, v)) = e.split_once('=') {
            command.env(k, v);
        }
    }
    // SAFETY: only syscalls between fork and exec; the intermediate child waits for the
    // one it forks (which is in the container's pid namespace) and exits with its status.
    unsafe {
        command.pre_exec(move || {
            // A step that fails ends the child with 125 and a line on stderr: never a
            // command run half outside the container.
            let fail = |msg: &[u8]| -> ! {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(125)
            };
            for f in &cgroup_procs {
                if libc::write(std::os::fd::AsRawFd::as_raw_fd(f), b"0".as_ptr().cast(), 1) != 1 {
                    fail(&cgroup_failed);
                }
            }
            for ((f, flag), msg) in fds.iter().zip(&ns_failed) {
                if setns(f, *flag).is_err() {
                    fail(msg);
                }
            }
            if libc::fchdir(std::os::fd::AsRawFd::as_raw_fd(&root)) != 0 || libc::chroot(c".".as_ptr()) != 0 {
                fail(&root_failed);
            }
            nix::unistd::chdir(wd.as_str()).map_err(std::io::Error::from)?;
            match fork().map_err(std::io::Error::from)? {
                // The image's USER and the container's confinement, as for PID 1.
                ForkResult::Child => {
                    let ids = crate::process::init::user_ids(&user).map_err(|(_, m)| std::io::Error::other(m))?;
                    if let Some(sock) = &console {
                        crate::process::console::open_in_container(sock.as_raw_fd(), ids)?;
                    }
                    confine.confine(ids).map_err(|(step, e)| std::io::Error::new(e.kind(), format!("{step}: {e}")))
                }
                ForkResult::Parent { child } => {
                    let code = match waitpid(child, None) {
                        Ok(WaitStatus::Exited(_, c)) => c,
                        Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                        _ => 125,
                    };
                    libc::_exit(code)
                }
            }
        });
    }
    let status = match command.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Start { code: 127, msg: format!("exec: \"{}\": executable file not found in $PATH", cmd[0]) })
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::Start { code: 126, msg: format!("exec: \"{}\": permission denied", cmd[0]) })
        }
        Err(e) => return Err(Error::Start { code: 126, msg: format!("exec: \"{}\": {e}", cmd[0]) }),
    };
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
