//! The ptp plugin beside the reference's (Debian's containernetworking-plugins in
//! /usr/lib/cni): the same result (veth names and MACs masked), the same container and
//! host routes and addresses, router advertisements off on the host end; containers reach
//! the gateway and each other through the host, and — with `ipMasq` — a WAN peer that has
//! no route back to them; the masquerade is there while attached and gone after DEL, even
//! a DEL after the netns is gone; cross-DEL leaves nothing; bad input leaves nothing.

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::plugin::{masked, reference};
use berth_tests::harness::{isolated, sh, wait_for, Cni, Netns};

/// The WAN: a veth `wan0` (203.0.113.1/24) whose peer netns has no route to containers.
fn wan() -> Netns {
    let peer = Netns::new("wan");
    sh("ip link add wan0 type veth peer name eth0 netns wan && ip addr add 203.0.113.1/24 dev wan0 && ip link set wan0 up && ip link set lo up");
    peer.sh("ip addr add 203.0.113.2/24 dev eth0 && ip link set eth0 up && ip link set lo up");
    peer
}

fn conf(ip: &str, masq: bool) -> String {
    json!({"cniVersion": "1.0.0", "name": "pn", "type": "ptp", "ipMasq": masq,
        "ipam": {"type": "static", "addresses": [{"address": format!("{ip}/24"), "gateway": "10.1.1.1"}], "routes": [{"dst": "0.0.0.0/0"}]}})
    .to_string()
}

fn add(dir: &Path, ns: &Netns, cid: &str, conf: &str) -> Value {
    Cni::default().call_in(dir, "ptp", "ADD", cid, ns.path().to_str().unwrap(), "eth0", conf).ok()
}

fn del(dir: &Path, ns_path: &str, cid: &str, conf: &str) {
    assert_eq!(Cni::default().call_in(dir, "ptp", "DEL", cid, ns_path, "eth0", conf).code, 0, "DEL by {}", dir.display());
}

fn pings(ns: &Netns, ip: &str) -> bool {
    ns.try_sh(&format!("busybox ping -c1 -W1 {ip}")).0
}

/// The result with host veth names masked too.
fn shape(r: Value) -> Value {
    let mut r = masked(r);
    r["interfaces"][0]["name"] = json!("veth*");
    r
}

/// Whether berth's masquerade for `ip` is installed, in either backend.
fn masqueraded(ip: &str) -> bool {
    let nft = sh("nft list set inet berth ptp4 2>/dev/null || true");
    let ipt = sh("iptables-save -t nat 2>/dev/null | grep BERTH-MASQ || true");
    nft.contains(ip) || ipt.contains(&format!("-s {ip}/32"))
}

/// `ip -4 route` in a netns with its own address written as IP.
fn routes(ns: &Netns, ip: &str) -> String {
    ns.sh("ip -4 route").replace(ip, "IP")
}

/// The host veth that routes `ip`: its name, addresses, accept_ra.
fn host_end(ip: &str) -> (String, String) {
    let route = sh(&format!("ip -4 route show {ip}"));
    let dev = route.split_whitespace().skip_while(|w| *w != "dev").nth(1).unwrap_or_default().to_string();
    assert!(route.contains("scope host"), "{route}");
    let addrs = sh(&format!("ip -4 -o addr show dev {dev} | awk '{{print $4}}'"));
    let ra = sh(&format!("cat /proc/sys/net/ipv6/conf/{dev}/accept_ra"));
    (addrs.trim().to_string(), ra.trim().to_string())
}

