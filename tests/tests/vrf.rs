//! The vrf plugin chained after a veth leg (ptp). Where the kernel has VRFs: the VRF
//! is made with the asked table, the interface enslaved, its gateway routes in the VRF's
//! table and out of main, traffic bound to the VRF reaches the gateway, a second member
//! keeps the VRF through the first one's DEL and the last DEL removes it — the same as
//! the reference's where it exists. This kernel (and CI's) lacks the kind: the test
//! prints its SKIP line and shows the clean refusal (code 50 naming the kind, nothing
//! made, the interface as it was). Bad input is refused with nothing changed either way.

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::plugin::reference;
use berth_tests::harness::{bin_dir, isolated, kernel_has, Cni, Netns};

/// ptp with a static address in 10.7.0.0/24 (the default route through it) or, for the
/// second leg, 10.8.0.0/24 (no default route: one per table).
fn ptp(ip: &str) -> String {
    let (gw, routes) = if ip.starts_with("10.7.") { ("10.7.0.1", json!([{"dst": "0.0.0.0/0"}])) } else { ("10.8.0.1", json!([])) };
    json!({"cniVersion": "1.0.0", "name": "v", "type": "ptp",
        "ipam": {"type": "static", "addresses": [{"address": format!("{ip}/24"), "gateway": gw}], "routes": routes}})
    .to_string()
}

fn vrf(prev: &Value, extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "v", "type": "vrf", "vrfname": "blue", "prevResult": prev});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c.to_string()
}

fn call(dir: &Path, ty: &str, cmd: &str, c: &Netns, ifname: &str, conf: &str) -> berth_tests::harness::Outcome {
    Cni::default().call_in(dir, ty, cmd, &format!("vrf-{ifname}"), c.path().to_str().unwrap(), ifname, conf)
}

/// The container's links and routes, as text.
fn state(c: &Netns) -> String {
    c.sh("ip -o link show | cut -d' ' -f2-3 | sed 's/@if[0-9]*//'; ip route show table all | grep -v -e '^local' -e '^broadcast' -e '^multicast' -e 'fe80' -e 'ff00'")
}

/// ptp on eth0 and eth1, vrf on both: the VRF's life through `dir`'s plugins.
fn vrf_life(dir: &Path, c: &Netns) -> Vec<String> {
    let mut seen = Vec::new();
    let r0 = call(dir, "ptp", "ADD", c, "eth0", &ptp("10.7.0.10")).ok();
    let r1 = call(dir, "ptp", "ADD", c, "eth1", &ptp("10.8.0.11")).ok();
    call(dir, "vrf", "ADD", c, "eth0", &vrf(&r0, json!({"table": 42}))).ok();
    call(dir, "vrf", "ADD", c, "eth1", &vrf(&r1, json!({"table": 42}))).ok();
    let s = state(c);
    assert!(c.sh("ip -d link show blue").contains("vrf table 42"), "{}", c.sh("ip -d link show blue"));
    assert!(s.contains("eth0") && c.sh("ip -o link show eth0").contains("master blue"), "{s}");
    assert!(c.sh("ip route show table 42").contains("default via 10.7.0.1 dev eth0"), "{s}");
    assert!(!c.sh("ip route show table main").contains("eth0"), "eth0's routes stayed in main: {s}");
    assert!(c.try_sh("busybox ping -c1 -W1 -I blue 10.7.0.1").0, "the VRF does not reach the gateway");
    assert_eq!(call(dir, "vrf", "CHECK", c, "eth0", &vrf(&r0, json!({}))).code, 0);
    seen.push(s);
    assert_eq!(call(dir, "vrf", "DEL", c, "eth0", &vrf(&r0, json!({}))).code, 0);
    assert!(c.try_sh("ip link show blue").0, "the VRF went with a member left");
    assert!(!c.sh("ip -o link show eth0").contains("master"), "eth0 still enslaved");
    assert_eq!(call(dir, "vrf", "DEL", c, "eth1", &vrf(&r1, json!({}))).code, 0);
    assert!(!c.try_sh("ip link show blue").0, "the VRF stayed without members");
    assert_eq!(call(dir, "vrf", "DEL", c, "eth1", &vrf(&r1, json!({}))).code, 0, "second DEL");
    seen.push(state(c));
    for (i, ip) in [("eth0", "10.7.0.10"), ("eth1", "10.8.0.11")] {
        assert_eq!(call(dir, "ptp", "DEL", c, i, &ptp(ip)).code, 0);
    }
    seen
}

#[test]
fn vrf_enslaves_and_routes_as_the_reference() {
    isolated(|| {
        let c = Netns::new("c1");
        if !kernel_has("vrf", "type vrf table 9", "vrf_enslaves_and_routes_as_the_reference") {
            // The clean refusal: code 50 naming the kind, no VRF, eth0 as it was.
            let r = call(&bin_dir(), "ptp", "ADD", &c, "eth0", &ptp("10.7.0.10")).ok();
            let before = state(&c);
            let msg = call(&bin_dir(), "vrf", "ADD", &c, "eth0", &vrf(&r, json!({}))).err(50);
            assert!(msg.contains("lacks the vrf link kind"), "{msg}");
            assert_eq!(state(&c), before, "the refused ADD changed the container");
            assert_eq!(call(&bin_dir(), "vrf", "DEL", &c, "eth0", &vrf(&r, json!({}))).code, 0);
            return;
        }
        let ours = vrf_life(&bin_dir(), &c);
        if let Some(dir) = reference("vrf", "vrf_enslaves_and_routes_as_the_reference") {
            assert_eq!(vrf_life(&dir, &c), ours, "the reference's VRF life differs (berth's second)");
        }
    });
}

#[test]
fn vrf_refuses_bad_input_with_nothing_changed() {
    isolated(|| {
        let c = Netns::new("c1");
        let ours = bin_dir();
        let r = call(&ours, "ptp", "ADD", &c, "eth0", &ptp("10.7.0.10")).ok();
        let before = state(&c);
        let mut old = serde_json::from_str::<Value>(&vrf(&r, json!({}))).unwrap();
        old["cniVersion"] = json!("0.3.0");
        for (conf, code) in [
            (json!({"cniVersion": "1.0.0", "name": "v", "type": "vrf", "vrfname": "blue"}).to_string(), 7),
            (vrf(&r, json!({"vrfname": ""})), 7),
            (vrf(&r, json!({"vrfname": "a/b"})), 7),
            (vrf(&r, json!({"vrfname": "blue\nx"})), 7),
            (vrf(&r, json!({"vrfname": "sixteen-chars-xx"})), 7),
            (vrf(&r, json!({"table": 255})), 7),
            (vrf(&r, json!({"vrfname": "eth0"})), 7),
            (old.to_string(), 1),
        ] {
            let msg = call(&ours, "vrf", "ADD", &c, "eth0", &conf).err(code);
            assert!(!msg.is_empty());
        }
        let v = Cni::default().call_in(&ours, "vrf", "VERSION", "", "", "", "{}");
        assert_eq!(v.json["supportedVersions"], json!(["0.3.1", "0.4.0", "1.0.0", "1.1.0"]));
        assert_eq!(state(&c), before, "a refused ADD changed the container");
    });
}
