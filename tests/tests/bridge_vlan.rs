//! bridge `vlan`, `vlanTrunk` and `preserveDefaultVlan`: ports tagged as the reference
//! tags them (PVID untagged, trunks tagged, VLAN 1 dropped on request) on a bridge that
//! filters VLANs. This kernel (and CI's) lacks bridge VLAN filtering: there the tests
//! print a SKIP line and show the clean refusal (code 50 naming it, no bridge, no
//! address held, no link); the requests are golden-tested against iproute2's in
//! `netd::netlink::link`.

use serde_json::{json, Value};

use berth_tests::harness::net::{allocations, links};
use berth_tests::harness::{isolated, kernel_has, sh, Cni, Netns};

/// A bridge network `berth` on `vl0` (no gateway: the reference puts a VLAN's gateway on
/// a veth of its own), with `extra` keys.
fn conf(extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "berth", "type": "bridge", "bridge": "vl0",
        "ipam": {"type": "host-local", "subnet": "10.40.0.0/24"}});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c.to_string()
}

fn add(cni: &Cni, c: &Netns, extra: Value) -> berth_tests::harness::Outcome {
    cni.call("bridge", "ADD", &c.name, c.path().to_str().unwrap(), "eth0", &conf(extra))
}

/// The port VLANs of `port` as `bridge -j vlan show` lists them: (vid, pvid, untagged).
fn port_vlans(port: &str) -> Vec<(u64, bool, bool)> {
    let j: Value = serde_json::from_str(&sh("bridge -j vlan show")).unwrap_or_default();
    let mut out = Vec::new();
    for p in j.as_array().into_iter().flatten().filter(|p| p["ifname"] == port) {
        for v in p["vlans"].as_array().into_iter().flatten() {
            let flags: Vec<&str> = v["flags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let end = v["vlanEnd"].as_u64().unwrap_or(v["vlan"].as_u64().unwrap_or(0));
            for vid in v["vlan"].as_u64().unwrap_or(0)..=end {
                out.push((vid, flags.contains(&"PVID"), flags.contains(&"Egress Untagged")));
            }
        }
    }
    out
}

#[test]
fn bridge_vlans_tag_ports_as_the_reference() {
    isolated(|| {
        let cni = Cni::default();
        let (c1, c2, c3) = (Netns::new("c1"), Netns::new("c2"), Netns::new("c3"));
        if !kernel_has("bridge VLAN filtering", "type bridge vlan_filtering 1", "bridge_vlans_tag_ports_as_the_reference") {
            // The clean refusal: code 50 naming it, nothing made, nothing held.
            let before = links();
            let msg = add(&cni, &c1, json!({"vlan": 100})).err(50);
            assert!(msg.contains("lacks bridge VLAN filtering"), "{msg}");
            assert_eq!(links(), before, "the refused ADD left a link");
            assert_eq!(allocations(), Vec::<String>::new(), "the refused ADD holds an address");
            // On a bridge that exists (an ADD without VLANs made it), the same.
            add(&cni, &c2, json!({})).ok();
            let (before, held) = (links(), allocations());
            assert_eq!(held.len(), 1);
            add(&cni, &c3, json!({"vlanTrunk": [{"minID": 101, "maxID": 200}]})).err(50);
            assert_eq!(links(), before, "the refused ADD left a link");
            assert_eq!(allocations(), held, "the refused ADD holds an address");
            assert_eq!(cni.call("bridge", "DEL", "c3", "/run/netns/c3", "eth0", &conf(json!({"vlan": 100}))).code, 0);
            return;
        }
        let r1 = add(&cni, &c1, json!({"vlan": 100})).ok();
        add(&cni, &c2, json!({"vlan": 100, "preserveDefaultVlan": false})).ok();
        let r3 = add(&cni, &c3, json!({"vlanTrunk": [{"id": 42}, {"minID": 101, "maxID": 103}]})).ok();
        let port = |r: &Value| r["interfaces"][1]["name"].as_str().unwrap().to_string();
        let p1 = port_vlans(&port(&r1));
        assert!(p1.contains(&(100, true, true)) && p1.contains(&(1, true, true)), "{p1:?}");
        let p3 = port_vlans(&port(&r3));
        for vid in [42, 101, 102, 103] {
            assert!(p3.contains(&(vid, false, false)), "{p3:?}");
        }
        // Same VLAN: they reach each other; the trunk port's untagged traffic does not.
        c1.sh("busybox ping -c1 -W2 10.40.0.3");
        assert!(!c3.try_sh("busybox ping -c1 -W1 10.40.0.2").0, "an untagged port reached VLAN 100");
        for c in ["c1", "c2", "c3"] {
            cni.call("bridge", "DEL", c, &format!("/run/netns/{c}"), "eth0", &conf(json!({}))).ok();
        }
        assert_eq!(allocations(), Vec::<String>::new());
    });
}

#[test]
fn bridge_vlan_keys_refuse_bad_input_with_nothing_made() {
    isolated(|| {
        let cni = Cni::default();
        let c = Netns::new("c1");
        let before = links();
        for (extra, code, says) in [
            (json!({"vlan": 5000}), 7, "invalid VLAN ID 5000"),
            (json!({"vlan": 10, "vlanTrunk": [{"id": 11}]}), 7, "cannot set vlan and vlanTrunk"),
            (json!({"vlanTrunk": [{"minID": 10, "maxID": 5}]}), 7, "minID is greater than maxID"),
            (json!({"vlanTrunk": [{"id": 0}]}), 7, "incorrect trunk id"),
            (json!({"vlanTrunk": [{"minID": 10}]}), 7, "a trunk entry is"),
            (json!({"vlan": 10, "isGateway": true}), 2, "isGateway with vlan"),
        ] {
            let msg = add(&cni, &c, extra.clone()).err(code);
            assert!(msg.contains(says), "{extra}: {msg}");
        }
        assert_eq!(links(), before, "a refused ADD left a link");
        assert_eq!(allocations(), Vec::<String>::new(), "a refused ADD holds an address");
    });
}
