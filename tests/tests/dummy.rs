//! The dummy plugin. This machine's kernel (and CI's) is built without the dummy kind:
//! there the test prints its SKIP line and shows the clean refusal instead (code 50 naming
//! the kind, no address held, no link); where the kernel has it, a dummy carries its
//! addresses and goes with DEL. The request itself is held to iproute2's by a golden test
//! (`netlink::link::tests::the_dummy_request_is_iproute2s`).

use serde_json::json;

use berth_tests::harness::{isolated, kernel_has, sh, Cni, Netns};

fn conf() -> String {
    json!({"cniVersion": "1.0.0", "name": "dum", "type": "dummy",
        "ipam": {"type": "host-local", "subnet": "192.0.2.0/24", "dataDir": "/run/berth/hl"}})
    .to_string()
}

fn held() -> usize {
    sh("ls /run/berth/hl/dum 2>/dev/null | grep -c 192.0.2 || true").trim().parse().unwrap_or(0)
}

#[test]
fn dummy_links_carry_their_addresses() {
    isolated(|| {
        let c1 = Netns::new("c1");
        let path = c1.path().to_str().unwrap().to_string();
        let cni = Cni::default();
        if !kernel_has("dummy", "type dummy", "dummy_links_carry_their_addresses") {
            let msg = cni.call("dummy", "ADD", "c1", &path, "eth0", &conf()).err(50);
            assert!(msg.contains("lacks the dummy link kind"), "{msg}");
            assert_eq!(held(), 0, "the refused ADD kept its address");
            assert_eq!(c1.sh("ip -o link show | grep -vc ' lo:' || true").trim(), "0");
            assert_eq!(cni.call("dummy", "DEL", "c1", &path, "eth0", &conf()).code, 0);
            return;
        }
        let r = cni.call("dummy", "ADD", "c1", &path, "eth0", &conf()).ok();
        assert_eq!(r["interfaces"][0]["name"], "eth0");
        let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
        assert!(c1.sh("ip -d -o addr show eth0").contains(&addr));
        assert!(c1.sh("ip -d link show eth0").contains("dummy"));
        assert_eq!(held(), 1);
        assert_eq!(cni.call("dummy", "DEL", "c1", &path, "eth0", &conf()).code, 0);
        assert_eq!((held(), c1.sh("ip -o link show | grep -vc ' lo:' || true").trim().to_string()), (0, "0".to_string()));
        assert_eq!(cni.call("dummy", "DEL", "c1", &path, "eth0", &conf()).code, 0);
    });
}
