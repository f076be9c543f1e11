//! The `firewall` and `tuning` plugins against the reference plugins (Debian
//! containernetworking-plugins in /usr/lib/cni): the same config gives the same result and
//! the same effect on traffic and interfaces, and each side's DEL undoes it. Skipped, with a
//! printed reason, where the reference is not installed.

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::net::rules;
use berth_tests::harness::{bin_dir, fw, isolated, sh, try_sh, web_server, Cni, Netns};

const REFERENCE: &str = "/usr/lib/cni";

fn reference(plugin: &str) -> bool {
    let ok = Path::new(REFERENCE).join(plugin).is_file();
    if !ok {
        println!("SKIP {plugin} differential: reference plugin not found in {REFERENCE} (apt-get install containernetworking-plugins)");
    }
    ok
}

/// A "container" `name` on its own bridge `br` with 10.`i`.0.2/24, wired by hand, and the
/// prevResult an interface plugin would have given.
fn container(name: &str, br: &str, i: u8) -> (Netns, Value) {
    sh(&format!("ip link add {br} type bridge && ip addr add 10.{i}.0.1/24 dev {br} && ip link set {br} up"));
    let ns = Netns::new(name);
    sh(&format!(
        "ip link add v{name} type veth peer name eth0 netns {name} && ip link set v{name} master {br} up && \
         ip -n {name} addr add 10.{i}.0.2/24 dev eth0 && ip -n {name} link set eth0 up && ip -n {name} route add default via 10.{i}.0.1"
    ));
    let prev = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": br}, {"name": format!("v{name}")}, {"name": "eth0", "sandbox": format!("/run/netns/{name}")}],
        "ips": [{"address": format!("10.{i}.0.2/24"), "gateway": format!("10.{i}.0.1"), "interface": 2}]
    });
    (ns, prev)
}

fn conf(ty: &str, extra: Value, prev: &Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "diffnet", "type": ty, "prevResult": prev});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string()
}

fn reaches(from: &Netns, ip: &str) -> bool {
    from.try_sh(&format!("curl -s --max-time 1 http://{ip}/")).1.contains("hello")
}

