//! The CNI protocol: versions, result shapes, error codes, bad input leaving no state,
//! VERSION, STATUS, loopback.

use serde_json::{json, Value};

use berth_tests::harness::net::{allocations, bridge_conf, links, rules};
use berth_tests::harness::{isolated, sh, Cni, Netns};

const NS: &str = "/run/netns/c";

/// `conf` with the key at `path` set to `v` (created if missing).
fn with(mut conf: Value, path: &str, v: Value) -> String {
    let (parent, key) = path.rsplit_once('/').expect("path");
    conf.pointer_mut(parent).and_then(Value::as_object_mut).unwrap_or_else(|| panic!("no {parent}")).insert(key.to_string(), v);
    conf.to_string()
}

#[test]
fn results_have_the_shape_of_each_version() {
    isolated(|| {
        let cni = Cni::default();
        for (i, ver) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].iter().enumerate() {
            let name = format!("c{i}");
            let ns = Netns::new(&name);
            let r = cni.call("bridge", "ADD", &name, ns.path().to_str().unwrap(), "eth0", &bridge_conf(ver).to_string()).ok();
            assert_eq!(r["cniVersion"], *ver);
            let ip = &r["ips"][0];
            if ver.starts_with('0') {
                assert_eq!(ip["version"], "4", "{ver}: {r}");
            } else {
                assert!(ip.get("version").is_none(), "{ver}: {r}");
            }
            assert_eq!(ip["interface"], 2);
            assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
            assert_eq!(r["interfaces"][0]["name"], "docker0");
            assert!(r["interfaces"][2]["mac"].as_str().unwrap().len() == 17);
            assert_eq!(r["interfaces"][2].get("mtu").is_some(), *ver == "1.1.0", "{ver}: {r}");
            assert_eq!(r["routes"][0], json!({"dst": "0.0.0.0/0", "gw": "172.17.0.1"}));
            // host-local alone
            let hl = json!({"cniVersion": ver, "name": "hl", "type": "host-local", "subnet": "10.10.0.0/24", "ipam": {"type": "host-local", "subnet": "10.10.0.0/24"}});
            let r = cni.call("host-local", "ADD", &name, ns.path().to_str().unwrap(), "eth0", &hl.to_string()).ok();
            assert_eq!(r["ips"][0]["address"], format!("10.10.0.{}/24", i + 2));
            assert!(r.get("interfaces").is_none());
        }
    });
}

/// Plugins start at C `main` (Rust's runtime set-up skipped): a runtime that closed its
/// end of stdout gets exit 1, as from a failed write, not a plugin killed by SIGPIPE.
#[test]
fn a_plugin_whose_stdout_is_closed_fails_instead_of_dying() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    drop(reader);
    for p in ["bridge", "portmap", "host-local"] {
        let out = std::process::Command::new(berth_tests::harness::plugin_dir().join(p))
            .env("CNI_COMMAND", "VERSION")
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().expect("dup"))
            .output()
            .expect("run the plugin");
        assert_eq!(out.status.signal(), None, "{p} was killed by a signal");
        assert_eq!(out.status.code(), Some(1), "{p}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn version_and_status() {
    isolated(|| {
        let cni = Cni::default();
        for p in ["bridge", "host-local", "portmap", "loopback"] {
            let v = cni.call(p, "VERSION", "", "", "", "").ok();
            assert_eq!(v["cniVersion"], "1.1.0");
            assert_eq!(v["supportedVersions"], json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]));
        }
        let conf = bridge_conf("1.1.0").to_string();
        assert_eq!(cni.call("bridge", "STATUS", "", "", "", &conf).code, 0);
        // STATUS and GC are 1.1.0 commands; CHECK needs 0.4.0
        assert!(cni.call("bridge", "STATUS", "", "", "", &bridge_conf("1.0.0").to_string()).err(1).contains("does not allow"));
        assert!(cni.call("bridge", "CHECK", "x", NS, "eth0", &bridge_conf("0.3.1").to_string()).err(1).contains("does not allow"));
        // a data dir that cannot be written is "not available"
        sh("touch /var/lib/cni/file");
        let bad =
            with(bridge_conf("1.1.0"), "/ipam", json!({"type": "host-local", "subnet": "10.0.0.0/24", "dataDir": "/var/lib/cni/file"}));
        let out = cni.call("host-local", "STATUS", "", "", "", &bad);
        assert_ne!(out.code, 0);
    });
}

