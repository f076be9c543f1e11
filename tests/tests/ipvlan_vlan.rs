//! The ipvlan and vlan plugins. This machine's kernel (and CI's) is built without ipvlan
//! and 802.1Q: there each test prints its SKIP line and shows the clean refusal instead
//! (code 50 naming the kind, no address held, no link left in the host or the container,
//! temporary names included; DEL then succeeds). Where the kernel has the kind, containers
//! on links of the veth `lan0` reach the LAN peer and each other, and DEL leaves nothing.
//! The requests are held to iproute2's by golden tests (`netlink::link::tests`). Bad
//! input is refused with code 7 whatever the kernel.

use serde_json::{json, Value};

use berth_tests::harness::{isolated, kernel_has, sh, Cni, Netns};

fn lan() -> Netns {
    let peer = Netns::new("lanpeer");
    sh("ip link add lan0 type veth peer name eth0 netns lanpeer && ip link set lan0 up");
    peer.sh("ip link set eth0 up && ip link set lo up");
    peer
}

fn host_local() -> Value {
    json!({"type": "host-local", "subnet": "192.0.2.0/24", "rangeStart": "192.0.2.10", "dataDir": "/run/berth/hl"})
}

fn held() -> usize {
    sh("ls /run/berth/hl/lan 2>/dev/null | grep -c 192.0.2 || true").trim().parse().unwrap_or(0)
}

/// Links other than lo and lan0 in the host netns, and other than lo in `c`.
fn links_left(c: &Netns) -> (String, String) {
    (sh("ip -o link show | grep -v -e ' lo:' -e ' lan0@' || true"), c.sh("ip -o link show | grep -v ' lo:' || true"))
}

/// On a kernel without the kind: ADD is refused with code 50 naming it, and nothing stays.
fn refused_cleanly(plugin: &str, kind: &str, conf: &str) {
    let c1 = Netns::new("c1");
    let path = c1.path().to_str().unwrap().to_string();
    let cni = Cni::default();
    let msg = cni.call(plugin, "ADD", "c1", &path, "eth0", conf).err(50);
    assert!(msg.contains(&format!("lacks the {kind} link kind")), "{msg}");
    assert_eq!(held(), 0, "the refused ADD kept its address");
    assert_eq!(links_left(&c1), (String::new(), String::new()), "the refused ADD left a link");
    assert_eq!(cni.call(plugin, "DEL", "c1", &path, "eth0", conf).code, 0);
    assert_eq!(cni.call(plugin, "DEL", "c1", &path, "eth0", conf).code, 0);
}

fn ipvlan_conf(mode: &str) -> String {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "ipvlan", "master": "lan0", "mode": mode, "ipam": host_local()}).to_string()
}

fn vlan_conf(id: i64) -> String {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "vlan", "master": "lan0", "vlanId": id, "ipam": host_local()}).to_string()
}

