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
        let mut pids = Vec::new();
        for id in &ids {
            let rec: serde_json::Value =
                serde_json::from_slice(&std::fs::read(format!("/var/lib/berth/containers/{id}/container.json")).unwrap()).unwrap();
            for k in ["monitor_pid", "pid"] {
                if let Some(p) = rec["state"][k].as_i64() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
                    pids.push(p);
                }
            }
        }
        // netd too (started for the user network): its pid file goes with /run below.
        if let Some(p) = std::fs::read_to_string("/run/berth/netd.pid").ok().and_then(|p| p.trim().parse::<i64>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
            pids.push(p);
        }
        // (Other tests share the PID namespace: only these processes are waited for.)
        wait_for("the containers' processes to go", || pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()));
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

/// The runtime inside a chroot (a Debian root with /proc mounted, /sys and /dev bound, as
/// some CI runners and build hosts run): exec runs in the container's namespaces and
/// cgroup, and limits hold — or berth refuses with one line; never an exec outside the
/// container, never a container without its limits. The root is the host's /usr and /etc
/// bound read-only (an equivalent of debootstrap without a mirror).
#[test]
fn the_runtime_inside_a_chroot_confines_or_refuses() {
    isolated(|| {
        let r = "/run/berth/chroot";
        sh(&format!(
            "mkdir -p {r}/usr {r}/etc {r}/proc {r}/sys {r}/dev {r}/tmp {r}/run/berth {r}/run/netns {r}/var/lib/berth {r}/var/lib/cni {r}/berth \
             && for l in bin sbin lib lib64; do ln -s usr/$l {r}/$l; done \
             && mount --bind /usr {r}/usr && mount -o remount,bind,ro {r}/usr \
             && mount --bind /etc {r}/etc && mount -o remount,bind,ro {r}/etc \
             && mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys && mount --rbind /dev {r}/dev \
             && mount -t tmpfs tmpfs {r}/tmp && mount --bind {} {r}/berth",
            bin_dir().display()
        ));
        let tar = berth_tests::harness::image::busybox_tar("chroot");
        sh(&format!("cp {} {r}/tmp/bb.tar", tar.display()));
        let b = |args: &str| try_sh(&format!("chroot {r} /berth/berth {args} 2>&1"));
        assert!(b("import /tmp/bb.tar busybox").0, "import in the chroot");
        // A plain chroot: "/" is no mount point, pivot_root cannot work; one line says so
        // and what to do, and nothing is left.
        let (ok, out) = b("run -d --name c --memory 64m --pids-limit 20 busybox sleep 1000");
        assert!(!ok && out.trim().lines().count() == 1 && out.contains("mount --rbind DIR DIR"), "{out}");
        assert!(b("ps -a -q").1.trim().is_empty(), "a refused run left a record");
        assert_eq!(sh("ip -o link show type veth | wc -l").trim(), "0");
        // Done as it says (the chroot directory a mount point), berth works and confines.
        sh(&format!("mount --rbind {r} {r}"));
        let (ok, out) = b("run -d --name c --memory 64m --pids-limit 20 busybox sleep 1000");
        assert!(ok, "{out}");
        let id = out.trim().to_string();
        // exec: the container's UTS and mount namespaces, its cgroup.
        let (ok, host) = b("exec c hostname");
        assert!(ok && host.trim() == &id[..12], "exec's hostname {host:?}, the container's is {}", &id[..12]);
        let (_, root) = b("exec c ls /");
        assert!(!root.contains("berth") && root.contains("www"), "exec does not see the container's root: {root}");
        let (_, limit) = b("exec c sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'");
        assert_eq!(limit.trim(), "67108864", "exec outside the container's memory cgroup");
        let (_, pids) = b("exec c sh -c 'cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max'");
        assert_eq!(pids.trim(), "20");
        assert!(b("rm -f c").0);
        println!("\nREPORT berth in a chroot: exec confined (hostname, root, memory and pids cgroups)");
    });
}

