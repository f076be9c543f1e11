//! `berth run` end to end: published ports, network modes, PID 1 and signals, limits,
//! /etc files, exec, bad input, concurrency, image loading.

use std::time::{Duration, Instant};

use berth_tests::harness::berth::{berth, berth_env, bridge_allocations, cgroup_dirs, import_busybox, inspect};
use berth_tests::harness::net::rules;
use berth_tests::harness::peer::{HOST_IP, PEER_IP};
use berth_tests::harness::{curl, image, isolated, sh, try_sh, wait_for, OtherHost};

const PAGE: &str = "hello from berth";

fn veths() -> usize {
    sh("ip -o link show master docker0 2>/dev/null || true").lines().count()
}

/// Kills container `name`'s monitor and PID 1 the hard way, as a crash would; returns its
/// ID and its record as it was.
fn crash(name: &str) -> (String, serde_json::Value) {
    let id = inspect(name)["Id"].as_str().unwrap().to_string();
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("/var/lib/berth/containers/{id}/container.json")).unwrap()).unwrap();
    for k in ["monitor_pid", "pid"] {
        sh(&format!("kill -9 {}", rec["state"][k]));
    }
    (id, rec)
}

/// Host port 4000 is free: a new container `name` publishes it and serves the page.
fn port_4000_serves_again(name: &str) {
    berth(&["run", "-d", "--name", name, "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
    wait_for("the page again", || try_sh(&curl("http://127.0.0.1:4000/")).1 == PAGE);
    berth(&["rm", "-f", name]).ok();
}

#[test]
fn published_web_server_answers_and_stop_rm_clean_up() {
    isolated(|| {
        let other = OtherHost::new();
        import_busybox(PAGE);
        let id = berth(&["run", "-d", "--name", "web", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        assert_eq!(id.trim().len(), 64);
        wait_for("the page on 127.0.0.1:4000", || try_sh(&curl("http://127.0.0.1:4000/")).1 == PAGE);
        assert_eq!(other.ns.sh(&curl(&format!("http://{HOST_IP}:4000/"))), PAGE);
        let info = inspect("web");
        assert_eq!(info["State"]["Status"], "running");
        assert_eq!(info["NetworkSettings"]["IPAddress"], "172.17.0.2");
        assert_eq!(info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], "4000");
        // Docker's shape: the address per network, as `docker inspect -f '{{range ...}}'` reads it.
        assert_eq!(info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "172.17.0.2");
        assert_eq!(info["NetworkSettings"]["Networks"]["bridge"]["Gateway"], "172.17.0.1");
        assert_eq!(berth(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"]).ok().trim(), "172.17.0.2");
        assert_eq!(berth(&["port", "web"]).ok().trim(), "80/tcp -> 0.0.0.0:4000");
        assert!(berth(&["ps"]).ok().contains("web"));
        assert_eq!((veths(), bridge_allocations()), (1, 1));
        berth(&["stop", "-t", "1", "web"]).ok();
        assert_eq!(inspect("web")["State"]["Status"], "exited");
        assert_eq!((veths(), bridge_allocations()), (0, 0), "veth or address left after stop");
        assert!(!berth_tests::harness::fw::mentions("172.17.0.2"), "rules left after stop");
        assert!(!try_sh(&curl("http://127.0.0.1:4000/")).0, "port still answers");
        assert!(!berth(&["ps"]).ok().contains("web"));
        assert!(berth(&["ps", "-a"]).ok().contains("web"));
        berth(&["rm", "web"]).ok();
        assert!(!berth(&["ps", "-a"]).ok().contains("web"));
        // rm -f of a running container cleans up too
        berth(&["run", "-d", "--name", "web2", "-p", "4001:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        wait_for("web2", || try_sh(&curl("http://127.0.0.1:4001/")).1 == PAGE);
        berth(&["rm", "-f", "web2"]).ok();
        assert_eq!((veths(), bridge_allocations()), (0, 0), "veths, addresses left after rm -f");
        assert!(!berth_tests::harness::fw::mentions("172.17.0.3") && berth_tests::harness::fw::network_rules("172.17.0.0/16") == 0);
    });
}

#[test]
fn network_modes() {
    isolated(|| {
        let other = OtherHost::new();
        import_busybox(PAGE);
        // none: only lo
        let links = berth(&["run", "--rm", "--net=none", "busybox", "ip", "-o", "link"]).ok();
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains("lo:"));
        // host: the host's links; -p ignored with a warning
        let out = berth(&["run", "--rm", "--net=host", "-p", "4000:80", "busybox", "ip", "-o", "link"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("uplink"), "{}", out.stdout);
        assert!(out.stderr.contains("Published ports are discarded"), "{}", out.stderr);
        // bridge: eth0 with 172.17.0.x, reaches a sibling
        berth(&["run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        let web_ip = inspect("web")["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
        assert!(web_ip.starts_with("172.17.0."));
        let addr = berth(&["run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]).ok();
        assert!(addr.contains("inet 172.17.0."), "{addr}");
        let page = berth(&["run", "--rm", "busybox", "sh", "-c", &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {web_ip} 80")]).ok();
        assert!(page.contains(PAGE), "{page}");
        // container:web shares web's netns: its server is on 127.0.0.1
        let page =
            berth(&["run", "--rm", "--net=container:web", "busybox", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80"])
                .ok();
        assert!(page.contains(PAGE), "{page}");
        // MASQUERADE: another host sees the host's address as the source
        let _srv = other.ns.spawn("python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 9000)); s.listen(); c, a = s.accept(); open(\"/run/berth/peer.out\", \"w\").write(a[0])'");
        wait_for("peer listener", || other.ns.sh("ss -Hltn").contains(":9000"));
        let _ = berth(&["run", "--rm", "busybox", "sh", "-c", &format!("echo hi | nc {PEER_IP} 9000")]);
        wait_for("the peer to see the connection", || std::fs::metadata("/run/berth/peer.out").is_ok_and(|m| m.len() > 0));
        assert_eq!(std::fs::read_to_string("/run/berth/peer.out").unwrap(), HOST_IP);
        berth(&["rm", "-f", "web"]).ok();
    });
}

#[test]
fn pid1_signals_exit_codes_and_rm() {
    isolated(|| {
        import_busybox(PAGE);
        assert_eq!(berth(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]).ok().trim(), "1");
        assert_eq!(berth(&["run", "--rm", "busybox", "sh", "-c", "exit 42"]).code, 42);
        // a trap sees SIGTERM from stop
        berth(&["run", "-d", "--name", "trap", "busybox", "sh", "-c", "trap 'echo got TERM; exit 3' TERM; while :; do sleep 0.1; done"])
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        berth(&["stop", "-t", "5", "trap"]).ok();
        assert!(berth(&["logs", "trap"]).ok().contains("got TERM"));
        assert_eq!(inspect("trap")["State"]["ExitCode"], 3);
        assert_eq!(berth(&["wait", "trap"]).ok().trim(), "3");
        // a command ignoring SIGTERM is killed after -t 1
        berth(&["run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]).ok();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        berth(&["stop", "-t", "1", "stubborn"]).ok();
        assert!(t.elapsed() >= Duration::from_secs(1));
        assert_eq!(inspect("stubborn")["State"]["ExitCode"], 137);
        // kill -s delivers other signals
        berth(&["run", "-d", "--name", "usr1", "busybox", "sh", "-c", "trap 'echo got USR1; exit 7' USR1; while :; do sleep 0.1; done"])
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        berth(&["kill", "-s", "USR1", "usr1"]).ok();
        assert_eq!(berth(&["wait", "usr1"]).ok().trim(), "7");
        // --rm removes the container when it exits
        berth(&["run", "--rm", "--name", "gone", "busybox", "true"]).ok();
        assert!(!berth(&["ps", "-a"]).ok().contains("gone"));
        berth(&["run", "-d", "--rm", "--name", "gone2", "busybox", "true"]).ok();
        wait_for("--rm of a detached container", || !berth(&["ps", "-a"]).ok().contains("gone2"));
    });
}

#[test]
fn memory_and_pids_limits_are_enforced() {
    isolated(limits_are_enforced);
}

/// The same on a cgroup v2 hierarchy mounted in the test's namespace: enforced where the
/// kernel lets v2 have the controllers, else refused loudly (never run unlimited).
#[test]
fn memory_and_pids_limits_on_cgroup_v2() {
    isolated(|| {
        if !try_sh("mount -t cgroup2 none /sys/fs/cgroup").0 {
            println!("\nSKIP memory_and_pids_limits_on_cgroup_v2: cgroup2 cannot be mounted here");
            return;
        }
        let controllers = sh("cat /sys/fs/cgroup/cgroup.controllers");
        if ["memory", "pids", "cpu"].iter().all(|c| controllers.split_whitespace().any(|x| x == *c)) {
            limits_are_enforced();
            return;
        }
        println!(
            "\nSKIP memory_and_pids_limits_on_cgroup_v2 (enforcement): controllers here are {:?}; checking refusal",
            controllers.trim()
        );
        import_busybox(PAGE);
        let o = berth(&["run", "-d", "--name", "lim", "--memory", "64m", "busybox", "sleep", "100"]);
        assert_eq!(o.code, 125, "ran without its memory limit: {}{}", o.stdout, o.stderr);
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
        assert!(o.stderr.contains("memory"), "{}", o.stderr);
        assert_eq!(berth(&["ps", "-a", "-q"]).ok().trim(), "", "a refused run left its record");
        assert_eq!(bridge_allocations(), 0);
        // Without limits it runs (in the v2 hierarchy).
        berth(&["run", "--rm", "busybox", "true"]).ok();
    });
}

fn limits_are_enforced() {
    {
        import_busybox(PAGE);
        berth(&["run", "-d", "--name", "lim", "--memory", "64m", "--pids-limit", "20", "--cpus", "0.5", "busybox", "sleep", "100"]).ok();
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let (mem, pids) = if v2 {
            ("cat /sys/fs/cgroup/memory.max", "cat /sys/fs/cgroup/pids.max")
        } else {
            ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes", "cat /sys/fs/cgroup/pids/pids.max")
        };
        // PID 1 is in its group on every hierarchy (on v1 it joined by itself).
        let lim = inspect("lim");
        let pid = lim["State"]["Pid"].as_i64().expect("pid");
        let id = lim["Id"].as_str().expect("id").to_string();
        let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroups");
        let dirs = cgroup_dirs(&id);
        assert!(!dirs.is_empty(), "no cgroup for {id}");
        for (hierarchy, dir) in dirs {
            let name = hierarchy.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let controllers = |l: &&str| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == name));
            let line = groups.lines().find(|l| v2 || controllers(l));
            assert!(line.is_some_and(|l| l.ends_with(&format!("/{id}"))), "PID 1 is not in {}: {groups}", dir.display());
        }
        assert_eq!(berth(&["exec", "lim", "sh", "-c", mem]).ok().trim(), "67108864");
        assert_eq!(berth(&["exec", "lim", "sh", "-c", pids]).ok().trim(), "20");
        berth(&["rm", "-f", "lim"]).ok();
        // a memory hog is OOM-killed
        let out = berth(&["run", "--rm", "--memory", "16m", "busybox", "sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"]);
        assert_eq!(out.code, 137, "{}", out.stderr);
        // a fork loop is capped
        let out =
            berth(&["run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c", "for i in $(seq 40); do sleep 2 & done 2>&1; echo done"]);
        assert!(out.stdout.contains("can't fork") || out.stderr.contains("can't fork"), "{} {}", out.stdout, out.stderr);
    }
}

#[test]
fn a_foreground_run_is_logged_as_dockerd_logs_an_attached_one() {
    isolated(|| {
        import_busybox(PAGE);
        let o = berth(&["run", "--name", "fg", "busybox", "sh", "-c", "echo out; echo err >&2; [ -t 1 ] && echo tty; exit 3"]);
        // Its output came to the caller, each stream on its own, stdout a pipe (no -t).
        assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (3, "out\n", "err\n"));
        let logs = berth(&["logs", "fg"]);
        assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("out\n", "err\n"));
        // stdin is still the caller's.
        let exe = berth_tests::harness::bin_dir().join("berth");
        let piped = sh(&format!("echo hello | {} run -i --rm busybox cat", exe.display()));
        assert_eq!(piped, "hello\n");
        berth(&["rm", "fg"]).ok();
        assert_eq!(berth(&["ps", "-a", "-q"]).ok().trim(), "");
    });
}

#[test]
fn etc_files_hostname_and_exec() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&[
            "run",
            "-d",
            "--name",
            "named",
            "--hostname",
            "myhost",
            "--dns",
            "192.0.2.53",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "busybox",
            "sleep",
            "100",
        ])
        .ok();
        assert_eq!(berth(&["exec", "named", "hostname"]).ok().trim(), "myhost");
        assert_eq!(berth(&["exec", "named", "cat", "/etc/hostname"]).ok().trim(), "myhost");
        let hosts = berth(&["exec", "named", "cat", "/etc/hosts"]).ok();
        assert!(hosts.contains("127.0.0.1\tlocalhost") && hosts.contains("172.17.0.2\tmyhost named"), "{hosts}");
        assert_eq!(berth(&["exec", "named", "cat", "/etc/resolv.conf"]).ok().trim(), "nameserver 192.0.2.53");
        assert_eq!(berth(&["exec", "named", "sh", "-c", "echo $FOO $(pwd)"]).ok().trim(), "bar /tmp");
        // exec runs in the same namespaces as PID 1
        let pid = inspect("named")["State"]["Pid"].as_i64().unwrap();
        for ns in ["net", "pid", "mnt", "uts", "ipc"] {
            let host_view = sh(&format!("readlink /proc/{pid}/ns/{ns}"));
            let inside = berth(&["exec", "named", "readlink", &format!("/proc/self/ns/{ns}")]).ok();
            assert_eq!(host_view.trim(), inside.trim(), "{ns} namespace differs");
        }
        assert!(berth(&["exec", "named", "ps"]).ok().contains("sleep 100"));
        assert_eq!(berth(&["exec", "named", "sh", "-c", "exit 5"]).code, 5);
        assert_eq!(berth(&["exec", "named", "nonexistent"]).code, 127);
        berth(&["rm", "-f", "named"]).ok();
    });
}

#[test]
fn bad_input_is_one_line_exit_125_and_leaves_nothing() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&["run", "-d", "--name", "web", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        let before = (berth(&["ps", "-a", "-q"]).ok(), veths(), bridge_allocations(), rules());
        let cases: &[(&[&str], &str)] = &[
            (&["run", "-d", "nosuchimage", "true"], "unable to find image"),
            (&["run", "-d", "-p", "4000:80:90:1", "busybox", "true"], "invalid port spec"),
            (&["run", "-d", "-p", "70000:80", "busybox", "true"], "invalid port spec"),
            (&["run", "-d", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80"], "already in use"),
            (&["run", "-d", "--net=nope", "busybox", "true"], "network nope not found"),
            (&["run", "-d", "--name", "web", "busybox", "true"], "already in use"),
            (&["run", "-d", "--memory", "lots", "busybox", "true"], "invalid size"),
            (&["run", "-d", "-v", "relative/x:/x", "busybox", "true"], "invalid volume name"),
            (&["run", "-d", "--net=container:nobody", "busybox", "true"], "not found"),
        ];
        for (args, msg) in cases {
            let out = berth(args);
            assert_eq!(out.code, 125, "{args:?}: {}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: not one line: {}", out.stderr);
            assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
            assert_eq!((berth(&["ps", "-a", "-q"]).ok(), veths(), bridge_allocations(), rules()), before, "{args:?} left state behind");
        }
        // PID 1 fails while the monitor makes the network (it makes its root meanwhile;
        // the network is made late here, in a debug build): its own error comes back, and
        // nothing of the start is left.
        for detach in [false, true] {
            let mut args = vec!["run", "--rm", "-p", "4100:80", "-w", "/etc/passwd", "busybox", "true"];
            if detach {
                args.insert(1, "-d");
            }
            let out = berth_env(&args, &[("BERTH_DELAY", "start-network:300")]);
            assert_eq!(out.code, 125, "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains("chdir to /etc/passwd"), "{args:?}: {}", out.stderr);
            assert_eq!((berth(&["ps", "-a", "-q"]).ok(), veths(), bridge_allocations(), rules()), before, "{args:?} left state behind");
        }
        assert_eq!(berth(&["run", "busybox", "nonexistent-cmd"]).code, 127);
        assert_eq!(berth(&["run", "busybox", "/etc/passwd"]).code, 126);
        assert_eq!(berth(&["rm", "nobody"]).code, 125);
        berth(&["rm", "-f", "web"]).ok();
    });
}

/// A container whose PID 1 died and whose exit its monitor has yet to record is not
/// removed by a plain `rm` when its policy brings it back: the record it waits for says
/// restarting (the monitor records late here, in a debug build).
#[test]
fn rm_between_a_crash_and_its_record_sees_the_restart_coming() {
    isolated(|| {
        import_busybox(PAGE);
        let args = ["run", "-d", "--name", "crashy", "--restart", "always", "busybox", "sh", "-c", "exit 1"];
        berth_env(&args, &[("BERTH_DELAY", "reap-record:600")]).ok();
        std::thread::sleep(std::time::Duration::from_millis(150));
        let st = inspect("crashy");
        assert_eq!(st["State"]["Status"], "running", "not in the window: {st}");
        let out = berth(&["rm", "crashy"]);
        assert_ne!(out.code, 0, "removed while its restart was coming");
        assert!(out.stderr.contains("restarting"), "{}", out.stderr);
        berth(&["rm", "-f", "crashy"]).ok();
        assert_eq!(berth(&["ps", "-a", "-q"]).ok(), "");
    });
}

#[test]
fn ten_parallel_detached_runs_get_distinct_addresses() {
    isolated(|| {
        import_busybox(PAGE);
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..10)
                .map(|i| {
                    s.spawn(move || {
                        berth(&[
                            "run",
                            "-d",
                            "--name",
                            &format!("p{i}"),
                            "-p",
                            &format!("{}:80", 5000 + i),
                            "busybox",
                            "httpd",
                            "-f",
                            "-p",
                            "80",
                            "-h",
                            "/www",
                        ])
                        .ok()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(ids.len(), 10);
        let mut ips: Vec<String> =
            (0..10).map(|i| inspect(&format!("p{i}"))["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string()).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 10, "{ips:?}");
        for i in 0..10 {
            wait_for("each published port", || try_sh(&curl(&format!("http://127.0.0.1:{}/", 5000 + i))).1 == PAGE);
        }
        std::thread::scope(|s| {
            for i in 0..10 {
                s.spawn(move || berth(&["rm", "-f", &format!("p{i}")]).ok());
            }
        });
        assert_eq!((veths(), bridge_allocations()), (0, 0));
    });
}

#[test]
fn docker_save_and_oci_archives_load_with_whiteouts_and_config() {
    isolated(|| {
        for (tar, name) in [(image::docker_archive("loaded:v1"), "loaded:v1"), (image::oci_archive("oci:v1"), "oci:v1")] {
            let out = berth(&["load", "-i", tar.to_str().unwrap()]).ok();
            assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
            assert!(berth(&["images"]).ok().contains(name));
            // the image's Cmd, Env and WorkingDir
            assert_eq!(berth(&["run", "--rm", name]).ok().trim(), "from-image in /data");
            // whiteout and opaque directory from layer two
            let ls = berth(&["run", "--rm", name, "sh", "-c", "ls /data; ls /etc; cat /etc/motd"]).ok();
            assert!(ls.contains("new") && !ls.contains("old"), "opaque dir not applied: {ls}");
            assert!(!ls.contains("gone"), "whiteout not applied: {ls}");
            assert!(ls.contains("layer two"));
            // -P publishes the exposed port 80/tcp
            berth(&["run", "-d", "-P", "--name", "pub", name, "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
            let port = berth(&["port", "pub"]).ok();
            assert!(port.starts_with("80/tcp -> 0.0.0.0:"), "{port}");
            let hp: u16 = port.trim().rsplit(':').next().unwrap().parse().unwrap();
            assert!((49153..=60999).contains(&hp));
            wait_for("-P port", || try_sh(&curl(&format!("http://127.0.0.1:{hp}/"))).1 == "loaded page");
            berth(&["rm", "-f", "pub"]).ok();
            berth(&["rmi", name]).ok();
        }
        assert!(
            std::fs::read_dir("/var/lib/berth/layers").unwrap().flatten().all(|e| e.file_name().to_string_lossy().starts_with('.')),
            "layers left after rmi"
        );
    });
}

#[test]
fn user_defined_networks_and_a_foreign_docker0() {
    isolated(|| {
        import_busybox(PAGE);
        assert_eq!(berth(&["network", "create", "--subnet", "10.89.0.0/24", "appnet"]).ok().trim(), "appnet");
        assert!(berth(&["network", "ls"]).ok().contains("10.89.0.0/24"));
        let dup = berth(&["network", "create", "--subnet", "10.89.0.0/25", "other"]);
        assert_eq!(dup.code, 125);
        assert!(dup.stderr.contains("overlaps"), "{}", dup.stderr);
        berth(&["run", "-d", "--net", "appnet", "--name", "a", "-p", "4100:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        assert_eq!(inspect("a")["NetworkSettings"]["IPAddress"], "10.89.0.2");
        wait_for("the page via appnet", || try_sh(&curl("http://127.0.0.1:4100/")).1 == PAGE);
        let page =
            berth(&["run", "--rm", "--net", "appnet", "busybox", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 10.89.0.2 80"]).ok();
        assert!(page.contains(PAGE));
        let busy = berth(&["network", "rm", "appnet"]);
        assert_eq!(busy.code, 125);
        assert!(busy.stderr.contains("in use"));
        berth(&["rm", "-f", "a"]).ok();
        berth(&["network", "rm", "appnet"]).ok();
        assert!(!berth(&["network", "ls"]).ok().contains("appnet"));
        // docker0 owned by someone else, with another address
        sh("ip link add docker0 type bridge && ip addr add 10.1.2.1/24 dev docker0");
        let out = berth(&["run", "-d", "busybox", "sleep", "10"]);
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("berth network create"), "{}", out.stderr);
        assert!(berth(&["ps", "-a", "-q"]).ok().trim().is_empty());
        assert_eq!(bridge_allocations(), 0);
    });
}

#[test]
fn logs_follow_and_recovery_after_a_killed_monitor() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&["run", "-d", "--name", "talk", "busybox", "sh", "-c", "echo one; sleep 0.5; echo two"]).ok();
        let out = berth(&["logs", "-f", "talk"]).ok();
        assert_eq!(out, "one\ntwo\n");
        // a monitor killed with its container: the next rm repairs network state
        berth(&["run", "-d", "--name", "web", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        crash("web");
        wait_for("ps to see it gone", || !berth(&["ps"]).ok().contains("web"));
        berth(&["rm", "web"]).ok();
        assert_eq!((veths(), bridge_allocations()), (0, 0));
        assert!(!berth_tests::harness::fw::mentions("172.17.0.2"));
        // the port is free again
        port_4000_serves_again("web");
    });
}

#[test]
fn import_shows_progress_on_a_terminal_only() {
    isolated(|| {
        let tar = image::busybox_tar(PAGE);
        let exe = berth_tests::harness::bin_dir().join("berth");
        // `script` gives berth a terminal as stdout.
        let on_tty = sh(&format!("script -qec '{} import {} tty-img' /dev/null", exe.display(), tar.display()));
        assert!(on_tty.contains("Importing:") && on_tty.contains("MB"), "{on_tty}");
        // Another tarball, so its layer is unpacked again rather than shared.
        let tar = image::busybox_tar("another page");
        let piped = berth(&["import", tar.to_str().unwrap(), "pipe-img"]).ok();
        assert!(!piped.contains("MB"), "{piped}");
        assert!(piped.trim().starts_with("sha256:"));
    });
}

#[test]
fn parallel_ephemeral_ports_are_distinct_and_answer() {
    isolated(|| {
        import_busybox(PAGE);
        std::thread::scope(|s| {
            for i in 0..8 {
                s.spawn(move || {
                    berth(&["run", "-d", "--name", &format!("e{i}"), "-p", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok()
                });
            }
        });
        let mut ports: Vec<u16> = (0..8)
            .map(|i| {
                let line = berth(&["port", &format!("e{i}")]).ok();
                line.trim().rsplit(':').next().unwrap().parse().unwrap()
            })
            .collect();
        for p in &ports {
            assert!((49153..=60999).contains(p), "{p}");
            wait_for("an ephemeral port", || try_sh(&curl(&format!("http://127.0.0.1:{p}/"))).1 == PAGE);
        }
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 8, "two containers got the same host port");
        let shown: u16 = inspect("e0")["NetworkSettings"]["Ports"].as_object().unwrap().values().next().unwrap()[0]["HostPort"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(ports.contains(&shown), "inspect shows the picked port");
    });
}

#[test]
fn names_are_indexed_and_the_index_repairs_itself() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&["run", "-d", "--name", "a", "busybox", "sleep", "60"]).ok();
        assert!(std::path::Path::new("/var/lib/berth/containers/.names/a").exists());
        // Records of an older version (no index): the name is still taken, and found.
        sh("rm -rf /var/lib/berth/containers/.names");
        assert!(berth(&["run", "-d", "--name", "a", "busybox", "true"]).stderr.contains("already in use"));
        assert!(berth(&["inspect", "a"]).ok().contains("\"Running\": true"));
        // An index entry whose record is gone does not hold the name.
        std::fs::write("/var/lib/berth/containers/.names/ghost", "0123456789abcdef").unwrap();
        berth(&["run", "-d", "--name", "ghost", "busybox", "sleep", "60"]).ok();
        // rm frees the name.
        berth(&["rm", "-f", "a", "ghost"]).ok();
        assert!(!std::path::Path::new("/var/lib/berth/containers/.names/a").exists());
        berth(&["run", "--rm", "--name", "a", "busybox", "true"]).ok();
    });
}

#[test]
fn a_reused_pid_is_never_taken_for_the_container() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&["run", "-d", "--name", "a", "-p", "4000:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        // A crash (monitor and PID 1 killed), then both PIDs reused by an unrelated process.
        let (id, mut rec) = crash("a");
        assert!(rec["state"]["pid_start"].as_u64().is_some() && rec["state"]["monitor_start"].as_u64().is_some(), "{rec}");
        let path = format!("/var/lib/berth/containers/{id}/container.json");
        let mut stranger = std::process::Command::new("sleep").arg("300").spawn().unwrap();
        let pid = stranger.id() as i64;
        rec["state"]["pid"] = pid.into();
        rec["state"]["monitor_pid"] = pid.into();
        std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
        // Nothing treats the stranger as the container: not ps, not exec, not kill/stop/rm.
        assert!(!berth(&["ps"]).ok().contains(" a\n") && !berth(&["ps"]).ok().ends_with(" a"));
        let o = berth(&["exec", "a", "true"]);
        assert_eq!(o.code, 125);
        assert!(o.stderr.contains("not running"), "{}", o.stderr);
        assert_eq!(berth(&["kill", "a"]).code, 125);
        berth(&["stop", "-t", "1", "a"]).ok();
        berth(&["rm", "-f", "a"]).ok();
        assert!(stranger.try_wait().unwrap().is_none(), "berth signalled a process that reused the container's PID");
        let _ = stranger.kill();
        // And what the container held is free again.
        assert_eq!((veths(), bridge_allocations()), (0, 0));
        port_4000_serves_again("a");
    });
}

#[test]
fn exec_outside_the_containers_cgroup_is_refused() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&["run", "-d", "--name", "a", "busybox", "sleep", "60"]).ok();
        assert_eq!(berth(&["exec", "a", "true"]).code, 0);
        // Someone removed the container's cgroups (its process moved out first).
        let id = inspect("a")["Id"].as_str().unwrap().to_string();
        let pid = inspect("a")["State"]["Pid"].as_i64().unwrap();
        let dirs = cgroup_dirs(&id);
        assert!(!dirs.is_empty(), "the container has no cgroups");
        for (root, d) in dirs {
            sh(&format!("echo {pid} > {}/cgroup.procs && rmdir {}", root.display(), d.display()));
        }
        let o = berth(&["exec", "a", "hostname"]);
        assert_eq!(o.code, 125, "{}{}", o.stdout, o.stderr);
        assert!(o.stderr.contains("cgroup"), "{}", o.stderr);
        assert!(o.stdout.is_empty(), "the command ran: {}", o.stdout);
        berth(&["rm", "-f", "a"]).ok();
    });
}

#[test]
fn a_store_on_overlayfs_is_refused_with_what_to_do() {
    isolated(|| {
        // berth's root on overlayfs, as inside another container or on an overlay root.
        sh("mkdir -p /run/berth/ovl/lower /run/berth/ovl/upper /run/berth/ovl/work /run/berth/ovl/merged && \
            mount -t overlay overlay -o lowerdir=/run/berth/ovl/lower,upperdir=/run/berth/ovl/upper,workdir=/run/berth/ovl/work /run/berth/ovl/merged");
        let tar = image::busybox_tar(PAGE);
        let root = "/run/berth/ovl/merged";
        let exe = berth_tests::harness::bin_dir().join("berth");
        let run = |args: &[&str]| std::process::Command::new(&exe).arg("--root").arg(root).args(args).output().unwrap();
        assert!(run(&["import", tar.to_str().unwrap(), "busybox"]).status.success());
        let o = run(&["run", "--rm", "busybox", "true"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{err}");
        assert!(err.contains("overlayfs") && err.contains("--root"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(String::from_utf8_lossy(&run(&["ps", "-a", "-q"]).stdout).trim().is_empty(), "a record was left");
        assert_eq!(bridge_allocations(), 0);
    });
}

/// Nothing of a container is left: record, address, port claim, veth. (Cgroups are
/// host-wide, shared with tests running in parallel: checked by ID where it is known.)
fn nothing_left() {
    assert_eq!(berth(&["ps", "-a", "-q"]).ok().trim(), "", "a record was left");
    assert_eq!((veths(), bridge_allocations()), (0, 0));
    assert!(!sh("ls /run/berth/ports").contains("tcp-"), "a port claim was left");
}

#[test]
fn a_foreground_run_forwards_signals_and_start_is_never_cut_half_way() {
    isolated(|| {
        import_busybox(PAGE);
        let exe = berth_tests::harness::bin_dir().join("berth");
        let script = "trap 'exit 3' TERM; while :; do sleep 0.1; done";
        // SIGTERM to `berth run` goes to the container; --rm then removes it.
        let mut fg = std::process::Command::new(&exe)
            .args(["run", "--rm", "--name", "fg", "-p", "8091:80", "busybox", "sh", "-c", script])
            .spawn()
            .unwrap();
        wait_for("the container to run", || berth(&["ps", "-q"]).ok().trim().len() == 12);
        std::thread::sleep(Duration::from_millis(200));
        sh(&format!("kill -TERM {}", fg.id()));
        assert_eq!(fg.wait().unwrap().code(), Some(3));
        nothing_left();
        // A SIGTERM at any moment of a start: the start completes or never began; either
        // way the signal ends the container and nothing is left.
        for delay_ms in [0u64, 2, 5, 10, 20, 40] {
            let mut fg = std::process::Command::new(&exe)
                .args(["run", "--rm", "-p", "8091:80", "busybox", "sh", "-c", script])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            sh(&format!("kill -TERM {}", fg.id()));
            // A SIGTERM forwarded before the shell set its trap is ignored by a PID 1 (as
            // with Docker): then the container is removed the way a user would.
            let t0 = Instant::now();
            while fg.try_wait().unwrap().is_none() {
                if t0.elapsed() > Duration::from_secs(2) {
                    let ids = berth(&["ps", "-q"]).ok();
                    for id in ids.split_whitespace() {
                        berth(&["rm", "-f", id]).ok();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            nothing_left();
        }
    });
}

#[test]
fn a_crashed_rm_container_is_removed_by_the_next_ps() {
    isolated(|| {
        import_busybox(PAGE);
        berth(&["run", "-d", "--rm", "--name", "c", "-p", "8091:80", "busybox", "sleep", "60"]).ok();
        let (id, _) = crash("c");
        std::thread::sleep(Duration::from_millis(100));
        nothing_left();
        assert_eq!(cgroup_dirs(&id), vec![], "cgroups were left");
        // And its name and port are free.
        berth(&["run", "-d", "--rm", "--name", "c", "-p", "8091:80", "busybox", "sleep", "60"]).ok();
        berth(&["rm", "-f", "c"]).ok();
    });
}
