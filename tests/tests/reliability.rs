//! What a kill, a crash or a reboot leaves behind is found and released by the next
//! command: `berth run`, `stop` and `rm` killed at random points, then the same name and
//! port again; a reboot (/run emptied, /var/lib kept, every process and link gone).

use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::harness::berth::{berth, bridge_allocations, import_busybox, inspect};
use berth_tests::harness::{bin_dir, curl, fw, isolated, sh, try_sh, wait_for};

fn veths() -> usize {
    sh("ip -o link show type veth | wc -l").trim().parse().unwrap_or(usize::MAX)
}

fn claims() -> String {
    sh("ls /run/berth/ports 2>/dev/null | grep -v lock || true").trim().to_string()
}

/// A pseudo-random delay in `0..max_ms` ms (xorshift, seeded per test run).
fn delays(seed: u64) -> impl Iterator<Item = Duration> {
    let mut x = seed | 1;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(Duration::from_micros(x % 60_000))
    })
}

/// Starts `berth ARGS` and SIGKILLs (or SIGTERMs) it after `after`.
fn killed(args: &[&str], after: Duration, term: bool) {
    let mut c = Command::new(bin_dir().join("berth"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let sig = if term { nix::sys::signal::Signal::SIGTERM } else { nix::sys::signal::Signal::SIGKILL };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
    let _ = c.wait();
}

const RUN: &[&str] = &["run", "-d", "--name", "k", "-p", "4500:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"];

/// Kills `run`, `stop` and `rm -f` at `n` random points each; after each, `rm -f` (the next
/// command) must leave nothing and the same name and port must run again.
fn kills(n: usize, seed: u64) {
    isolated(|| {
        import_busybox("page");
        let mut d = delays(seed);
        let mut done = 0;
        for i in 0..n {
            let (what, term) = match i % 4 {
                0 => ("run", false),
                1 => ("run", true),
                2 => ("stop", false),
                _ => ("rm", false),
            };
            match what {
                "run" => killed(RUN, d.next().unwrap(), term),
                other => {
                    berth(RUN).ok();
                    let args: &[&str] = if other == "stop" { &["stop", "-t", "1", "k"] } else { &["rm", "-f", "k"] };
                    killed(args, d.next().unwrap(), false);
                }
            }
            // The next command cleans up whatever the kill left.
            let o = berth(&["rm", "-f", "k"]);
            assert!(o.code == 0 || o.stderr.contains("no such container"), "rm after a killed {what}: {}", o.stderr);
            let ctx = format!("after a killed {what} (#{i})");
            wait_for(&format!("the veth to go {ctx}"), || veths() == 0);
            assert_eq!(bridge_allocations(), 0, "address left {ctx}");
            assert_eq!(claims(), "", "port claim left {ctx}");
            assert!(!fw::mentions("172.17.0."), "firewall state left {ctx}:\n{}", fw::dump());
            assert!(!berth(&["ps", "-a"]).ok().contains(" k"), "record left {ctx}");
            done += 1;
        }
        // And the same name and port serve again.
        berth(RUN).ok();
        wait_for("the port after the kills", || try_sh(&curl("http://127.0.0.1:4500/")).1 == "page");
        berth(&["rm", "-f", "k"]).ok();
        println!("\nREPORT {done} kills of run/stop/rm (SIGKILL, SIGTERM), nothing left after any");
    });
}

#[test]
fn run_stop_and_rm_killed_at_random_points_leave_nothing() {
    kills(16, Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64);
}

#[test]
#[ignore = "long form: 240 kills"]
fn run_stop_and_rm_killed_240_times() {
    kills(240, std::process::id() as u64);
}

#[test]
fn a_reboot_releases_what_containers_that_no_longer_run_held() {
    isolated(|| {
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        berth(&["run", "-d", "--name", "a", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        berth(&["run", "-d", "--name", "b", "--net", "app", "-p", "4001:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        berth(&["run", "-d", "--name", "c", "busybox", "sleep", "1000"]).ok();
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|n| inspect(n)["Id"].as_str().unwrap().to_string()).collect();
        // The reboot: every process gone, links and firewall gone, /run empty.
        for id in &ids {
            let rec: serde_json::Value =
                serde_json::from_slice(&std::fs::read(format!("/var/lib/berth/containers/{id}/container.json")).unwrap()).unwrap();
            for k in ["monitor_pid", "pid"] {
                if let Some(p) = rec["state"][k].as_i64() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        wait_for("the containers' processes to go", || !sh("ps -eo comm").lines().any(|l| l.trim() == "httpd" || l.trim() == "sleep"));
        for l in sh("ip -o link show type bridge | cut -d: -f2").lines() {
            sh(&format!("ip link del {}", l.trim()));
        }
        sh("nft flush ruleset");
        sh("umount -l /run/berth && mount -t tmpfs tmpfs /run/berth && umount -l /run/netns && mount -t tmpfs tmpfs /run/netns");
        // The first command after the reboot.
        let ps = berth(&["ps", "-a"]).ok();
        for n in ["a", "b", "c"] {
            let line =
                ps.lines().find(|l| l.trim_end().ends_with(&format!(" {n}"))).unwrap_or_else(|| panic!("{n} missing from ps -a:\n{ps}"));
            assert!(line.contains("Exited"), "{n} not shown exited:\n{ps}");
        }
        assert_eq!(bridge_allocations(), 0, "addresses of the default network still allocated");
        let app = sh("ls /var/lib/berth/ipam/app | grep -E '^10\\.' || true");
        assert!(app.trim().is_empty(), "addresses of app still allocated: {app}");
        for id in &ids {
            let left = sh(&format!("find /sys/fs/cgroup -maxdepth 4 -type d -name '{id}*' 2>/dev/null | head -3"));
            assert!(left.trim().is_empty(), "cgroups left for {id}: {left}");
        }
        // The same names and ports again.
        for n in ["a", "b", "c"] {
            berth(&["rm", n]).ok();
        }
        berth(&["run", "-d", "--name", "a", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        berth(&["run", "-d", "--name", "b", "--net", "app", "-p", "4001:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        let t = Instant::now();
        for port in [4000, 4001] {
            wait_for(&format!("port {port} after the reboot"), || try_sh(&curl(&format!("http://127.0.0.1:{port}/"))).1 == "page");
        }
        println!("\nREPORT after a reboot: all released by the first command; served again {:?} after the first run", t.elapsed());
        berth(&["rm", "-f", "a", "b"]).ok();
    });
}