/// Every fault point (`netd::fault::POINTS`), each hit once: the operation dies there as
/// under SIGKILL, the next command (DEL, `rm -f`) repairs, nothing is left, and the same
/// name and port work again.
#[test]
fn every_fault_point_is_repaired_by_the_next_command() {
    use berth_tests::harness::net::{allocations, conflist, links, rt, rules, runner};
    isolated(|| {
        import_busybox("page");
        let (run, list) = (runner(), conflist("1.0.0"));
        let _w = berth_tests::harness::Netns::new("w");
        run.add(&list, &rt("w", "/run/netns/w", &[])).unwrap();
        let _k = berth_tests::harness::Netns::new("k");
        let cfg = rt("k", "/run/netns/k", &[(4700, 80, "tcp", "")]);
        let base = (rules(), links(), allocations());
        let fault = |p: Option<&str>| match p {
            Some(p) => std::env::set_var("BERTH_FAULT", p),
            None => std::env::remove_var("BERTH_FAULT"),
        };
        let mut visited = Vec::new();
        // The engine's points, through the CNI plugins: ADD dies at the ADD points, DEL
        // at the DEL points; one more DEL repairs.
        for p in ["ipam-allocated", "wire-attached", "wire-held", "publish-claimed", "publish-recorded"] {
            fault(Some(p));
            assert!(run.add(&list, &cfg).is_err(), "ADD did not die at {p}");
            fault(None);
            run.del(&list, &cfg, None).unwrap();
            assert_eq!((rules(), links(), allocations()), base, "left after ADD died at {p} and DEL");
            assert_eq!(claims(), "", "claim left after ADD died at {p}");
            visited.push(p);
        }
        for p in ["unpublish-removed", "unwire-detached"] {
            let res = run.add(&list, &cfg).unwrap();
            fault(Some(p));
            assert!(run.del(&list, &cfg, Some(&res)).is_err(), "DEL did not die at {p}");
            fault(None);
            run.del(&list, &cfg, Some(&res)).unwrap();
            assert_eq!((rules(), links(), allocations()), base, "left after DEL died at {p} and DEL");
            assert_eq!(claims(), "", "claim left after DEL died at {p}");
            visited.push(p);
        }
        run.del(&list, &rt("w", "/run/netns/w", &[]), None).unwrap();
        // The runtime's points: run, stop and rm die there (the reaper's points fire when
        // the container exits: the monitor inherits the fault), `rm -f` repairs.
        let ps = |p: &str, args: &[&str]| {
            let o = Command::new(bin_dir().join("berth")).args(args).env("BERTH_FAULT", p).output().unwrap();
            o.status.code()
        };
        for p in [
            "run-created",
            "start-cgroup",
            "start-network",
            "start-recorded",
            "stop-signalled",
            "rm-released",
            "reap-cgroup",
            "reap-network",
        ] {
            let code = ps(p, RUN);
            // Its ID from the store, not `ps` (which would repair before `rm -f` does).
            let id = sh("ls /var/lib/berth/containers | grep -v '^[.]' || true").trim().to_string();
            match p {
                "stop-signalled" | "rm-released" => {
                    assert_eq!(code, Some(0), "run with {p}");
                    let args: &[&str] = if p == "stop-signalled" { &["stop", "-t", "1", "k"] } else { &["rm", "-f", "k"] };
                    assert_eq!(ps(p, args), None, "{args:?} did not die at {p}");
                }
                "reap-cgroup" | "reap-network" => assert_eq!(code, Some(0), "run with {p}"),
                _ => assert_ne!(code, Some(0), "run did not die at {p}"),
            }
            let o = berth(&["rm", "-f", "k"]);
            assert!(o.code == 0 || o.stderr.contains("no such container"), "rm -f after {p}: {}", o.stderr);
            let ctx = format!("after a fault at {p} and rm -f");
            wait_for(&format!("the veth to go {ctx}"), || veths() == 0);
            assert_eq!(bridge_allocations(), 0, "address left {ctx}");
            assert_eq!(claims(), "", "port claim left {ctx}");
            assert!(!fw::mentions("172.17.0."), "firewall state left {ctx}:\n{}", fw::dump());
            assert!(berth(&["ps", "-a", "-q"]).stdout.trim().is_empty(), "record left {ctx}");
            if !id.is_empty() {
                wait_for(&format!("the cgroups to go {ctx}"), || {
                    sh(&format!("find /sys/fs/cgroup -maxdepth 4 -type d -name '{id}*' 2>/dev/null | head -1")).trim().is_empty()
                });
            }
            berth(RUN).ok();
            wait_for(&format!("the port {ctx}"), || try_sh(&curl("http://127.0.0.1:4500/")).1 == "page");
            berth(&["rm", "-f", "k"]).ok();
            visited.push(p);
        }
        let missed: Vec<_> = netd::fault::POINTS.iter().filter(|p| !visited.contains(p)).collect();
        assert!(missed.is_empty(), "fault points never visited: {missed:?}");
        println!("\nREPORT {} fault points, each repaired by the next command", visited.len());
    });
}
