//! Crash safety: plugins killed with SIGKILL at many points of an ADD leave state that
//! the next DEL (or GC) repairs completely.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use berth_tests::harness::net::{allocations, bridge_conf, links, rules};
use berth_tests::harness::{bin_dir, isolated, Cni, Netns};

/// Starts plugin `ty` with ADD and kills it after `delay`; returns whether it finished first.
fn add_killed(ty: &str, cid: &str, stdin: &str, delay: Duration) -> bool {
    let dir = bin_dir();
    let mut child = Command::new(dir.join(ty))
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", format!("/run/netns/{cid}"))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    // A killed bridge may leave its host-local child running for a moment.
    std::thread::sleep(Duration::from_millis(5));
    finished
}

fn claims_left() -> usize {
    std::fs::read_dir("/run/berth/ports")
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).map(|e| std::fs::read_dir(e.path()).map(|r| r.count()).unwrap_or(0)).sum())
        .unwrap_or(0)
}

#[test]
fn bridge_killed_at_any_point_is_repaired_by_del() {
    isolated(|| {
        let cni = Cni::default();
        let conf = bridge_conf("1.0.0").to_string();
        // Base chains and the bridge exist before: the comparison is about one container.
        let w = Netns::new("w");
        cni.call("bridge", "ADD", "w", w.path().to_str().unwrap(), "eth0", &conf).ok();
        let (base_rules, base_links, base_allocs) = (rules(), links(), allocations());
        let mut finished = 0;
        for i in 0..24u64 {
            let cid = format!("k{i}");
            Netns::new(&cid);
            finished += add_killed("bridge", &cid, &conf, Duration::from_micros(i * 800)) as usize;
            cni.call("bridge", "DEL", &cid, &format!("/run/netns/{cid}"), "eth0", &conf).ok();
            assert_eq!(allocations(), base_allocs, "address left after kill at {}us + DEL", i * 800);
            assert_eq!(links(), base_links, "link left after kill at {}us + DEL", i * 800);
            assert_eq!(rules(), base_rules, "rules left after kill at {}us + DEL", i * 800);
        }
        println!("bridge: {finished}/24 ADDs finished before the kill");
        assert!(finished < 24, "no ADD was interrupted: the delays are too long to test anything");
    });
}

#[test]
fn portmap_killed_at_any_point_is_repaired_by_del_or_gc() {
    isolated(|| {
        let cni = Cni::default();
        let bconf = bridge_conf("1.0.0").to_string();
        let w = Netns::new("w");
        cni.call("bridge", "ADD", "w", w.path().to_str().unwrap(), "eth0", &bconf).ok();
        let base_rules = rules();
        for i in 0..20u64 {
            let cid = format!("k{i}");
            let ns = Netns::new(&cid);
            let prev = cni.call("bridge", "ADD", &cid, ns.path().to_str().unwrap(), "eth0", &bconf).ok();
            let pconf = json!({
                "cniVersion": "1.0.0", "name": "berth", "type": "portmap",
                "runtimeConfig": {"portMappings": [{"hostPort": 4000, "containerPort": 80, "protocol": "tcp"}, {"hostPort": 4001, "containerPort": 81, "protocol": "udp"}]},
                "prevResult": prev
            })
            .to_string();
            add_killed("portmap", &cid, &pconf, Duration::from_micros(i * 400));
            if i % 2 == 0 {
                // the runtime's DEL, as after a failed ADD
                cni.call("portmap", "DEL", &cid, ns.path().to_str().unwrap(), "eth0", &pconf).ok();
            } else {
                // or the runtime forgot the attachment and GC finds it
                let gc = json!({"cniVersion": "1.1.0", "name": "berth", "type": "portmap", "cni.dev/valid-attachments": [{"containerID": "w", "ifname": "eth0"}]});
                cni.call("portmap", "GC", "", "", "", &gc.to_string()).ok();
            }
            cni.call("bridge", "DEL", &cid, ns.path().to_str().unwrap(), "eth0", &bconf).ok();
            assert_eq!(rules(), base_rules, "rules left after kill at {}us", i * 400);
            assert_eq!(claims_left(), 0, "port claims left after kill at {}us", i * 400);
        }
        // the port is free for the next container
        let ns = Netns::new("last");
        let prev = cni.call("bridge", "ADD", "last", ns.path().to_str().unwrap(), "eth0", &bconf).ok();
        let pconf = json!({"cniVersion": "1.0.0", "name": "berth", "type": "portmap", "runtimeConfig": {"portMappings": [{"hostPort": 4000, "containerPort": 80}]}, "prevResult": prev});
        cni.call("portmap", "ADD", "last", ns.path().to_str().unwrap(), "eth0", &pconf.to_string()).ok();
        assert!(berth_tests::harness::fw::publishes(4000));
    });
}