#[test]
fn bad_input_gets_the_right_code_and_changes_nothing() {
    isolated(|| {
        let cni = Cni::default();
        let _c = Netns::new("c");
        let before = (rules(), links(), allocations());
        let ok = bridge_conf("1.0.0");
        let cases: Vec<(String, u64, &str)> = vec![
            (with(ok.clone(), "/cniVersion", json!("0.2.0")), 1, "incompatible CNI versions"),
            (with(ok.clone(), "/cniVersion", json!("9.9.9")), 1, "incompatible CNI versions"),
            ("{\"cniVersion\": \"1.0.0\", \"name\": ".into(), 6, "failed to parse"),
            ("[1, 2]".into(), 6, "not a JSON object"),
            (with(ok.clone(), "/ipam/subnet", json!("172.17.0.0/33")), 7, "not a CIDR"),
            (with(ok.clone(), "/ipam/subnet", json!("banana")), 7, "not a CIDR"),
            (
                with(ok.clone(), "/ipam", json!({"type": "host-local", "subnet": "10.0.0.0/24", "rangeStart": "10.0.1.5"})),
                7,
                "rangeStart 10.0.1.5 not in network 10.0.0.0/24",
            ),
            (with(ok.clone(), "/ipam", json!({"type": "host-local"})), 7, "no ranges"),
            (with(ok.clone(), "/ipam", json!({"type": "nonexistent"})), 7, "failed to find plugin"),
            (with(ok.clone(), "/bridge", json!("a/b")), 7, "invalid interface name"),
            // Injection: a newline in a name would start an iptables-restore line of its own.
            (with(ok.clone(), "/name", json!("berth\n-A INPUT -j ACCEPT")), 7, "invalid network name"),
            (with(ok.clone(), "/bridge", json!("br0\n-F")), 7, "invalid interface name"),
            (with(ok.clone(), "/gatewayMode", json!("open")), 7, "gatewayMode"),
            (with(ok.clone(), "/mtu", json!("big")), 7, "invalid bridge configuration"),
        ];
        for (conf, code, msg) in &cases {
            let got = cni.call("bridge", "ADD", "c", NS, "eth0", conf).err(*code);
            assert!(got.contains(msg), "expected {msg:?} in {got:?} for {conf}");
            assert_eq!((rules(), links(), allocations()), before, "state changed by {conf}");
        }
        // portmap: port 0 / > 65535 / bad protocol, with a valid prevResult
        let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": NS}], "ips": [{"address": "172.17.0.9/16", "interface": 0}]});
        for (pm, msg) in [
            (json!({"hostPort": 0, "containerPort": 80}), "hostPort 0 out of range"),
            (json!({"hostPort": 70000, "containerPort": 80}), "hostPort 70000 out of range"),
            (json!({"hostPort": 80, "containerPort": 65536}), "containerPort 65536 out of range"),
            (json!({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}), "unknown protocol"),
            (json!({"hostPort": 80, "containerPort": 80, "hostIP": "nope"}), "invalid hostIP"),
        ] {
            let conf = json!({"cniVersion": "1.0.0", "name": "berth", "type": "portmap", "runtimeConfig": {"portMappings": [pm]}, "prevResult": prev});
            let got = cni.call("portmap", "ADD", "c", NS, "eth0", &conf.to_string()).err(7);
            assert!(got.contains(msg), "{got}");
            assert_eq!((rules(), links(), allocations()), before);
        }
        // A newline in a condition, names from a forged prevResult: refused, nothing applied.
        let pm = json!([{"hostPort": 8080, "containerPort": 80}]);
        for cond in [json!(["-s", "10.0.0.0/8\n-A INPUT -j ACCEPT"]), json!(["-m comment\r"])] {
            let conf = json!({"cniVersion": "1.0.0", "name": "berth", "type": "portmap", "conditionsV4": cond, "runtimeConfig": {"portMappings": pm}, "prevResult": prev});
            for cmd in ["ADD", "DEL"] {
                let got = cni.call("portmap", cmd, "c", NS, "eth0", &conf.to_string()).err(7);
                assert!(got.contains("control characters"), "{got}");
            }
            assert_eq!((rules(), links(), allocations()), before);
        }
        for bad in ["all", "../../ipv4/conf/lo", "x\ny"] {
            let forged =
                json!({"cniVersion": "1.0.0", "interfaces": [{"name": bad}], "ips": [{"address": "172.17.0.9/16", "interface": 0}]});
            let conf = json!({"cniVersion": "1.0.0", "name": "berth", "type": "portmap", "runtimeConfig": {"portMappings": pm}, "prevResult": forged});
            assert!(cni.call("portmap", "ADD", "c", NS, "eth0", &conf.to_string()).err(7).contains("prevResult"));
            assert_eq!((rules(), links(), allocations()), before);
        }
        assert!(cni.call("bridge", "ADD", "c", NS, "all", &ok.to_string()).err(4).contains("CNI_IFNAME"));
        // environment
        let out = cni.call("bridge", "ADD", "c", "/run/netns/missing", "eth0", &ok.to_string());
        assert!(out.err(4).contains("/run/netns/missing"));
        assert_eq!((rules(), links(), allocations()), before, "missing netns changed state");
        assert!(cni.call("bridge", "ADD", "bad id!", NS, "eth0", &ok.to_string()).err(4).contains("CNI_CONTAINERID"));
        assert!(cni.call("bridge", "ADD", "c", NS, "this-name-is-too-long", &ok.to_string()).err(4).contains("CNI_IFNAME"));
        assert!(cni.call("bridge", "BOGUS", "c", NS, "eth0", &ok.to_string()).err(4).contains("CNI_COMMAND"));
        assert!(cni.call("bridge", "ADD", "c", "", "eth0", &ok.to_string()).err(4).contains("CNI_NETNS"));
        // CHECK of an unknown container
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "172.17.0.9/16"}]});
        let mut c = ok.clone();
        c["prevResult"] = prev;
        assert!(cni.call("bridge", "CHECK", "ghost", NS, "eth0", &c.to_string()).err(3).contains("no address allocated"));
    });
}

