//! Signals for a foreground `run`, as `docker run`'s default `--sig-proxy`: while the
//! container starts, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are held
//! (blocked), so a start is never cut half-way, leaving state behind; once PID 1 runs
//! they are forwarded to it, and berth stays to record the exit and clean up (`--rm`).

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

/// PID 1 of the container the signals go to (0: none yet).
static TARGET: AtomicI32 = AtomicI32::new(0);

const PROXIED: [Signal; 6] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in PROXIED {
        s.add(sig);
    }
    s
}

/// Holds the proxied signals until [`forward_to`] or [`release`].
pub fn hold() {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), None);
}

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Forwards the proxied signals to `pid` from now on (those held meanwhile first).
pub fn forward_to(pid: i32) {
    TARGET.store(pid, Ordering::Relaxed);
    let action = SigAction::new(SigHandler::Handler(forward), SaFlags::SA_RESTART, SigSet::empty());
    for sig in PROXIED {
        // SAFETY: the handler only calls kill(2) with an atomic's value.
        let _ = unsafe { sigaction(sig, &action) };
    }
    release();
}

/// Lets held signals through with their default actions (a start that failed, after its
/// clean-up), and unblocks them in a child before it execs the container's command.
pub fn release() {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set()), None);
}
