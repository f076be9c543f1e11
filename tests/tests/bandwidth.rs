//! The bandwidth plugin chained after ptp and after bridge, beside the reference's
//! (Debian's containernetworking-plugins 1.1.1 in /usr/lib/cni): the same result (veth and
//! ifb names masked), the same qdiscs read back with `tc -j` (a tbf root on the host end
//! for ingress, an ifb with its tbf for egress, the host end's `ingress` qdisc with a
//! match-all u32 filter redirecting to the ifb); a rate without a burst refused; DEL
//! leaves no ifb; and the shaping measured: a transfer into and out of a shaped
//! container runs at its configured rate within ±20 %.

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::plugin::{masked, reference};
use berth_tests::harness::{bin_dir, isolated, sh, Cni, Netns};

fn ptp(ip: &str) -> String {
    json!({"cniVersion": "1.0.0", "name": "bw", "type": "ptp",
        "ipam": {"type": "static", "addresses": [{"address": format!("{ip}/24"), "gateway": "10.1.1.1"}]}})
    .to_string()
}

fn bw(prev: &Value, limits: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "bw", "type": "bandwidth", "prevResult": prev});
    c.as_object_mut().unwrap().extend(limits.as_object().unwrap().clone());
    c.to_string()
}

/// ptp then bandwidth in `ns` through the plugins in `dir`: (ptp result, chain result).
fn chain(dir: &Path, ns: &Netns, cid: &str, ip: &str, limits: Value) -> (Value, Value) {
    let cni = Cni::default();
    let p = ns.path().to_str().unwrap().to_string();
    let p = p.as_str();
    let r = cni.call_in(dir, "ptp", "ADD", cid, p, "eth0", &ptp(ip)).ok();
    let b = cni.call_in(dir, "bandwidth", "ADD", cid, p, "eth0", &bw(&r, limits)).ok();
    (r, b)
}

fn shape(mut r: Value) -> Value {
    r = masked(r);
    for i in r["interfaces"].as_array_mut().into_iter().flatten() {
        let n = i["name"].as_str().unwrap_or_default().to_string();
        if n.starts_with("veth") || n.starts_with("bwp") {
            i["name"] = json!(format!("{}*", &n[..3]));
        }
    }
    r
}

