//! The tap plugin: a persistent tap made inside the container's netns through
//! /dev/net/tun with the owner, group, multi-queue flag, MTU and MAC asked for (read back
//! with `ip -d link`), optionally a port of a bridge inside the netns, gone after DEL.
//! The reference set has tap only from v1.3 (Debian has 1.1.1): no differential here.

use serde_json::{json, Value};

use berth_tests::harness::{isolated, Cni, Netns};

fn conf(extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.1.0", "name": "tapnet", "type": "tap",
        "ipam": {"type": "static", "addresses": [{"address": "192.0.2.30/24"}]}});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c.to_string()
}

fn call(cmd: &str, ns: &Netns, conf: &str) -> berth_tests::harness::Outcome {
    Cni::default().call("tap", cmd, "ctr-tap", ns.path().to_str().unwrap(), "tap0", conf)
}

#[test]
fn tap_devices_are_made_as_asked_and_removed() {
    isolated(|| {
        let c1 = Netns::new("c1");
        let want = json!({"owner": 4242, "group": 4343, "multiQueue": true, "mtu": 1400, "mac": "02:00:00:00:00:30"});
        let r = call("ADD", &c1, &conf(want.clone())).ok();
        assert_eq!(r["interfaces"][0]["name"], "tap0");
        assert_eq!(r["interfaces"][0]["mac"], "02:00:00:00:00:30");
        assert_eq!(r["interfaces"][0]["mtu"], 1400, "1.1.0 results carry the MTU");
        let d = c1.sh("ip -d link show tap0");
        for words in ["mtu 1400", "02:00:00:00:00:30", "tun type tap", "multi_queue", "persist on", "user 4242", "group 4343", "UP"] {
            assert!(d.contains(words), "{words} missing: {d}");
        }
        assert!(c1.sh("ip -4 -o addr show tap0").contains("192.0.2.30/24"));
        assert_eq!(
            call("CHECK", &c1, &json!({"cniVersion": "1.1.0", "name": "tapnet", "type": "tap", "prevResult": r}).to_string()).code,
            0
        );
        assert_eq!(call("DEL", &c1, &conf(want.clone())).code, 0);
        assert_eq!(c1.sh("ip -o link show | grep -vc ' lo:' || true").trim(), "0", "DEL left the tap");
        assert_eq!(call("DEL", &c1, &conf(want)).code, 0, "DEL twice");

        // A port of a bridge inside the netns; single queue by default.
        c1.sh("ip link add br0 type bridge && ip link set br0 up");
        let r = call("ADD", &c1, &conf(json!({"bridge": "br0"}))).ok();
        let d = c1.sh("ip -d link show tap0");
        assert!(d.contains("master br0") && !d.contains("multi_queue"), "{d}");
        assert!(r["interfaces"][0]["mac"].as_str().is_some_and(|m| m.len() == 17));
        // Taken name, missing bridge, SELinux: refused, nothing made.
        assert_ne!(call("ADD", &c1, &conf(json!({}))).code, 0, "tap0 exists");
        assert_eq!(call("DEL", &c1, &conf(json!({}))).code, 0);
        let msg = call("ADD", &c1, &conf(json!({"bridge": "nosuch"}))).err(7);
        assert!(msg.contains("no such bridge"), "{msg}");
        call("ADD", &c1, &conf(json!({"selinuxContext": "system_u:object_r:container_file_t:s0"}))).err(2);
        call("ADD", &c1, &conf(json!({"mtu": 20}))).err(7);
        assert_eq!(c1.sh("ip -o link show type tun").trim(), "", "a refused ADD left a tap");
        // The netns gone: DEL still succeeds.
        call("ADD", &c1, &conf(json!({}))).ok();
        c1.delete();
        assert_eq!(Cni::default().call("tap", "DEL", "ctr-tap", "/run/netns/c1", "tap0", &conf(json!({}))).code, 0);
    });
}
