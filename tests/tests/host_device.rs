//! The host-device plugin beside the reference's: a host interface (here a veth whose
//! peer is the netns `lanpeer`, 198.51.100.2/24) moves into the container under the CNI
//! interface name and serves there; DEL moves it back under its old name — and, unlike
//! the reference, with its host address and up state. Either implementation moves the
//! other's device back (the old name is in the alias).

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::plugin::{masked, reference};
use berth_tests::harness::{isolated, sh, Cni, Netns};

/// Device `name` on the host (with `host_ip`), its peer in `lanpeer` on 198.51.100.0/24.
fn device(peer: &Netns, name: &str, peer_ip: &str, host_ip: &str) {
    sh(&format!(
        "ip link add {name} type veth peer name p{name} netns lanpeer && ip addr add {host_ip}/24 dev {name} && ip link set {name} up"
    ));
    peer.sh(&format!("ip addr add {peer_ip}/24 dev p{name} && ip link set p{name} up"));
}

fn conf(which: Value, ip: &str) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "hd", "type": "host-device", "stateDir": "/run/berth",
        "ipam": {"type": "static", "addresses": [{"address": format!("{ip}/24")}]}});
    c.as_object_mut().unwrap().extend(which.as_object().unwrap().clone());
    c.to_string()
}

fn call(dir: &Path, cmd: &str, ns: &str, cid: &str, conf: &str) -> berth_tests::harness::Outcome {
    Cni::default().call_in(dir, "host-device", cmd, cid, ns, "net1", conf)
}

/// (name, addresses, up) of a host link, or None.
fn host_link(name: &str) -> Option<(Vec<String>, bool)> {
    let out = std::process::Command::new("ip").args(["-j", "addr", "show", name]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let l = v.get(0)?;
    let addrs = l["addr_info"]
        .as_array()?
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    Some((addrs, l["flags"].as_array().is_some_and(|f| f.contains(&json!("UP")))))
}

#[test]
fn host_device_moves_in_serves_and_comes_back_whole() {
    isolated(|| {
        let peer = Netns::new("lanpeer");
        peer.sh("ip link set lo up");
        device(&peer, "hd0", "198.51.100.2", "198.51.100.1");
        device(&peer, "hd1", "198.51.100.3", "198.51.100.4");
        let ours = berth_tests::harness::bin_dir();
        let c1 = Netns::new("c1");
        let c1p = c1.path().to_str().unwrap().to_string();
        let mine = call(&ours, "ADD", &c1p, "c1", &conf(json!({"device": "hd0"}), "198.51.100.10")).ok();
        assert_eq!(mine["interfaces"][0]["name"], "net1");
        assert!(host_link("hd0").is_none(), "hd0 stayed on the host");
        let inside = c1.sh("ip -d link show net1");
        assert!(inside.contains("alias hd0") && inside.contains("UP"), "{inside}");
        assert!(c1.try_sh("busybox ping -c1 -W1 198.51.100.2").0, "the moved device does not serve");
        // DEL: back under its name, with its address and up state.
        assert_eq!(call(&ours, "DEL", &c1p, "c1", &conf(json!({"device": "hd0"}), "198.51.100.10")).code, 0);
        assert_eq!(host_link("hd0"), Some((vec!["198.51.100.1/24".to_string()], true)), "hd0 not restored");
        assert_eq!(c1.sh("ip -o link show | grep -vc ' lo:' || true").trim(), "0");
        assert_eq!(call(&ours, "DEL", &c1p, "c1", &conf(json!({"device": "hd0"}), "198.51.100.10")).code, 0, "DEL twice");
        assert!(!Path::new("/run/berth/host-device").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false), "a record stayed");

        // By MAC, too.
        let mac = sh("cat /sys/class/net/hd0/address").trim().to_string();
        let r = call(&ours, "ADD", &c1p, "c1", &conf(json!({"hwaddr": mac}), "198.51.100.10")).ok();
        assert_eq!(r["interfaces"][0]["mac"], mac);
        assert_eq!(call(&ours, "DEL", &c1p, "c1", &conf(json!({"hwaddr": mac}), "198.51.100.10")).code, 0);
        assert!(host_link("hd0").is_some());

        if let Some(refdir) = reference("host-device", "host-device differential") {
            let c2 = Netns::new("c2");
            let c2p = c2.path().to_str().unwrap().to_string();
            let theirs = call(&refdir, "ADD", &c2p, "c2", &conf(json!({"device": "hd1"}), "198.51.100.11")).ok();
            assert_eq!(masked(mine.clone()), masked(theirs), "results differ");
            // Cross-DEL: ours moves the reference's device back (by its alias)...
            assert_eq!(call(&ours, "DEL", &c2p, "c2", &conf(json!({"device": "hd1"}), "198.51.100.11")).code, 0);
            assert!(host_link("hd1").is_some(), "hd1 not back on the host");
            // ...and the reference moves ours back.
            call(&ours, "ADD", &c1p, "c1", &conf(json!({"device": "hd0"}), "198.51.100.10")).ok();
            assert_eq!(call(&refdir, "DEL", &c1p, "c1", &conf(json!({"device": "hd0"}), "198.51.100.10")).code, 0);
            assert!(host_link("hd0").is_some(), "the reference did not move hd0 back");
        }

        // Bad input: a clear error, the device and IPAM untouched.
        let hl = json!({"cniVersion": "1.0.0", "name": "hd", "type": "host-device", "device": "nosuch0",
            "ipam": {"type": "host-local", "subnet": "198.51.100.0/24", "dataDir": "/run/berth/hl"}});
        let msg = call(&ours, "ADD", &c1p, "c1", &hl.to_string()).err(7);
        assert!(msg.contains("no such host interface"), "{msg}");
        assert_eq!(sh("ls /run/berth/hl/hd 2>/dev/null | grep -c 198 || true").trim(), "0", "an address stayed allocated");
        let none = json!({"cniVersion": "1.0.0", "name": "hd", "type": "host-device"});
        assert!(call(&ours, "ADD", &c1p, "c1", &none.to_string()).err(7).contains("one of device, hwaddr"));
        let escape = json!({"cniVersion": "1.0.0", "name": "hd", "type": "host-device", "kernelpath": "/sys/devices/../../etc"});
        assert!(call(&ours, "ADD", &c1p, "c1", &escape.to_string()).err(7).contains("under /sys/devices"));
        // The netns gone with the device in it: DEL still succeeds.
        call(&ours, "ADD", &c1p, "c1", &conf(json!({"device": "hd1"}), "198.51.100.12")).ok();
        c1.delete();
        assert_eq!(call(&ours, "DEL", &c1p, "c1", &conf(json!({"device": "hd1"}), "198.51.100.12")).code, 0);
    });
}
