//! What runs inside the cloned child before the command: wait for the monitor's go
//! (cgroup and network are ready then), enter the cgroup namespace, build the root,
//! switch user and exec. A failure is reported on a close-on-exec pipe as
//! `<exit code>\t<message>`, so the caller can tell 126/127 from berth's own 125.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{chdir, dup2, execve, read, sethostname, write};

use super::rootfs::{self, Plan};

/// The child's instructions.
#[derive(Debug)]
pub struct InitConfig {
    /// argv.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory (created if missing).
    pub workdir: String,
    /// Hostname, when the container has its own UTS view.
    pub hostname: Option<String>,
    /// Root filesystem plan.
    pub rootfs: Plan,
    /// A netns to join (`container:<x>` mode).
    pub join_netns: Option<OwnedFd>,
    /// `uid[:gid]` or empty.
    pub user: String,
    /// Capabilities, seccomp filter and no_new_privs, prepared before the clone.
    pub confine: crate::security::Prepared,
    /// Its stdout and stderr: the write ends of the pipes its monitor copies into the
    /// log (a detached one's stdin from /dev/null unless `stdin` is set).
    pub output: Option<(OwnedFd, OwnedFd)>,
    /// A foreground run: stdin stays the caller's.
    pub keep_stdin: bool,
    /// A detached container with a terminal (`-t`): the console socket over which PID 1
    /// sends the leader of the pty it makes in its own devpts (see `console`).
    pub console: Option<OwnedFd>,
    /// A detached interactive container's stdin: the FIFO an attached client writes
    /// into (`Container::stdin`), opened before the start so nothing written is lost.
    pub stdin: Option<PathBuf>,
    /// The cgroup files PID 1 writes "0" to when told to start, joining its cgroup
    /// itself (see `Cgroup::tasks_files`); empty when the monitor moves it.
    pub cgroup_tasks: Vec<PathBuf>,
    /// PID 1 reads the monitor's two bytes here: [`CGROUP_READY`], then [`GO`].
    pub sync: OwnedFd,
    /// The monitor's end of the sync socket, closed in the child.
    pub sync_peer: OwnedFd,
    /// Start errors go here.
    pub err: OwnedFd,
}

/// A start failure: exit code and message.
type Fail = (i32, String);

fn fail<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> Fail + '_ {
    move |e| (125, format!("{what}: {e}"))
}

/// Finds `cmd` in the container's PATH (the process is already in the new root).
fn resolve(cmd: &str, env: &[String]) -> Result<PathBuf, Fail> {
    if cmd.contains('/') {
        return if Path::new(cmd).exists() {
            Ok(PathBuf::from(cmd))
        } else {
            Err((127, format!("exec: \"{cmd}\": no such file or directory")))
        };
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
        .ok_or_else(|| (127, format!("exec: \"{cmd}\": executable file not found in $PATH")))
}

/// Resolves `user[:group]` (names or numbers) in the container's /etc/passwd and
/// /etc/group; `None` for an empty user (root).
pub fn user_ids(user: &str) -> Result<Option<(u32, u32)>, Fail> {
    if user.is_empty() {
        return Ok(None);
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        let data = std::fs::read_to_string(file).ok()?;
        data.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.first() != Some(&name) {
                return None;
            }
            Some((f.get(2)?.parse().ok()?, f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0)))
        })
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("/etc/passwd", u).ok_or_else(|| (125, format!("unable to find user {u}: no matching entries in passwd file")))?,
    };
    if !g.is_empty() {
        gid = g
            .parse()
            .or_else(|_| lookup("/etc/group", g).map(|x| x.0).ok_or(()))
            .map_err(|_| (125, format!("unable to find group {g}")))?;
    }
    Ok(Some((uid, gid)))
}

/// The environment with HOME set as Docker sets it when the image and flags do not: the
/// user's home from the container's /etc/passwd, else "/".
pub fn with_home(env: &[String], uid: u32) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|d| {
                d.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.get(2).and_then(|x| x.parse::<u32>().ok()) == Some(uid)).then(|| f.get(5).unwrap_or(&"/").to_string())
                })
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

/// Opens a stdin FIFO for reading without waiting for a writer, then blocking: reads see
/// what an attached client sends, and end of file once no client holds it.
fn open_fifo(p: &Path) -> Result<std::fs::File, Fail> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(p).map_err(fail("open stdin"))?;
    nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).map_err(fail("stdin blocking"))?;
    Ok(f)
}

