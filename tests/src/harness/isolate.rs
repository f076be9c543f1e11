//! Re-executes the current test in a child that unshares net and mnt namespaces.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

const INNER: &str = "BERTH_TEST_ISOLATED";

/// Directories that get a private tmpfs in every test "host".
pub const STATE_DIRS: &[&str] = &["/run/netns", "/var/lib/cni", "/run/cni", "/run/berth", "/var/lib/berth"];

/// Runs `body` as the only process of a fresh "host": new netns (only `lo`, up), new mount
/// ns with tmpfs over the state dirs. Outside, re-execs this test binary for this one
/// test inside `unshare(NEWNET|NEWNS)` and fails if the child fails.
pub fn isolated(body: impl FnOnce()) {
    if std::env::var(INNER).as_deref() == Ok("1") {
        setup_inside();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        kill_containers();
        if let Err(p) = res {
            std::panic::resume_unwind(p);
        }
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        panic!("integration tests need root (network namespaces, iptables); run them as root");
    }
    let name = std::thread::current()
        .name()
        .map(str::to_string)
        .filter(|n| n != "main")
        .expect("test thread has no name; run under cargo test or nextest");
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([name.as_str(), "--exact", "--include-ignored", "--nocapture", "--test-threads=1"]).env(INNER, "1");
    // SAFETY: unshare is async-signal-safe and runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from));
    }
    let out = cmd.output().expect("spawn isolated test");

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ran = stdout.contains("1 passed");
    if !out.status.success() || !ran {
        panic!("isolated test {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    }
    // Skips are printed, never silent; so are the figures a test reports. Written to the
    // stderr descriptor itself: libtest captures `eprintln!` of a passing test, so CI's
    // log would not show them. (The test's own output may follow libtest's "test NAME
    // ... " on the same line.)
    let mut err = std::io::stderr().lock();
    for line in stdout.lines().chain(stderr.lines()) {
        if let Some(at) = line.find("SKIP ").or_else(|| line.find("REPORT ")) {
            let _ = writeln!(err, "{}", &line[at..]);
        }
    }
}

/// For benchmark mains: runs `body` in a fresh private "host" like [`isolated`], by
/// re-executing the current program with the same arguments inside new namespaces.
pub fn isolated_main(body: impl FnOnce()) {
    if std::env::var(INNER).as_deref() == Ok("1") {
        setup_inside();
        body();
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(INNER, "1");
    // SAFETY: as in `isolated`.
    unsafe {
        cmd.pre_exec(|| unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from));
    }
    let st = cmd.status().expect("spawn isolated main");
    std::process::exit(st.code().unwrap_or(1));
}

/// Kills what berth containers and netd a test left running (they outlive the test process),
/// so nothing of a test survives it, passed or failed. Only processes that are still the
/// ones recorded: tests run side by side and PIDs are reused (pid_max is 32768 here), so a
/// dead netd's pid file or an exited container's record may name another test's process.
fn kill_containers() {
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    };
    // A netd of this test: one in this test's mount namespace.
    let mnt = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    if let Some(pid) = std::fs::read_to_string("/run/berth/netd.pid").ok().and_then(|p| p.trim().parse::<i32>().ok()) {
        if mnt(&pid.to_string()).is_some_and(|m| Some(m) == mnt("self")) {
            kill(pid);
        }
    }
    let Ok(rd) = std::fs::read_dir("/var/lib/berth/containers") else { return };
    for e in rd.flatten() {
        let Ok(data) = std::fs::read(e.path().join("container.json")) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) else { continue };
        for (key, start) in [("monitor_pid", "monitor_start"), ("pid", "pid_start")] {
            let (Some(pid), Some(started)) = (v["state"][key].as_i64(), v["state"][start].as_u64()) else { continue };
            if netd::proc::same_process(pid as i32, Some(started)) {
                kill(pid as i32);
            }
        }
        let id = e.file_name().to_string_lossy().to_string();
        std::thread::sleep(std::time::Duration::from_millis(20));
        for ctrl in ["memory", "pids", "cpu", "devices", "freezer", ""] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}/berth/{id}").replace("//", "/"));
        }
    }
}

fn setup_inside() {
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).expect("make mounts private");
    for d in STATE_DIRS {
        std::fs::create_dir_all(d).expect("create state dir");
        mount(Some("tmpfs"), *d, Some("tmpfs"), MsFlags::empty(), Some("mode=755")).expect("mount tmpfs");
    }
    // /sys must show this netns's links (ip and sysctl paths rely on it), while the
    // cgroup hierarchies mounted under it stay reachable for the runtime.
    let keep = "/run/berth/.cgroup-keep";
    std::fs::create_dir_all(keep).expect("keep dir");
    mount(Some("/sys/fs/cgroup"), keep, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).expect("bind cgroups aside");
    mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::empty(), None::<&str>).expect("mount sysfs");
    mount(Some(keep), "/sys/fs/cgroup", None::<&str>, MsFlags::MS_MOVE, None::<&str>).expect("move cgroups back");
    super::sh("ip link set lo up");
}
