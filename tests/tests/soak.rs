//! Soak: 64 workers at once for a bounded time — CNI ADD/CHECK/DEL on two networks and
//! `berth run -d`/`rm -f` through netd — with an address never live twice, no unexpected
//! error, and at the end nothing left: veths, allocations, firewall state, port claims,
//! cgroups. netd's memory and open descriptors are reported and must stay bounded.
//! CI runs 10 s; `cargo test --test soak -- --ignored` runs the 60 s form.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_cni::conflist::{ConfList, Runner};
use berth_tests::harness::berth::{berth, import_busybox, inspect};
use berth_tests::harness::net::rt;
use berth_tests::harness::netd::Netd;
use berth_tests::harness::{bin_dir, curl, fw, isolated, sh, try_sh};
use serde_json::json;

const WORKERS: usize = 64;
/// Of the workers, these many drive the runtime; the rest CNI, half per network.
const RUNTIME_WORKERS: usize = 8;

fn network(name: &str, bridge: &str, subnet: &str) -> ConfList {
    let doc = json!({
        "cniVersion": "1.1.0", "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
             "ipam": {"type": "host-local", "subnet": subnet}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    ConfList::parse(doc.to_string().as_bytes()).unwrap()
}

/// (netd RSS kB, netd open descriptors).
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok());
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss.unwrap_or(0), fds)
}

/// The live addresses: inserting one already there is the violation this test looks for.
#[derive(Default)]
struct Live(Mutex<HashSet<String>>);

impl Live {
    fn take(&self, key: String, errors: &Mutex<Vec<String>>) {
        if !self.0.lock().unwrap().insert(key.clone()) {
            errors.lock().unwrap().push(format!("address live twice: {key}"));
        }
    }

    fn drop_key(&self, key: &str) {
        self.0.lock().unwrap().remove(key);
    }
}