fn run(cfg: &InitConfig) -> Result<std::convert::Infallible, Fail> {
    // The foreground CLI holds some signals while it starts us: the command gets none held.
    crate::process::sigproxy::release();
    let stdin = cfg.stdin.as_deref().map(open_fifo).transpose()?;
    // Two bytes from the monitor: CGROUP_READY once the cgroup is made (this process
    // then joins it and makes its root while the monitor makes the network), GO once the
    // network is made and the run recorded (then it execs).
    await_byte(cfg, CGROUP_READY)?;
    for t in &cfg.cgroup_tasks {
        std::fs::write(t, "0").map_err(fail("join the cgroup"))?;
    }
    if let Some(fd) = &cfg.join_netns {
        setns(fd, CloneFlags::CLONE_NEWNET).map_err(fail("join network namespace"))?;
    }
    // Entered once we are in our cgroup, so that cgroup is our root.
    unshare(CloneFlags::CLONE_NEWCGROUP).map_err(fail("new cgroup namespace"))?;
    if let Some(h) = &cfg.hostname {
        sethostname(h).map_err(fail("sethostname"))?;
    }
    if let Some((out, err)) = &cfg.output {
        if !cfg.keep_stdin {
            let null = std::fs::File::open("/dev/null").map_err(fail("open /dev/null"))?;
            dup2(stdin.as_ref().map_or(null.as_raw_fd(), |s| s.as_raw_fd()), 0).map_err(fail("dup2"))?;
        }
        dup2(out.as_raw_fd(), 1).map_err(fail("dup2"))?;
        dup2(err.as_raw_fd(), 2).map_err(fail("dup2"))?;
    }
    rootfs::setup(&cfg.rootfs).map_err(|e| (125, e.to_string()))?;
    if !cfg.workdir.is_empty() {
        let _ = std::fs::create_dir_all(&cfg.workdir);
        chdir(cfg.workdir.as_str()).map_err(|e| (125, format!("chdir to {}: {e}", cfg.workdir)))?;
    }
    let ids = user_ids(&cfg.user)?;
    if let Some(sock) = &cfg.console {
        super::console::open_in_container(sock.as_raw_fd(), ids).map_err(fail("make the terminal"))?;
    }
    let env = with_home(&cfg.env, ids.map_or(0, |i| i.0));
    let first = cfg.args.first().ok_or((125, "no command specified".to_string()))?;
    let prog = resolve(first, &env)?;
    let c = |s: &str| CString::new(s).map_err(|_| (125, format!("argument contains NUL: {s:?}")));
    let argv: Vec<CString> = cfg.args.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let prog_c = c(&prog.display().to_string())?;
    await_byte(cfg, GO)?;
    cfg.confine.confine(ids).map_err(|(step, e)| (125, format!("{step}: {e}")))?;
    match execve(&prog_c, &argv, &envp) {
        Err(nix::errno::Errno::EACCES) | Err(nix::errno::Errno::ENOEXEC) => Err((126, format!("exec: \"{first}\": permission denied"))),
        Err(e) => Err((127, format!("exec: \"{first}\": {e}"))),
        Ok(never) => match never {},
    }
}

/// The monitor's byte on the sync socket that says the cgroup is made.
pub const CGROUP_READY: u8 = b'c';
/// The monitor's byte on the sync socket that says to run the command.
pub const GO: u8 = b'g';

/// The monitor's next byte on the sync socket; `None` at end of file (the monitor gave up
/// or died).
fn next_byte(cfg: &InitConfig) -> Option<u8> {
    let mut b = [0u8; 1];
    loop {
        match read(cfg.sync.as_raw_fd(), &mut b) {
            Ok(1) => return Some(b[0]),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Waits for `want` on the sync socket; anything else ends the start.
fn await_byte(cfg: &InitConfig, want: u8) -> Result<(), Fail> {
    match next_byte(cfg) {
        Some(b) if b == want => Ok(()),
        _ => Err((125, "monitor went away before start".into())),
    }
}

/// The child's entry point; returns only on failure, with the exit code.
pub fn child_main(cfg: &InitConfig) -> isize {
    // Our copy of the monitor's end must go, or a dead monitor would never be noticed.
    let _ = nix::unistd::close(cfg.sync_peer.as_raw_fd());
    match run(cfg) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            let _ = write(&cfg.err, format!("{code}\t{msg}").as_bytes());
            // Failed before the monitor said GO (making the root while the monitor makes
            // the network): stay until it does or gives up, so that the namespaces it is
            // setting up still exist and its next read is this error, not theirs.
            while next_byte(cfg).is_some_and(|b| b != GO) {}
            code as isize
        }
    }
}

/// Reads a start failure reported by the child; `None` means the exec succeeded.
pub fn read_failure(fd: RawFd) -> Option<(i32, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match read(fd, &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if buf.is_empty() {
        return None;
    }
    let s = String::from_utf8_lossy(&buf).to_string();
    let (code, msg) = s.split_once('\t').unwrap_or(("125", &s));
    Some((code.parse().unwrap_or(125), msg.to_string()))
}
