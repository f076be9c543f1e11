//! The macvlan plugin beside the reference's (Debian's containernetworking-plugins in
//! /usr/lib/cni). The LAN is a veth `lan0` whose peer is the netns `lanpeer`
//! (192.0.2.2/24): containers on macvlans of lan0 reach it directly, and each other in
//! bridge mode but not in private mode; the same config gives the same result and the
//! same link through both implementations; DEL leaves nothing, twice, after the netns is
//! gone, and across implementations.

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::plugin::{masked, reference};
use berth_tests::harness::{isolated, sh, try_sh, Cni, Netns};

fn lan() -> Netns {
    let peer = Netns::new("lanpeer");
    sh("ip link add lan0 type veth peer name eth0 netns lanpeer && ip link set lan0 up");
    peer.sh("ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip link set lo up");
    peer
}

fn conf(mode: &str, ipam: Value) -> String {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "lan0", "mode": mode, "ipam": ipam}).to_string()
}

fn static_ip(ip: &str) -> Value {
    json!({"type": "static", "addresses": [{"address": format!("{ip}/24"), "gateway": "192.0.2.1"}], "routes": [{"dst": "198.51.100.0/24"}]})
}

/// `ip -d -j link show IFNAME` in a netns: (kind, mode, up).
fn link(ns: &Netns, ifname: &str) -> Option<(String, String, bool)> {
    let (ok, out) = ns.try_sh(&format!("ip -d -j link show {ifname}"));
    if !ok {
        return None;
    }
    let v: Value = serde_json::from_str(&out).ok()?;
    let l = &v[0];
    Some((
        l["linkinfo"]["info_kind"].as_str().unwrap_or("").to_string(),
        l["linkinfo"]["info_data"]["mode"].as_str().unwrap_or("").to_string(),
        l["flags"].as_array().is_some_and(|f| f.contains(&json!("UP"))),
    ))
}

fn pings(ns: &Netns, ip: &str) -> bool {
    ns.try_sh(&format!("busybox ping -c1 -W1 {ip}")).0
}

fn add(dir: &Path, ns: &Netns, cid: &str, conf: &str) -> Value {
    Cni::default().call_in(dir, "macvlan", "ADD", cid, ns.path().to_str().unwrap(), "eth0", conf).ok()
}

fn del(dir: &Path, ns_path: &str, cid: &str, conf: &str) {
    assert_eq!(Cni::default().call_in(dir, "macvlan", "DEL", cid, ns_path, "eth0", conf).code, 0, "DEL by {}", dir.display());
}

#[test]
fn macvlan_puts_containers_on_the_lan_as_the_reference_does() {
    isolated(|| {
        let peer = lan();
        let ours = berth_tests::harness::bin_dir();
        let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
        let r1 = add(&ours, &c1, "c1", &conf("bridge", static_ip("192.0.2.10")));
        assert_eq!(r1["interfaces"][0]["name"], "eth0");
        assert_eq!(r1["ips"][0]["interface"], 0);
        assert_eq!(link(&c1, "eth0"), Some(("macvlan".into(), "bridge".into(), true)));
        assert!(c1.sh("ip -4 -o addr show eth0").contains("192.0.2.10/24"));
        assert!(c1.sh("ip route").contains("198.51.100.0/24 via 192.0.2.1 dev eth0"), "{}", c1.sh("ip route"));
        assert!(pings(&c1, "192.0.2.2"), "the LAN peer is not reachable");
        // The LAN peer sees the container's own address (no NAT) and MAC.
        assert!(peer.sh("ip neigh show 192.0.2.10").contains(r1["interfaces"][0]["mac"].as_str().unwrap()));
        let second = if let Some(refdir) = reference("macvlan", "macvlan differential") {
            let r2 = add(&refdir, &c2, "c2", &conf("bridge", static_ip("192.0.2.11")));
            assert_eq!(masked(r1.clone()), masked(r2), "results differ");
            refdir
        } else {
            add(&ours, &c2, "c2", &conf("bridge", static_ip("192.0.2.11")));
            ours.clone()
        };
        assert_eq!(link(&c1, "eth0"), link(&c2, "eth0"));
        // Gratuitous ARP and unsolicited NA on address changes, as the reference sets them
        // (1.1.1 sets only arp_notify; later versions both).
        let notify = |ns: &Netns| ns.sh("cat /proc/sys/net/ipv4/conf/eth0/arp_notify /proc/sys/net/ipv6/conf/eth0/ndisc_notify");
        assert_eq!(notify(&c1), "1\n1\n");
        assert!(notify(&c2).starts_with("1\n"));
        assert!(pings(&c1, "192.0.2.11") && pings(&c2, "192.0.2.10"), "bridge mode: containers do not reach each other");
        // Cross-DEL: each implementation removes the other's link.
        del(&second, c1.path().to_str().unwrap(), "c1", &conf("bridge", static_ip("192.0.2.10")));
        del(&ours, c2.path().to_str().unwrap(), "c2", &conf("bridge", static_ip("192.0.2.11")));
        assert_eq!((link(&c1, "eth0"), link(&c2, "eth0")), (None, None), "DEL left a link");
        // DEL again, and after the netns is gone: fine.
        del(&ours, c1.path().to_str().unwrap(), "c1", &conf("bridge", static_ip("192.0.2.10")));
        c2.delete();
        del(&ours, "/run/netns/c2", "c2", &conf("bridge", static_ip("192.0.2.11")));

        // Private mode: the LAN yes, each other no.
        let (p1, p2) = (Netns::new("p1"), Netns::new("p2"));
        add(&ours, &p1, "p1", &conf("private", static_ip("192.0.2.20")));
        add(&ours, &p2, "p2", &conf("private", static_ip("192.0.2.21")));
        assert_eq!(link(&p1, "eth0").unwrap().1, "private");
        assert!(pings(&p1, "192.0.2.2") && pings(&p2, "192.0.2.2"));
        assert!(!pings(&p1, "192.0.2.21"), "private mode: containers reached each other");
        if let Some(refdir) = reference("macvlan", "macvlan differential") {
            let p3 = Netns::new("p3");
            let theirs = add(&refdir, &p3, "p3", &conf("private", static_ip("192.0.2.22")));
            assert_eq!(link(&p1, "eth0"), link(&p3, "eth0"));
            let mine = add(&ours, &Netns::new("p4"), "p4", &conf("private", static_ip("192.0.2.23")));
            assert_eq!(masked(mine), masked(theirs));
        }
        assert!(try_sh("ip -o link show type macvlan").1.trim().is_empty(), "a macvlan stayed in the host netns");
    });
}

