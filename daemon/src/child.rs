//! Child processes of the engine. Those that do the caller's work (iptables-restore,
//! delegated CNI plugins) die with the process that started them: otherwise a plugin
//! killed mid-operation leaves a child that finishes the work after the runtime's clean-up
//! DEL has already run. Those that only sit out the kernel's clean-up behind finished work
//! ([`detached`]) outlive it on purpose.

use std::ffi::{CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

/// Where one of the child's output streams goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// The caller's own stream (a plugin's log lines reach the runtime's stderr).
    Inherit,
    /// /dev/null.
    Null,
    /// Read back and returned by [`run`]; at most one stream may be captured.
    Capture,
}

/// A program that [`run`] runs to completion, dying with its caller.
#[derive(Debug)]
pub struct Run<'a> {
    /// The program, by path (no PATH search).
    pub program: &'a Path,
    /// Arguments after `argv[0]`, which is `program`.
    pub args: &'a [&'a OsStr],
    /// Variables set on top of the caller's environment.
    pub env: &'a [(&'a str, &'a OsStr)],
    /// Written to the child's stdin, then closed.
    pub stdin: &'a [u8],
    /// The child's stdout.
    pub stdout: Out,
    /// The child's stderr.
    pub stderr: Out,
}

/// What [`run`]'s child ended with.
#[derive(Debug)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// The captured stream (empty if none was).
    pub captured: Vec<u8>,
}

/// What the vfork child needs, prepared by the parent: the child may only make raw system
/// calls on memory that exists before the clone.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// Descriptors for 0, 1, 2; -1 keeps the caller's.
    fds: [RawFd; 3],
    parent: libc::pid_t,
    /// The errno of the step that failed in the child (0: it exec'd).
    err: libc::c_int,
}

/// Runs `r.program` and waits for it. The child gets SIGKILL when the calling thread dies,
/// so work done for a caller cannot outlive it. It is started the way posix_spawn starts
/// one (`clone(CLONE_VM | CLONE_VFORK)`; std's Command must `fork` to arm the death
/// signal), so the cost does not grow with the caller's memory: a fork from a 30 MB
/// process costs about 1 ms more per exec.
pub fn run(r: &Run) -> io::Result<Output> {
    if r.stdout == Out::Capture && r.stderr == Out::Capture {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "only one of stdout and stderr can be captured"));
    }
    let cstr =
        |b: &[u8]| CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a program, argument or variable"));
    let program = cstr(r.program.as_os_str().as_bytes())?;
    let mut argv_s = vec![program.clone()];
    for a in r.args {
        argv_s.push(cstr(a.as_bytes())?);
    }
    let mut env_s = Vec::new();
    for (k, v) in std::env::vars_os() {
        if !r.env.iter().any(|(o, _)| OsStr::new(o) == k) {
            env_s.push(cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in r.env {
        env_s.push(cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
    }
    let argv: Vec<*const libc::c_char> = argv_s.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp: Vec<*const libc::c_char> = env_s.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    // Opened only for a stream that uses it: this runs on every plugin exec.
    let uses = |o: Out| r.stdout == o || r.stderr == o;
    let devnull =
        if uses(Out::Null) { Some(above_stdio(OpenOptions::new().read(true).write(true).open("/dev/null")?.into())?) } else { None };
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = if uses(Out::Capture) { pipe().map(|(r, w)| (Some(r), Some(w)))? } else { (None, None) };
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
    let target = |o: Out| match o {
        Out::Inherit => -1,
        Out::Null => raw(&devnull),
        Out::Capture => raw(&out_w),
    };
    let mut args = ChildArgs {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        fds: [in_r.as_raw_fd(), target(r.stdout), target(r.stderr)],
        // SAFETY: getpid cannot fail.
        parent: unsafe { libc::getpid() },
        err: 0,
    };
    let mut stack = vec![0u64; 4096];
    // SAFETY: the stack outlives the child's use of it (CLONE_VFORK suspends this thread
    // until the child execs or exits); `args` and everything it points to live until then;
    // signals are blocked across the clone so no handler of this process runs on the
    // child's stack, and the child resets them before unblocking.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.len()) as *mut libc::c_void;
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut args as *mut ChildArgs as *mut libc::c_void,
        );
        let e = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(e);
        }
        pid
    };
    drop((in_r, out_w, devnull));
    if args.err != 0 {
        wait(pid)?;
        return Err(io::Error::from_raw_os_error(args.err));
    }
    let mut input = File::from(in_w);
    let wrote = match input.write_all(r.stdin) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    };
    drop(input);
    let mut captured = Vec::new();
    let read = out_r.map_or(Ok(0), |f| File::from(f).read_to_end(&mut captured));
    let status = wait(pid)?;
    wrote?;
    read?;
    Ok(Output { status, captured })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors on success; each is then owned once.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        let (r, w) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
        Ok((above_stdio(r)?, above_stdio(w)?))
    }
}

/// `fd`, or a copy numbered 3 or more where the caller runs with 0, 1 or 2 closed: the
/// child's dup2 onto 0..2 must not overwrite a descriptor it has yet to copy.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that is owned once.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn wait(pid: libc::pid_t) -> io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only `status`.
        if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The vfork child: default signal handlers, the death signal, stdio, exec. It shares the