#[test]
fn ipvlan_puts_containers_on_the_lan() {
    isolated(|| {
        let peer = lan();
        peer.sh("ip addr add 192.0.2.2/24 dev eth0");
        if !kernel_has("ipvlan", "link lan0 type ipvlan mode l2", "ipvlan_puts_containers_on_the_lan") {
            return refused_cleanly("ipvlan", "ipvlan", &ipvlan_conf("l2"));
        }
        let cni = Cni::default();
        let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
        let (p1, p2) = (c1.path().to_str().unwrap().to_string(), c2.path().to_str().unwrap().to_string());
        let r1 = cni.call("ipvlan", "ADD", "c1", &p1, "eth0", &ipvlan_conf("l2")).ok();
        let r2 = cni.call("ipvlan", "ADD", "c2", &p2, "eth0", &ipvlan_conf("l2")).ok();
        assert!(c1.sh("ip -d link show eth0").contains("ipvlan  mode l2"), "{}", c1.sh("ip -d link show eth0"));
        assert_eq!(r1["interfaces"][0]["mac"], json!(sh("cat /sys/class/net/lan0/address").trim()), "ipvlan wears the master's MAC");
        let ip2 = r2["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string();
        assert!(c1.try_sh("busybox ping -c1 -W1 192.0.2.2").0, "the LAN peer is not reachable");
        assert!(c1.try_sh(&format!("busybox ping -c1 -W1 {ip2}")).0, "the second container is not reachable");
        for (c, p) in [("c1", &p1), ("c2", &p2)] {
            assert_eq!(cni.call("ipvlan", "DEL", c, p, "eth0", &ipvlan_conf("l2")).code, 0);
        }
        assert_eq!((held(), links_left(&c1)), (0, (String::new(), String::new())));
    });
}

#[test]
fn vlan_tags_a_containers_frames_with_its_vid() {
    isolated(|| {
        let peer = lan();
        if !kernel_has("vlan", "link lan0 type vlan id 10", "vlan_tags_a_containers_frames_with_its_vid") {
            return refused_cleanly("vlan", "vlan", &vlan_conf(10));
        }
        peer.sh("ip link add link eth0 name eth0.10 type vlan id 10 && ip addr add 192.0.2.2/24 dev eth0.10 && ip link set eth0.10 up");
        let cni = Cni::default();
        let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
        let (p1, p2) = (c1.path().to_str().unwrap().to_string(), c2.path().to_str().unwrap().to_string());
        cni.call("vlan", "ADD", "c1", &p1, "eth0", &vlan_conf(10)).ok();
        assert!(c1.sh("ip -d link show eth0").contains("id 10"), "{}", c1.sh("ip -d link show eth0"));
        assert!(c1.try_sh("busybox ping -c1 -W1 192.0.2.2").0, "the peer on VLAN 10 is not reachable");
        // One link per master and VID: the second is refused and gives its address back.
        let msg = cni.call("vlan", "ADD", "c2", &p2, "eth0", &vlan_conf(10)).err(7);
        assert!(msg.contains("one per master and VID"), "{msg}");
        assert_eq!(held(), 1);
        assert_eq!(cni.call("vlan", "DEL", "c1", &p1, "eth0", &vlan_conf(10)).code, 0);
        assert_eq!((held(), links_left(&c1)), (0, (String::new(), String::new())));
    });
}

#[test]
fn ipvlan_and_vlan_refuse_bad_input_with_nothing_left() {
    isolated(|| {
        let _peer = lan();
        let c1 = Netns::new("c1");
        let path = c1.path().to_str().unwrap().to_string();
        let cni = Cni::default();
        let base = |ty: &str| json!({"cniVersion": "1.0.0", "name": "lan", "type": ty, "ipam": host_local()});
        let with = |mut v: Value, k: &str, x: Value| {
            v[k] = x;
            v.to_string()
        };
        let cases = [
            ("vlan", base("vlan").to_string(), "\"master\" is required"),
            ("vlan", with(with_master(base("vlan")), "vlanId", json!(4095)), "vlanId=\"4095\": from 0 to 4094"),
            ("vlan", with(with_master(base("vlan")), "master", json!("lan0;x")), "master"),
            ("vlan", json!({"cniVersion": "1.0.0", "name": "lan", "type": "vlan", "master": "lan0", "vlanId": 5}).to_string(), "\"ipam\""),
            ("ipvlan", with(with_master(base("ipvlan")), "mode", json!("l4")), "one of l2, l3, l3s"),
            ("ipvlan", json!({"cniVersion": "1.0.0", "name": "lan", "type": "ipvlan", "master": "lan0"}).to_string(), "missing ipam"),
            ("ipvlan", with(with_master(base("ipvlan")), "master", json!("nosuch0")), "no such interface"),
        ];
        for (plugin, conf, want) in cases {
            let msg = cni.call(plugin, "ADD", "c1", &path, "eth0", &conf).err(7);
            assert!(msg.contains(want), "{plugin} {conf}: {msg}");
            assert_eq!(held(), 0, "{plugin} {conf}: an address stayed");
            assert_eq!(links_left(&c1), (String::new(), String::new()), "{plugin} {conf}: a link stayed");
        }
        // Chained ipvlan without IPAM takes the previous result's addresses, and its one
        // interface as the master; more than one interface is refused.
        let prev2 = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "a"}, {"name": "b"}], "ips": [{"address": "192.0.2.9/24"}]});
        let chained = json!({"cniVersion": "1.0.0", "name": "lan", "type": "ipvlan", "prevResult": prev2}).to_string();
        let msg = cni.call("ipvlan", "ADD", "c1", &path, "eth0", &chained).err(7);
        assert!(msg.contains("lacks a single named interface"), "{msg}");
    });
}

fn with_master(mut v: Value) -> Value {
    v["master"] = json!("lan0");
    v
}