#[test]
fn macvlan_with_host_local_releases_and_bad_input_leaves_nothing() {
    isolated(|| {
        let _peer = lan();
        let ours = berth_tests::harness::bin_dir();
        let hl = |dir: &str| json!({"type": "host-local", "subnet": "192.0.2.0/24", "rangeStart": "192.0.2.100", "rangeEnd": "192.0.2.110", "dataDir": dir});
        let c1 = Netns::new("c1");
        let r = add(&ours, &c1, "c1", &conf("bridge", hl("/run/berth/hl")));
        assert_eq!(r["ips"][0]["address"], "192.0.2.100/24");
        assert!(Path::new("/run/berth/hl/lan/192.0.2.100").exists());
        assert!(pings(&c1, "192.0.2.2"));
        if let Some(refdir) = reference("macvlan", "macvlan differential") {
            let c2 = Netns::new("c2");
            let theirs = add(&refdir, &c2, "c2", &conf("bridge", hl("/run/berth/hl")));
            assert_eq!(theirs["ips"][0]["address"], "192.0.2.101/24", "the two share the host-local store");
            assert_eq!(masked(r.clone()), masked(theirs));
            del(&ours, c2.path().to_str().unwrap(), "c2", &conf("bridge", hl("/run/berth/hl")));
        }
        del(&ours, c1.path().to_str().unwrap(), "c1", &conf("bridge", hl("/run/berth/hl")));
        assert_eq!(sh("ls /run/berth/hl/lan | grep -c 192.0.2 || true").trim(), "0", "DEL kept an address");

        // Refusals: a code, a message, no address held, no link, no temporary name.
        let c3 = Netns::new("c3");
        let cases = [
            (json!({"master": "nosuch0"}), 7, "no such interface"),
            (json!({"mode": "sideways"}), 7, "one of bridge, private, vepa, passthru"),
            (json!({"mtu": 9000}), 7, "up to the master's MTU"),
            (json!({"mac": "01:00:5e:00:00:01"}), 7, "mac"),
        ];
        for (extra, code, words) in cases {
            let mut c: Value = serde_json::from_str(&conf("bridge", hl("/run/berth/hl"))).unwrap();
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let out = Cni::default().call("macvlan", "ADD", "c3", c3.path().to_str().unwrap(), "eth0", &c.to_string());
            let msg = out.err(code);
            assert!(msg.contains(words), "{extra}: {msg}");
            assert_eq!(sh("ls /run/berth/hl/lan | grep -c 192.0.2 || true").trim(), "0", "{extra}: an address stayed allocated");
            assert_eq!(c3.sh("ip -o link show | grep -vc ' lo:' || true").trim(), "0", "{extra}: a link stayed");
        }
        // eth0 taken in the container: refused, nothing left.
        c3.sh("ip link add eth0 type veth peer name other");
        let out = Cni::default().call("macvlan", "ADD", "c3", c3.path().to_str().unwrap(), "eth0", &conf("bridge", hl("/run/berth/hl")));
        assert_ne!(out.code, 0);
        assert_eq!(c3.sh("ip -o link show type macvlan").trim(), "", "a temporary macvlan stayed");
        assert_eq!(sh("ls /run/berth/hl/lan | grep -c 192.0.2 || true").trim(), "0");
        // No IPAM: the link is only brought up.
        let c4 = Netns::new("c4");
        let r = Cni::default()
            .call(
                "macvlan",
                "ADD",
                "c4",
                c4.path().to_str().unwrap(),
                "eth0",
                &json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "lan0"}).to_string(),
            )
            .ok();
        assert!(r["ips"].is_null() || r["ips"].as_array().unwrap().is_empty(), "{r}");
        assert_eq!(link(&c4, "eth0").map(|l| l.2), Some(true));
    });
}