#[test]
fn ptp_routes_and_masquerades_as_the_reference_does() {
    isolated(|| {
        let peer = wan();
        let ours = berth_tests::harness::bin_dir();
        let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
        let r1 = add(&ours, &c1, "c1", &conf("10.1.1.10", true));
        assert_eq!(r1["ips"][0]["interface"], 1);
        assert_eq!(r1["interfaces"][1]["name"], "eth0");
        assert_eq!(
            routes(&c1, "10.1.1.10"),
            "default via 10.1.1.1 dev eth0 \n10.1.1.0/24 via 10.1.1.1 dev eth0 src IP \n10.1.1.1 dev eth0 scope link src IP \n"
        );
        assert_eq!(host_end("10.1.1.10"), ("10.1.1.1/32".to_string(), "0".to_string()));
        assert!(masqueraded("10.1.1.10"), "no masquerade for 10.1.1.10");
        let second = match reference("ptp", "ptp differential") {
            Some(refdir) => {
                let r2 = add(&refdir, &c2, "c2", &conf("10.1.1.11", true));
                assert_eq!(shape(r1.clone()), shape(r2), "results differ");
                assert_eq!(routes(&c1, "10.1.1.10"), routes(&c2, "10.1.1.11"), "container routes differ");
                assert_eq!(host_end("10.1.1.10"), host_end("10.1.1.11"), "host ends differ");
                refdir
            }
            None => {
                add(&ours, &c2, "c2", &conf("10.1.1.11", true));
                ours.clone()
            }
        };
        assert!(pings(&c1, "10.1.1.1"), "the gateway is not reachable");
        assert!(pings(&c1, "10.1.1.11") && pings(&c2, "10.1.1.10"), "the containers do not reach each other");
        assert!(pings(&c1, "203.0.113.2"), "ipMasq: the WAN peer did not answer (no masquerade)");
        assert!(peer.sh("ip neigh show").contains("203.0.113.1"), "the WAN peer saw another source than the host");
        // DEL: link, host route and masquerade gone; again; after the netns is gone.
        del(&ours, c1.path().to_str().unwrap(), "c1", &conf("10.1.1.10", true));
        assert!(!masqueraded("10.1.1.10"), "DEL left the masquerade");
        assert_eq!(sh("ip -4 route show 10.1.1.10"), "");
        assert!(!c1.try_sh("ip link show eth0").0);
        del(&ours, c1.path().to_str().unwrap(), "c1", &conf("10.1.1.10", true));
        del(&second, c2.path().to_str().unwrap(), "c2", &conf("10.1.1.11", true));
        let c3 = Netns::new("c3");
        add(&ours, &c3, "c3", &conf("10.1.1.12", true));
        c3.delete();
        del(&ours, "/run/netns/c3", "c3", &conf("10.1.1.12", true));
        assert!(!masqueraded("10.1.1.12"), "DEL after the netns went left the masquerade");
        // With c3's netns gone its host end is the kernel's to remove, as the namespace is
        // torn down (a work queue, after the DEL may already have answered).
        wait_for("no host veth left", || sh("ip -o link show type veth | grep -vc wan0 || true").trim() == "0");
    });
}

#[test]
fn ptp_cross_del_and_bad_input_leave_nothing() {
    isolated(|| {
        let ours = berth_tests::harness::bin_dir();
        if let Some(refdir) = reference("ptp", "ptp cross-DEL") {
            let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
            add(&ours, &c1, "c1", &conf("10.1.1.10", false));
            add(&refdir, &c2, "c2", &conf("10.1.1.11", false));
            del(&refdir, c1.path().to_str().unwrap(), "c1", &conf("10.1.1.10", false));
            del(&ours, c2.path().to_str().unwrap(), "c2", &conf("10.1.1.11", false));
            assert_eq!(sh("ip -o link show type veth"), "", "cross-DEL left a veth");
            assert_eq!(sh("ip -4 route"), "", "cross-DEL left a host route");
        }
        let hl = json!({"type": "host-local", "subnet": "10.2.0.0/24", "dataDir": "/run/berth/hl"});
        let held = || sh("ls /run/berth/hl/pn 2>/dev/null | grep -c 10.2 || true").trim().to_string();
        let c = Netns::new("c4");
        let path = c.path().to_str().unwrap().to_string();
        let base = json!({"cniVersion": "1.0.0", "name": "pn", "type": "ptp", "ipam": hl});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b.to_string()
        };
        let no_gw = json!({"type": "static", "addresses": [{"address": "10.3.0.5/24"}]});
        for (what, conf, words) in [
            ("no ipam", json!({"cniVersion": "1.0.0", "name": "pn", "type": "ptp"}).to_string(), "\"ipam\""),
            ("a bad backend", with("ipMasqBackend", json!("firewalld")), "unknown ipMasqBackend"),
            ("a bad mtu", with("mtu", json!(10)), "mtu 10"),
            ("no gateway", with("ipam", no_gw), "without a gateway"),
        ] {
            let msg = Cni::default().call("ptp", "ADD", "c4", &path, "eth0", &conf).err(7);
            assert!(msg.contains(words), "{what}: {msg}");
            assert_eq!(held(), "0", "{what}: an address stayed");
            assert_eq!(sh("ip -o link show type veth"), "", "{what}: a veth stayed");
        }
        // eth0 taken in the container: refused, the address given back, no host veth.
        c.sh("ip link add eth0 type veth peer name other");
        let out = Cni::default().call("ptp", "ADD", "c4", &path, "eth0", &base.to_string());
        assert_ne!(out.code, 0, "{}", out.stdout);
        assert_eq!((held(), sh("ip -o link show type veth")), ("0".to_string(), String::new()));
    });
}