/// `tc -j qdisc show dev D` without counters, and the redirect of its ingress filter.
fn tc_state(dev: &str) -> (Value, Vec<(String, String, String)>) {
    let mut q: Value = serde_json::from_str(&sh(&format!("tc -j qdisc show dev {dev}"))).unwrap();
    for x in q.as_array_mut().into_iter().flatten() {
        x.as_object_mut().unwrap().remove("refcnt");
    }
    let f: Value =
        serde_json::from_str(&sh(&format!("tc -j filter show dev {dev} parent ffff: 2>/dev/null || echo []"))).unwrap_or(json!([]));
    let acts = f
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|x| x["options"]["actions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["control_action"]["type"] == "stolen")
        .map(|a| (a["kind"].to_string(), a["mirred_action"].to_string(), a["direction"].to_string()))
        .collect();
    (q, acts)
}

fn iface(r: &Value, prefix: &str) -> String {
    r["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).find(|n| n.starts_with(prefix)).unwrap()
}

#[test]
fn bandwidth_shapes_as_the_reference_after_ptp() {
    isolated(|| {
        let ours = bin_dir();
        let limits = json!({"ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 4_000_000, "egressBurst": 40_000});
        let c1 = Netns::new("c1");
        let (_, r1) = chain(&ours, &c1, "c1", "10.1.1.10", limits.clone());
        let (host, ifb) = (iface(&r1, "veth"), iface(&r1, "bwp"));
        let (q, redirect) = tc_state(&host);
        assert_eq!(q[0]["kind"], "tbf");
        assert_eq!(q[0]["options"], json!({"rate": 1_000_000, "burst": 10_000, "lat": 25_000}), "{q}");
        assert_eq!(q[1]["kind"], "ingress");
        assert_eq!(redirect, vec![("\"mirred\"".into(), "\"redirect\"".into(), "\"egress\"".into())]);
        assert_eq!(tc_state(&ifb).0[0]["options"], json!({"rate": 500_000, "burst": 5_000, "lat": 25_000}));
        if let Some(refdir) = reference("bandwidth", "bandwidth differential") {
            let c2 = Netns::new("c2");
            let (_, r2) = chain(&refdir, &c2, "c2", "10.1.1.11", limits.clone());
            assert_eq!(shape(r1.clone()), shape(r2.clone()), "results differ");
            // The reference's u32 filter carries its redirect twice (vishvananda/netlink
            // adds RedirIndex's action before the listed one); the first is the one acting.
            assert_eq!(tc_state(&host).0, tc_state(&iface(&r2, "veth")).0, "host-end qdiscs differ");
            assert_eq!(tc_state(&host).1, tc_state(&iface(&r2, "veth")).1[..1].to_vec(), "redirects differ");
            assert_eq!(tc_state(&ifb).0, tc_state(&iface(&r2, "bwp")).0, "ifb qdiscs differ");
            // Cross-DEL: each removes the other's ifb.
            let cni = Cni::default();
            assert_eq!(cni.call_in(&ours, "bandwidth", "DEL", "c2", c2.path().to_str().unwrap(), "eth0", &bw(&r2, limits.clone())).code, 0);
            assert!(sh("ip -o link show type ifb").lines().all(|l| !l.contains(&iface(&r2, "bwp"))), "our DEL left the reference's ifb");
        }
        // CHECK passes, then fails once the shaping is gone; DEL twice; no ifb left.
        let cni = Cni::default();
        let p1 = c1.path().to_str().unwrap().to_string();
        assert_eq!(cni.call("bandwidth", "CHECK", "c1", &p1, "eth0", &bw(&r1, limits.clone())).code, 0);
        sh(&format!("tc qdisc del dev {ifb} root"));
        assert_ne!(cni.call("bandwidth", "CHECK", "c1", &p1, "eth0", &bw(&r1, limits.clone())).code, 0);
        for _ in 0..2 {
            assert_eq!(cni.call("bandwidth", "DEL", "c1", &p1, "eth0", &bw(&r1, limits.clone())).code, 0);
        }
        assert_eq!(sh("ip -o link show type ifb"), "", "DEL left an ifb");
        // A rate without a burst: refused by both, nothing made.
        let bad = json!({"ingressRate": 8_000_000});
        let c3 = Netns::new("c3");
        let r3 = cni.call("ptp", "ADD", "c3", c3.path().to_str().unwrap(), "eth0", &ptp("10.1.1.12")).ok();
        let msg = cni.call("bandwidth", "ADD", "c3", c3.path().to_str().unwrap(), "eth0", &bw(&r3, bad.clone())).err(7);
        assert!(msg.contains("burst must also be set"), "{msg}");
        if let Some(refdir) = reference("bandwidth", "bandwidth differential") {
            assert_ne!(cni.call_in(&refdir, "bandwidth", "ADD", "c3", c3.path().to_str().unwrap(), "eth0", &bw(&r3, bad)).code, 0);
        }
        assert!(!sh(&format!("tc qdisc show dev {}", iface(&r3, "veth"))).contains("tbf"));
        // No limit at all: the previous result passes through.
        let same = cni.call("bandwidth", "ADD", "c3", c3.path().to_str().unwrap(), "eth0", &bw(&r3, json!({}))).ok();
        assert_eq!(same, r3);
    });
}

/// Seconds to push `bytes` from `from` (a shell prefix, "" for the host) to a python
/// sink at `ip:port` inside `sink`.
/// Rate iperf3 measures (bits/s at the receiver) from `from` to an iperf3 server in `sink`.
fn iperf3(sink: &Netns, ip: &str, port: u16, from: &dyn Fn(&str) -> (bool, String)) -> f64 {
    let _srv = sink.spawn(&format!("iperf3 -s -1 -p {port}"));
    berth_tests::harness::wait_for("iperf3 -s", || sink.sh("ss -Hltn").contains(&format!(":{port}")));
    let (ok, out) = from(&format!("iperf3 -c {ip} -p {port} -t 3 -J"));
    assert!(ok, "iperf3 failed: {out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("iperf3 -J: {e}: {out}"));
    v["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or_else(|| panic!("no rate in {out}"))
}

#[test]
fn a_shaped_container_moves_data_at_its_configured_rate() {
    isolated(|| {
        // The host side of the measurement: a netns standing for another host, routed
        // through the ptp gateway.
        let c = Netns::new("c1");
        let limits = json!({"ingressRate": 4_000_000, "ingressBurst": 40_000, "egressRate": 2_000_000, "egressBurst": 20_000});
        chain(&bin_dir(), &c, "c1", "10.1.1.10", limits);
        let peer = Netns::new("peer");
        sh("ip link add wan0 type veth peer name eth0 netns peer && ip addr add 203.0.113.1/24 dev wan0 && ip link set wan0 up");
        peer.sh("ip addr add 203.0.113.2/24 dev eth0 && ip link set eth0 up && ip route add 10.1.1.0/24 via 203.0.113.1");
        c.sh("ip route add 203.0.113.0/24 via 10.1.1.1");
        sh("sysctl -qw net.ipv4.ip_forward=1");
        // Into the container at 4 Mbit/s, out of it at 2 Mbit/s.
        let into = iperf3(&c, "10.1.1.10", 5201, &|cmd| peer.try_sh(cmd));
        let out = iperf3(&peer, "203.0.113.2", 5202, &|cmd| c.try_sh(cmd));
        println!(
            "REPORT bandwidth (iperf3, 3 s): into the container {:.2} Mbit/s of 4, out of it {:.2} Mbit/s of 2",
            into / 1e6,
            out / 1e6
        );
        for (what, got, want) in [("ingress", into, 4e6), ("egress", out, 2e6)] {
            assert!((0.8 * want..=1.2 * want).contains(&got), "{what}: {got:.0} bit/s, not within ±20 % of {want}");
        }
    });
}

#[test]
fn bandwidth_after_bridge_finds_the_bridge_port() {
    isolated(|| {
        let bridge = berth_tests::harness::net::bridge_conf("1.0.0");
        let limits = json!({"ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 8_000_000, "egressBurst": 80_000});
        let cni = Cni::default();
        for (dir, cid) in std::iter::once((bin_dir(), "b1")).chain(reference("bandwidth", "bandwidth after bridge").map(|d| (d, "b2"))) {
            let ns = Netns::new(cid);
            let p = ns.path().to_str().unwrap().to_string();
            let r = cni.call_in(&dir, "bridge", "ADD", cid, &p, "eth0", &bridge.to_string()).ok();
            let mut c: Value = serde_json::from_str(&bw(&r, limits.clone())).unwrap();
            c["name"] = bridge["name"].clone();
            let b = cni.call_in(&dir, "bandwidth", "ADD", cid, &p, "eth0", &c.to_string()).ok();
            let host = iface(&b, "veth");
            assert_eq!(tc_state(&host).0[0]["options"], json!({"rate": 1_000_000, "burst": 10_000, "lat": 25_000}), "{}", dir.display());
            assert_eq!(tc_state(&iface(&b, "bwp")).0[0]["kind"], "tbf");
            assert_eq!(cni.call_in(&dir, "bandwidth", "DEL", cid, &p, "eth0", &c.to_string()).code, 0);
        }
        assert_eq!(sh("ip -o link show type ifb"), "");
    });
}