/// Both implementations, by plugin directory: (label, dir).
fn sides() -> [(&'static str, std::path::PathBuf); 2] {
    [("reference", REFERENCE.into()), ("berth", bin_dir())]
}

#[test]
fn firewall_opens_a_drop_policy_for_its_address_like_the_reference() {
    isolated(|| {
        if !reference("firewall") {
            return;
        }
        let cni = Cni::default();
        let (a, prev_a) = container("a", "bra", 1);
        let (b, _) = container("b", "brb", 2);
        let _web = web_server(&b, "hello");
        sh("sysctl -qw net.ipv4.ip_forward=1 && iptables -P FORWARD DROP");
        for (side, dir) in sides() {
            assert!(!reaches(&a, "10.2.0.2"), "{side}: the DROP policy lets traffic through before ADD");
            // The reference has only iptables: compare like with like.
            let c = conf("firewall", json!({"backend": "iptables"}), &prev_a);
            let res = cni.call_in(&dir, "firewall", "ADD", "ctr-a", "/run/netns/a", "eth0", &c).ok();
            assert_eq!(res["ips"], prev_a["ips"], "{side}: the result passes prevResult on");
            assert_eq!(res["interfaces"].as_array().map(Vec::len), Some(3));
            assert!(reaches(&a, "10.2.0.2"), "{side}: ADD does not let the container's traffic out");
            cni.call_in(&dir, "firewall", "CHECK", "ctr-a", "/run/netns/a", "eth0", &c).ok();
            cni.call_in(&dir, "firewall", "DEL", "ctr-a", "/run/netns/a", "eth0", &c).ok();
            assert!(!reaches(&a, "10.2.0.2"), "{side}: DEL leaves the container's traffic open");
            assert!(!sh("iptables-save -t filter").contains("10.1.0.2"), "{side}: rules for the address left after DEL");
            cni.call_in(&dir, "firewall", "DEL", "ctr-a", "/run/netns/a", "eth0", &c).ok();
        }
    });
}

#[test]
fn firewall_same_bridge_isolates_bridges_like_the_reference() {
    isolated(|| {
        if !reference("firewall") {
            return;
        }
        let cni = Cni::default();
        let (a, prev_a) = container("a", "bra", 1);
        let (b, prev_b) = container("b", "brb", 2);
        let (c, _) = container("c", "brc", 3);
        let _web = web_server(&b, "hello");
        let _web_c = web_server(&c, "hello");
        sh("sysctl -qw net.ipv4.ip_forward=1");
        for (side, dir) in sides() {
            assert!(reaches(&a, "10.2.0.2"), "{side}: bridges not routed before ADD");
            let extra = json!({"ingressPolicy": "same-bridge"});
            let (ca, cb) = (conf("firewall", extra.clone(), &prev_a), conf("firewall", extra, &prev_b));
            cni.call_in(&dir, "firewall", "ADD", "ctr-a", "/run/netns/a", "eth0", &ca).ok();
            cni.call_in(&dir, "firewall", "ADD", "ctr-b", "/run/netns/b", "eth0", &cb).ok();
            assert!(!reaches(&a, "10.2.0.2"), "{side}: isolated bridges still reach each other");
            assert!(!reaches(&b, "10.1.0.2"), "{side}: isolated bridges still reach each other");
            assert!(reaches(&a, "10.3.0.2"), "{side}: a bridge that asked for no isolation is cut off");
            cni.call_in(&dir, "firewall", "CHECK", "ctr-b", "/run/netns/b", "eth0", &cb).ok();
            cni.call_in(&dir, "firewall", "DEL", "ctr-a", "/run/netns/a", "eth0", &ca).ok();
            cni.call_in(&dir, "firewall", "DEL", "ctr-b", "/run/netns/b", "eth0", &cb).ok();
            if side == "reference" {
                // The reference keeps a bridge's isolation after its last DEL: start clean.
                sh("iptables -F CNI-ISOLATION-STAGE-1 && iptables -F CNI-ISOLATION-STAGE-2");
            } else {
                // berth drops it with the bridge's last attachment: nothing of either left.
                assert!(reaches(&a, "10.2.0.2"), "berth: isolation left after the last DEL");
                let d = fw::dump();
                assert!(!d.contains("bra") && !d.contains("10.1.0.2") && !d.contains("10.2.0.2"), "berth left rules:\n{d}");
            }
        }
    });
}

#[test]
fn firewall_plugin_rules_outlive_a_reconcile_and_come_back_after_a_flush() {
    isolated(|| {
        let cni = Cni::default();
        let (_a, prev_a) = container("a", "bra", 1);
        let c = conf("firewall", json!({"ingressPolicy": "same-bridge"}), &prev_a);
        cni.call("firewall", "ADD", "ctr-a", "/run/netns/a", "eth0", &c).ok();
        let netd = bin_dir().join("netd");
        // Only firewall-plugin records: a reconcile must not take their backend for unused.
        let out = sh(&format!("{} reconcile", netd.display()));
        assert!(out.contains("0 firewall-plugin and"), "{out}");
        cni.call("firewall", "CHECK", "ctr-a", "/run/netns/a", "eth0", &c).ok();
        // A firewall reload removes them; the reconcile puts them back, once.
        if fw::nft() {
            sh("nft flush ruleset");
        } else {
            sh("iptables -F && iptables -X");
        }
        cni.call("firewall", "CHECK", "ctr-a", "/run/netns/a", "eth0", &c).err(999);
        let out = sh(&format!("{} reconcile", netd.display()));
        assert!(out.contains("1 firewall-plugin and"), "{out}");
        cni.call("firewall", "CHECK", "ctr-a", "/run/netns/a", "eth0", &c).ok();
        // Compared as the harness normalises rules: iptables-save's timestamp comments
        // differ across a second boundary.
        let restored = rules();
        sh(&format!("{} reconcile", netd.display()));
        assert_eq!(rules(), restored, "a second reconcile changed the rules");
        // GC with no valid attachment takes the attachment's rules and its isolation.
        let gc = json!({"cniVersion": "1.1.0", "name": "diffnet", "type": "firewall", "cni.dev/valid-attachments": []});
        cni.call("firewall", "GC", "", "", "", &gc.to_string()).ok();
        assert!(!fw::mentions("10.1.0.2") && !fw::dump().contains("bra"), "{}", fw::dump());
        cni.call("firewall", "DEL", "ctr-a", "/run/netns/a", "eth0", &c).ok();
    });
}

/// The interface attributes tuning changes, as `ip -d link` shows them.
fn link_state(ns: &Netns) -> (String, String, bool, bool, String) {
    let j: Value = serde_json::from_str(&ns.sh("ip -j -d link show eth0")).unwrap();
    let l = &j[0];
    let flags: Vec<&str> = l["flags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    (
        l["address"].as_str().unwrap().to_string(),
        l["mtu"].to_string(),
        l["promiscuity"].as_u64().unwrap_or(0) > 0,
        flags.contains(&"ALLMULTI"),
        l["txqlen"].to_string(),
    )
}

#[test]
fn tuning_sets_and_restores_what_the_reference_does() {
    isolated(|| {
        if !reference("tuning") {
            return;
        }
        let cni = Cni::default();
        let (t, prev) = container("t", "brt", 4);
        let before = link_state(&t);
        let sysctls = || (t.sh("cat /proc/sys/net/core/somaxconn"), t.sh("cat /proc/sys/net/ipv4/conf/eth0/arp_filter"));
        let (host_somaxconn, sysctls_before) = (sh("cat /proc/sys/net/core/somaxconn"), sysctls());
        let c = conf(
            "tuning",
            json!({"sysctl": {"net.core.somaxconn": "500", "net.ipv4.conf.eth0.arp_filter": "1"},
                   "mac": "c2:00:00:00:00:42", "mtu": 1400, "promisc": true, "allmulti": true}),
            &prev,
        );
        let mut results = Vec::new();
        // Each side ADDs; the same side, then the other, DELs: the backup file is shared.
        for (adder, deleter) in [(0, 0), (1, 1), (0, 1), (1, 0)] {
            let (add_side, add_dir) = &sides()[adder];
            let res = cni.call_in(add_dir, "tuning", "ADD", "ctr-t", "/run/netns/t", "eth0", &c).ok();
            assert_eq!(res["interfaces"][2]["mac"], "c2:00:00:00:00:42", "{add_side}: the result carries the new MAC");
            results.push((res["ips"].clone(), res["interfaces"].clone()));
            let after = link_state(&t);
            assert_eq!((after.0.as_str(), after.1.as_str(), after.2, after.3), ("c2:00:00:00:00:42", "1400", true, true), "{add_side}");
            assert_eq!(sysctls(), ("500\n".into(), "1\n".into()), "{add_side}: sysctls in the container's namespace");
            assert_eq!(sh("cat /proc/sys/net/core/somaxconn"), host_somaxconn, "{add_side}: the host's sysctl changed");
            if adder == 1 {
                cni.call_in(add_dir, "tuning", "CHECK", "ctr-t", "/run/netns/t", "eth0", &c).ok();
            }
            let (del_side, del_dir) = &sides()[deleter];
            cni.call_in(del_dir, "tuning", "DEL", "ctr-t", "/run/netns/t", "eth0", &c).ok();
            assert_eq!(link_state(&t), before, "{add_side} ADD, {del_side} DEL: the interface is not restored");
            // Sysctls are not restored by either (the namespace goes with the container).
            t.sh(&format!("echo {} > /proc/sys/net/core/somaxconn", sysctls_before.0.trim()));
            t.sh("echo 0 > /proc/sys/net/ipv4/conf/eth0/arp_filter");
        }
        assert_eq!(results[0], results[1], "results differ between the reference and berth");
        assert!(!Path::new("/run/cni/tuning/ctr-t_eth0.json").exists(), "backup left after DEL");
    });
}

#[test]
fn tuning_refuses_what_is_not_the_containers_and_changes_nothing() {
    isolated(|| {
        let cni = Cni::default();
        let (t, prev) = container("t", "brt", 4);
        let before = (link_state(&t), t.sh("cat /proc/sys/net/core/somaxconn"));
        let call = |extra: Value| cni.call("tuning", "ADD", "ctr-t", "/run/netns/t", "eth0", &conf("tuning", extra, &prev));
        for (extra, why) in [
            (json!({"sysctl": {"kernel.pid_max": "1000", "net.core.somaxconn": "500"}}), "net"),
            (json!({"sysctl": {"net.core.somaxconn": "500", "net/../kernel/pid_max": "1"}}), "invalid"),
            (json!({"mtu": 1400, "mac": "01:00:5e:00:00:01"}), "multicast"),
            (json!({"mtu": 20}), "mtu"),
        ] {
            let msg = call(extra).err(7);
            assert!(msg.contains(why), "{msg}");
            assert_eq!((link_state(&t), t.sh("cat /proc/sys/net/core/somaxconn")), before, "a refused ADD changed something");
        }
        // The allowlist: only what it matches.
        std::fs::write(
            "/run/berth/allowlist.conf",
            "# the sysctls containers may set\n^net\\.core\\.somaxconn$\n^net\\.ipv4\\.conf\\.IFNAME\\.arp_filter$\n",
        )
        .unwrap();
        let with_list = |extra: Value| {
            let (ok, out) = try_sh(&format!(
                "echo '{}' | BERTH_TUNING_ALLOWLIST=/run/berth/allowlist.conf CNI_COMMAND=ADD CNI_CONTAINERID=ctr-t CNI_NETNS=/run/netns/t CNI_IFNAME=eth0 CNI_PATH={dir} {dir}/tuning",
                conf("tuning", extra, &prev),
                dir = bin_dir().display()
            ));
            (ok, out)
        };
        let (ok, out) = with_list(json!({"sysctl": {"net.ipv4.tcp_syncookies": "0"}}));
        assert!(!ok && out.contains("not allowed"), "{out}");
        let (ok, out) = with_list(json!({"sysctl": {"net.core.somaxconn": "600", "net.ipv4.conf.IFNAME.arp_filter": "1"}, "txQLen": 42}));
        assert!(ok, "{out}");
        assert_eq!(t.sh("cat /proc/sys/net/core/somaxconn").trim(), "600");
        assert_eq!(t.sh("cat /proc/sys/net/ipv4/conf/eth0/arp_filter").trim(), "1");
        assert_eq!(link_state(&t).4, "42");
        cni.call("tuning", "DEL", "ctr-t", "/run/netns/t", "eth0", &conf("tuning", json!({"txQLen": 42}), &prev)).ok();
        assert_eq!(link_state(&t).4, before.0 .4, "txqueuelen restored");
    });
}