#[test]
fn exhausted_range_says_so_and_frees_nothing_else() {
    isolated(|| {
        let cni = Cni::default();
        let conf =
            with(bridge_conf("1.0.0"), "/ipam", json!({"type": "host-local", "subnet": "10.9.0.0/29", "dataDir": "/var/lib/cni/networks"}));
        let conf = with(serde_json::from_str(&conf).unwrap(), "/bridge", json!("br9"));
        for i in 0..5 {
            let ns = Netns::new(&format!("x{i}"));
            cni.call("bridge", "ADD", &ns.name, ns.path().to_str().unwrap(), "eth0", &conf).ok();
        }
        let before = (rules(), links(), allocations());
        let ns = Netns::new("x5");
        let msg = cni.call("bridge", "ADD", "x5", ns.path().to_str().unwrap(), "eth0", &conf).err(100);
        assert!(msg.contains("no IP addresses available in range set 10.9.0.1-10.9.0.6"), "{msg}");
        assert_eq!((rules(), links(), allocations()), before);
    });
}

#[test]
fn loopback_brings_lo_up() {
    isolated(|| {
        let cni = Cni::default();
        sh("ip netns add raw");
        assert!(sh("ip -n raw -o link show lo").contains("state DOWN"));
        let conf = json!({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}).to_string();
        let r = cni.call("loopback", "ADD", "raw", "/run/netns/raw", "lo", &conf).ok();
        assert_eq!(r["ips"][0]["address"], "127.0.0.1/8");
        assert!(sh("ip -n raw -o link show lo").contains("UP"));
        assert_eq!(cni.call("loopback", "CHECK", "raw", "/run/netns/raw", "lo", &conf).code, 0);
        assert_eq!(cni.call("loopback", "DEL", "raw", "/run/netns/gone", "lo", &conf).code, 0);
    });
}
