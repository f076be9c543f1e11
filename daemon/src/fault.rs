//! Fault points: named places where a debug build dies on request, exactly as a SIGKILL
//! there would, so tests can prove that the next command (DEL, `rm`, GC) repairs what an
//! operation left half-done. `BERTH_FAULT=NAME` picks the point; release builds ignore it.
//! Delay points ([`delay`], `BERTH_DELAY=NAME:MS`) make one side of a race lose it.

/// Every fault point, for tests that visit them all.
pub const POINTS: &[&str] = &[
    "ipam-allocated",
    "wire-attached",
    "wire-held",
    "publish-claimed",
    "publish-recorded",
    "unpublish-removed",
    "unwire-detached",
    "run-created",
    "start-cgroup",
    "start-network",
    "start-recorded",
    "stop-signalled",
    "rm-released",
    "reap-cgroup",
    "reap-network",
];

/// Dies here (SIGKILL to itself) if this debug build was told to with `BERTH_FAULT`.
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("BERTH_FAULT").is_some_and(|v| v == name) {
        // SAFETY: raise has no preconditions; SIGKILL cannot be caught.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Waits here for MS milliseconds if this debug build was told to with
/// `BERTH_DELAY=NAME:MS`, so a test can make one side of a race lose it.
pub fn delay(name: &str) {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("BERTH_DELAY").ok().and_then(|v| v.strip_prefix(name)?.strip_prefix(':')?.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