/// caller's memory, so it only makes system calls and writes `err` for the parent.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's ChildArgs, alive and untouched while it is suspended.
    unsafe {
        let a = &mut *(arg as *mut ChildArgs);
        let mut sa: libc::sigaction = std::mem::zeroed();
        for sig in 1..=libc::SIGRTMAX() {
            if libc::sigaction(sig, std::ptr::null(), &mut sa) == 0
                && ((sa.sa_sigaction != libc::SIG_DFL && sa.sa_sigaction != libc::SIG_IGN) || sig == libc::SIGPIPE)
            {
                sa.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        let fail = |a: &mut ChildArgs, err: libc::c_int| -> ! {
            a.err = err;
            libc::_exit(127)
        };
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(a, *libc::__errno_location());
        }
        // The parent may already be gone, before the death signal was armed.
        if libc::getppid() != a.parent {
            fail(a, libc::ESRCH);
        }
        for (i, &fd) in a.fds.iter().enumerate() {
            let i = i as RawFd;
            if fd >= 0 && libc::dup2(fd, i) != i {
                fail(a, *libc::__errno_location());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(a.program, a.argv, a.envp);
        fail(a, *libc::__errno_location())
    }
}

/// Runs `body` in a detached grandchild that holds only the descriptors in `keep` (its
/// stdio on /dev/null), in a session of its own, SIGPIPE ignored: nobody waits for it or
/// reaps it, and a runtime reading the caller's stdout to its end is not held up by it.
/// For work whose result the caller already has but whose system call has not returned
/// (the kernel's clean-up after a deleted link or nf_tables object). Returns once the
/// intermediate child is reaped; if the grandchild cannot be forked, the intermediate runs
/// `body` itself and this waits for it.
///
/// # Safety
/// `body` runs between fork and `_exit` in a copy of a possibly multi-threaded process: it
/// must make only async-signal-safe calls (raw system calls) on memory that exists before
/// this call.
pub unsafe fn detached(keep: &[RawFd], body: impl FnOnce()) -> io::Result<()> {
    let devnull = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let null = devnull.as_raw_fd();
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let pid = libc::fork();
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        if libc::fork() > 0 {
            libc::_exit(0);
        }
        libc::setsid();
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        let mut first = 3;
        for &fd in &keep {
            close_range(first, fd - 1);
            first = first.max(fd + 1);
        }
        close_range(first, libc::c_int::MAX);
        body();
        libc::_exit(0);
    }
    let mut status = 0;
    // An error (a SIGCHLD handler reaped it already) is harmless.
    libc::waitpid(pid, &mut status, 0);
    Ok(())
}

/// Closes descriptors `first..=last`; nothing if the range is empty or the kernel is older
/// than close_range (the grandchild then holds a few descriptors longer).
unsafe fn close_range(first: RawFd, last: RawFd) {
    if first <= last {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0 as libc::c_uint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, env: &[(&str, &OsStr)], stdin: &[u8], stdout: Out, stderr: Out) -> io::Result<Output> {
        let args = [OsStr::new("-c"), OsStr::new(script)];
        run(&Run { program: Path::new("/bin/sh"), args: &args, env, stdin, stdout, stderr })
    }

    #[test]
    fn stdin_environment_and_exit_status_reach_the_caller() {
        let env = [("BERTH_CHILD_SET", OsStr::new("set")), ("HOME", OsStr::new("overridden"))];
        let script = "printf '%s %s ' \"$BERTH_CHILD_SET\" \"$HOME\"; cat; echo noise >&2; exit 3";
        let out = sh(script, &env, b"from stdin", Out::Capture, Out::Null).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.captured), "set overridden from stdin");
        assert_eq!(out.status.code(), Some(3));
        let out = sh("printf %s \"$PATH\" >&2", &[], b"", Out::Null, Out::Capture).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.captured), std::env::var("PATH").unwrap_or_default());
    }

    #[test]
    fn a_large_input_ignored_by_the_child_is_not_an_error() {
        let out = sh("exit 0", &[], &vec![b'x'; 1 << 20], Out::Null, Out::Null).unwrap();
        assert!(out.status.success());
    }

    #[test]
    fn the_child_starts_with_default_signal_handling() {
        // SIGPIPE is ignored in Rust programs; the child must not inherit that, nor the
        // mask that was set across the clone.
        let out = sh("grep -E '^(SigIgn|SigBlk)' /proc/self/status", &[], b"", Out::Capture, Out::Null).unwrap();
        let text = String::from_utf8_lossy(&out.captured);
        let mask =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(|v| u64::from_str_radix(v.trim(), 16).unwrap()).unwrap();
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
        assert_eq!(mask("SigBlk:"), 0, "{text}");
    }

    #[test]
    fn a_missing_program_is_an_error_and_leaves_no_child() {
        let missing = Run {
            program: Path::new("/nonexistent/berth-plugin"),
            args: &[],
            env: &[],
            stdin: b"",
            stdout: Out::Capture,
            stderr: Out::Null,
        };
        let e = run(&missing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let both = Run { program: Path::new("/bin/true"), args: &[], env: &[], stdin: b"", stdout: Out::Capture, stderr: Out::Capture };
        assert_eq!(run(&both).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