fn soak(secs: u64) {
    isolated(|| {
        import_busybox("soak");
        let netd = Netd::start();
        // Warm up: the default network, its bridge and base rules exist before measuring.
        berth(&["run", "-d", "--name", "warm", "-p", "30999:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        berth(&["rm", "-f", "warm"]).ok();
        let before = usage(netd.pid());
        let nets = [network("soak-a", "brsa", "10.70.0.0/16"), network("soak-b", "brsb", "10.71.0.0/16")];
        for w in RUNTIME_WORKERS..WORKERS {
            sh(&format!("ip netns add s{w}"));
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let live = Arc::new(Live::default());
        let errors = Arc::new(Mutex::new(Vec::<String>::new()));
        let ops = Arc::new(Mutex::new([0usize; 5]));
        let ids = Arc::new(Mutex::new(Vec::<String>::new()));
        std::thread::scope(|s| {
            for w in 0..WORKERS {
                let (live, errors, ops, ids, nets) = (live.clone(), errors.clone(), ops.clone(), ids.clone(), &nets);
                s.spawn(move || {
                    let fail = |what: String| errors.lock().unwrap().push(what);
                    if w < RUNTIME_WORKERS {
                        let name = format!("soak{w}");
                        let port = (31000 + w).to_string();
                        while Instant::now() < deadline {
                            let o = berth(&[
                                "run",
                                "-d",
                                "--name",
                                &name,
                                "-p",
                                &format!("{port}:80"),
                                "busybox",
                                "httpd",
                                "-f",
                                "-p",
                                "80",
                                "-h",
                                "/www",
                            ]);
                            if o.code != 0 {
                                fail(format!("run {name}: {}", o.stderr.trim()));
                                break;
                            }
                            let c = inspect(&name);
                            ids.lock().unwrap().push(c["Id"].as_str().unwrap_or("").to_string());
                            let key = format!("bridge/{}", c["NetworkSettings"]["IPAddress"].as_str().unwrap_or("?"));
                            live.take(key.clone(), &errors);
                            // Alive while its address is held: the published port answers.
                            let t = Instant::now();
                            while try_sh(&curl(&format!("http://127.0.0.1:{port}/"))).1 != "soak" {
                                if t.elapsed() > Duration::from_secs(5) {
                                    fail(format!("{name} never answered on {port}"));
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            live.drop_key(&key);
                            let o = berth(&["rm", "-f", &name]);
                            if o.code != 0 {
                                fail(format!("rm -f {name}: {}", o.stderr.trim()));
                                break;
                            }
                            ops.lock().unwrap()[3] += 2;
                        }
                        return;
                    }
                    let runner = Runner { path: vec![bin_dir()] };
                    let list = &nets[w % 2];
                    let cfg = rt(&format!("w{w}"), &format!("/run/netns/s{w}"), &[(32000 + w as u16, 80, "tcp", "")]);
                    while Instant::now() < deadline {
                        let res = match runner.add(list, &cfg) {
                            Ok(r) => r,
                            Err(e) => {
                                fail(format!("ADD w{w}: {}", e.msg));
                                break;
                            }
                        };
                        let key = format!("{}/{}", list.name, res["ips"][0]["address"].as_str().unwrap_or("?"));
                        live.take(key.clone(), &errors);
                        if let Err(e) = runner.check(list, &cfg, &res) {
                            fail(format!("CHECK w{w}: {}", e.msg));
                        }
                        live.drop_key(&key);
                        if let Err(e) = runner.del(list, &cfg, Some(&res)) {
                            fail(format!("DEL w{w}: {}", e.msg));
                            break;
                        }
                        let mut o = ops.lock().unwrap();
                        o[0] += 1;
                        o[1] += 1;
                        o[2] += 1;
                    }
                });
            }
        });
        let after = usage(netd.pid());
        let [adds, checks, dels, runtime, _] = *ops.lock().unwrap();
        println!(
            "\nREPORT soak {secs} s, {WORKERS} workers: {adds} ADD, {checks} CHECK, {dels} DEL, {runtime} run/rm; netd RSS {} -> {} kB, fds {} -> {}",
            before.0, after.0, before.1, after.1
        );
        let errors = errors.lock().unwrap();
        assert!(errors.is_empty(), "{} errors, first: {:?}", errors.len(), &errors[..errors.len().min(5)]);
        assert!(adds > 0 && runtime > 0, "the soak did nothing");
        // Nothing left.
        assert_eq!(sh("ip -o link show type veth | wc -l").trim(), "0", "veths left");
        for dir in ["/var/lib/cni/networks/soak-a", "/var/lib/cni/networks/soak-b", "/var/lib/berth/ipam/bridge"] {
            let held = sh(&format!("ls {dir} 2>/dev/null | grep -E '^[0-9]' || true"));
            assert!(held.trim().is_empty(), "allocations left in {dir}: {held}");
        }
        let d = fw::dump();
        for prefix in ["10.70.", "10.71.", "172.17."] {
            assert!(!d.contains(prefix), "firewall state left for {prefix}:\n{d}");
        }
        assert!(!d.contains("-DN-"), "per-container chains left:\n{d}");
        let claims = sh("ls /run/berth/ports 2>/dev/null | grep -v lock || true");
        assert!(claims.trim().is_empty(), "port claims left: {claims}");
        for id in ids.lock().unwrap().iter().filter(|i| !i.is_empty()) {
            let left = sh(&format!("find /sys/fs/cgroup -maxdepth 4 -type d -name '{id}*' 2>/dev/null | head -3"));
            assert!(left.trim().is_empty(), "cgroups left for {id}: {left}");
        }
        // Bounded: no descriptor leak per operation, memory within a small multiple.
        assert!(after.1 <= before.1 + 16, "netd descriptors grew {} -> {}", before.1, after.1);
        assert!(after.0 < before.0 * 4 + 32 * 1024, "netd RSS grew {} -> {} kB", before.0, after.0);
    });
}

#[test]
fn soak_64_workers_leave_nothing_and_never_share_an_address() {
    soak(std::env::var("BERTH_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10));
}

#[test]
#[ignore = "long form: 60 s"]
fn soak_long() {
    soak(60);
}
