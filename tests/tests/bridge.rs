//! bridge + host-local: addresses, routes, connectivity, DEL, CHECK, GC, parallelism.

use berth_tests::harness::net::{allocations, bridge_conf, conflist, links, rt, rules, runner};
use berth_tests::harness::{fw, isolated, sh, Cni, Netns};

fn add(cni: &Cni, cid: &str, ns: &Netns) -> serde_json::Value {
    cni.call("bridge", "ADD", cid, ns.path().to_str().unwrap(), "eth0", &bridge_conf("1.0.0").to_string()).ok()
}

fn del(cni: &Cni, cid: &str, netns: &str) {
    cni.call("bridge", "DEL", cid, netns, "eth0", &bridge_conf("1.0.0").to_string()).ok();
}

#[test]
fn two_containers_get_addresses_and_reach_each_other() {
    isolated(|| {
        let cni = Cni::default();
        let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
        let r1 = add(&cni, "c1", &c1);
        assert_eq!(r1["ips"][0]["address"], "172.17.0.2/16");
        assert_eq!(r1["ips"][0]["gateway"], "172.17.0.1");
        assert_eq!(r1["interfaces"][2]["sandbox"], "/run/netns/c1");
        assert!(sh("ip -o addr show dev docker0").contains("172.17.0.1/16"));
        assert!(c1.sh("ip -o addr show dev eth0").contains("172.17.0.2/16"));
        assert!(c1.sh("ip route").contains("default via 172.17.0.1 dev eth0"));
        let r2 = add(&cni, "c2", &c2);
        assert_eq!(r2["ips"][0]["address"], "172.17.0.3/16");
        c1.sh("busybox ping -c1 -W2 172.17.0.3");
        c2.sh("busybox ping -c1 -W2 172.17.0.2");
        c1.sh("busybox ping -c1 -W2 172.17.0.1");
        // The bridge keeps its MAC as ports come and go (it was pinned at creation).
        let mac = sh("cat /sys/class/net/docker0/address");
        del(&cni, "c2", "/run/netns/c2");
        assert_eq!(mac, sh("cat /sys/class/net/docker0/address"));
        // host end is a bridge port with hairpin on
        let veth = r1["interfaces"][1]["name"].as_str().unwrap().to_string();
        assert_eq!(sh(&format!("cat /sys/class/net/{veth}/brport/hairpin_mode")).trim(), "1");
    });
}

#[test]
fn a_full_bridge_refuses_the_next_container_clearly_and_keeps_nothing_of_it() {
    isolated(|| {
        let cni = Cni::default();
        let c1 = Netns::new("c1");
        add(&cni, "c1", &c1);
        // The kernel's limit: 1023 ports (BR_MAX_PORTS); c1 has one, veths of the test the rest.
        let script: String = (0..1022).map(|i| format!("link add fp{i} master docker0 type veth peer name fq{i}\n")).collect();
        std::fs::write("/run/berth/fill.batch", script).unwrap();
        sh("ip -batch /run/berth/fill.batch");
        let (base_links, base_allocs) = (links(), allocations());
        let c2 = Netns::new("c2");
        let msg = cni.call("bridge", "ADD", "c2", "/run/netns/c2", "eth0", &bridge_conf("1.0.0").to_string()).err(100);
        assert!(msg.contains("bridge docker0 is full"), "{msg}");
        assert_eq!(links(), base_links, "a link left by the refused ADD");
        assert_eq!(allocations(), base_allocs, "an address kept by the refused ADD");
        assert_eq!(c2.sh("ip -o link").lines().count(), 1, "the container got an interface");
        // A port freed is a port for the next container.
        sh("ip link del fp0");
        let r = add(&cni, "c2", &c2);
        // .3 was handed out to the refused ADD and given back; round robin goes on after it.
        assert_eq!(r["ips"][0]["address"], "172.17.0.4/16");
    });
}

#[test]
fn del_removes_link_address_and_rules_and_is_idempotent() {
    isolated(|| {
        let cni = Cni::default();
        let run = runner();
        let list = conflist("1.0.0");
        let c1 = Netns::new("c1");
        run.add(&list, &rt("c1", "/run/netns/c1", &[])).unwrap();
        let (base_rules, base_links, base_allocs) = (rules(), links(), allocations());

        let c2 = Netns::new("c2");
        let cfg = rt("c2", "/run/netns/c2", &[(4000, 80, "tcp", ""), (5353, 53, "udp", "")]);
        let res = run.add(&list, &cfg).unwrap();
        assert!(rules().len() > base_rules.len());
        assert_eq!(allocations().len(), 2);
        run.del(&list, &cfg, Some(&res)).unwrap();
        assert_eq!(rules(), base_rules, "rules left after DEL");
        assert_eq!(links(), base_links, "links left after DEL");
        assert_eq!(allocations(), base_allocs, "allocation left after DEL");
        // DEL twice
        run.del(&list, &cfg, Some(&res)).unwrap();
        // DEL with no prior ADD
        run.del(&list, &rt("never", "/run/netns/c2", &[(4000, 80, "tcp", "")]), None).unwrap();
        // DEL after the netns is gone: address, rules and host veth all go
        let res = run.add(&list, &cfg).unwrap();
        c2.delete();
        run.del(&list, &cfg, Some(&res)).unwrap();
        assert_eq!(rules(), base_rules);
        assert_eq!(allocations(), base_allocs);
        assert_eq!(links(), base_links);
        // the freed address is handed out again
        let c3 = Netns::new("c3");
        let r = add(&cni, "c3", &c3);
        // .3 and .4 were handed out and freed; round robin continues after the last reserved
        assert_eq!(r["ips"][0]["address"], "172.17.0.5/16");
        drop(c1);
    });
}

#[test]
fn check_fails_after_manual_changes() {
    isolated(|| {
        let run = runner();
        let list = conflist("1.0.0");
        let c1 = Netns::new("c1");
        let cfg = rt("c1", "/run/netns/c1", &[(4000, 80, "tcp", "")]);
        let res = run.add(&list, &cfg).unwrap();
        run.check(&list, &cfg, &res).unwrap();
        c1.sh("ip addr del 172.17.0.2/16 dev eth0");
        let err = run.check(&list, &cfg, &res).unwrap_err();
        assert!(err.msg.contains("lacks address 172.17.0.2/16"), "{err}");
        c1.sh("ip addr add 172.17.0.2/16 dev eth0");
        run.check(&list, &cfg, &res).unwrap();
        fw::delete_dnat(4000);
        let err = run.check(&list, &cfg, &res).unwrap_err();
        let named = if fw::nft() {
            err.msg.contains("lacks the element of any4 for 4000->80/tcp")
        } else {
            err.msg.contains("rule missing") && err.msg.contains("DNAT")
        };
        assert!(named, "{err}");
        // DEL still cleans up what is left
        let before = rules().len();
        run.del(&list, &cfg, Some(&res)).unwrap();
        assert!(rules().len() < before);
        assert!(!fw::mentions("172.17.0.2"));
    });
}

#[test]
fn gc_removes_attachments_not_listed() {
    isolated(|| {
        let run = runner();
        let list = conflist("1.1.0");
        let (_c1, _c2) = (Netns::new("c1"), Netns::new("c2"));
        run.add(&list, &rt("c1", "/run/netns/c1", &[(4000, 80, "tcp", "")])).unwrap();
        run.add(&list, &rt("c2", "/run/netns/c2", &[(4001, 80, "tcp", "")])).unwrap();
        assert_eq!(allocations(), ["172.17.0.2", "172.17.0.3"]);
        let keep = [berth_cni::types::Attachment { container_id: "c1".into(), ifname: "eth0".into() }];
        run.gc(&list, &keep).unwrap();
        assert_eq!(allocations(), ["172.17.0.2"]);
        assert!(!fw::mentions("172.17.0.3"), "c2 rules left:\n{}", fw::dump());
        assert!(fw::publishes(4000) && fw::network_rules("172.17.0.0/16") == 1, "c1 rules gone:\n{}", fw::dump());
        // GC with nothing valid empties the network
        run.gc(&list, &[]).unwrap();
        assert!(allocations().is_empty());
        assert!(!fw::mentions("172.17.0.2") && fw::network_rules("172.17.0.0/16") == 0, "{}", fw::dump());
    });
}

#[test]
fn parallel_adds_get_distinct_addresses_and_parallel_dels_leave_nothing() {
    isolated(|| {
        let cni = Cni::default();
        let conf = bridge_conf("1.0.0").to_string();
        let names: Vec<String> = (0..32).map(|i| format!("p{i}")).collect();
        for n in &names {
            Netns::new(n);
        }
        let base_rules = {
            // establish base chains first so the comparison is about per-container rules
            let ns = Netns::new("warm");
            add(&cni, "warm", &ns);
            del(&cni, "warm", "/run/netns/warm");
            rules()
        };
        let base_links = links();
        let addrs: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = names
                .iter()
                .map(|n| {
                    let (cni, conf) = (&cni, &conf);
                    s.spawn(move || {
                        cni.call("bridge", "ADD", n, &format!("/run/netns/{n}"), "eth0", conf).ok()["ips"][0]["address"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut uniq = addrs.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 32, "duplicate addresses: {addrs:?}");
        assert_eq!(allocations().len(), 32);
        std::thread::scope(|s| {
            for n in &names {
                let (cni, conf) = (&cni, &conf);
                s.spawn(move || cni.call("bridge", "DEL", n, &format!("/run/netns/{n}"), "eth0", conf).ok());
            }
        });
        assert!(allocations().is_empty());
        assert_eq!(rules(), base_rules);
        assert_eq!(links(), base_links);
    });
}

#[test]
fn port_isolation_keeps_isolated_containers_apart_and_the_host_reachable() {
    isolated(|| {
        let cni = Cni::default();
        let mut iso = bridge_conf("1.0.0");
        iso["portIsolation"] = true.into();
        let (c1, c2, c3) = (Netns::new("c1"), Netns::new("c2"), Netns::new("c3"));
        let r1 = cni.call("bridge", "ADD", "c1", "/run/netns/c1", "eth0", &iso.to_string()).ok();
        cni.call("bridge", "ADD", "c2", "/run/netns/c2", "eth0", &iso.to_string()).ok();
        add(&cni, "c3", &c3);
        let veth = r1["interfaces"][1]["name"].as_str().unwrap().to_string();
        assert_eq!(sh(&format!("cat /sys/class/net/{veth}/brport/isolated")).trim(), "1");
        // Isolated ports: not each other, but the gateway and a port that is not isolated.
        assert!(!c1.try_sh("busybox ping -c1 -W1 172.17.0.3").0, "isolated containers reach each other");
        c1.sh("busybox ping -c1 -W2 172.17.0.1");
        c1.sh("busybox ping -c1 -W2 172.17.0.4");
        c3.sh("busybox ping -c1 -W2 172.17.0.3");
        c2.sh("busybox ping -c1 -W2 172.17.0.1");
        cni.call("bridge", "DEL", "c1", "/run/netns/c1", "eth0", &iso.to_string()).ok();
        cni.call("bridge", "DEL", "c2", "/run/netns/c2", "eth0", &iso.to_string()).ok();
    });
}

#[test]
fn ipv6_addresses_are_usable_at_once_unless_enabledad() {
    isolated(|| {
        let cni = Cni::default();
        let mut conf = bridge_conf("1.0.0");
        conf["ipam"] = serde_json::json!({"type": "host-local", "ranges": [[{"subnet": "fd00:17::/64"}]]});
        let (c1, c2) = (Netns::new("c1"), Netns::new("c2"));
        cni.call("bridge", "ADD", "c1", "/run/netns/c1", "eth0", &conf.to_string()).ok();
        // Off by default, as the reference: no tentative address after ADD.
        assert_eq!(c1.sh("sysctl -n net.ipv6.conf.eth0.accept_dad").trim(), "0");
        let addr = c1.sh("ip -6 -o addr show dev eth0 scope global");
        assert!(addr.contains("fd00:17::2/64") && !addr.contains("tentative"), "{addr}");
        conf["enabledad"] = true.into();
        cni.call("bridge", "ADD", "c2", "/run/netns/c2", "eth0", &conf.to_string()).ok();
        assert_eq!(c2.sh("sysctl -n net.ipv6.conf.eth0.accept_dad").trim(), "1");
        let addr = c2.sh("ip -6 -o addr show dev eth0 scope global");
        assert!(addr.contains("tentative"), "DAD asked for but the address is not tentative: {addr}");
    });
}

#[test]
fn macspoofchk_lets_only_the_containers_own_mac_out_and_outlives_a_flush() {
    isolated(|| {
        let cni = Cni::default();
        let mut conf = bridge_conf("1.0.0");
        conf["macspoofchk"] = true.into();
        let (c1, _c2) = (Netns::new("c1"), Netns::new("c2"));
        let r = cni.call("bridge", "ADD", "c1", "/run/netns/c1", "eth0", &conf.to_string()).ok();
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = r.clone();
        c1.sh("busybox ping -c1 -W2 172.17.0.1");
        let mac = c1.sh("cat /sys/class/net/eth0/address").trim().to_string();
        let reaches = || c1.try_sh("ip neigh flush all && busybox ping -c1 -W1 172.17.0.1").0;
        // Another source MAC: its frames (ARP and all) are dropped at the bridge port.
        sh("ip neigh flush all");
        c1.sh("ip link set eth0 address 02:00:00:00:00:99");
        assert!(!reaches(), "a spoofed MAC got through:\n{}", sh("nft list table bridge berth"));
        c1.sh(&format!("ip link set eth0 address {mac}"));
        assert!(reaches(), "the container's own MAC is dropped");
        cni.call("bridge", "CHECK", "c1", "/run/netns/c1", "eth0", &with_prev.to_string()).ok();

        // A ruleset flush takes it; CHECK says so and reconcile puts it back.
        sh("nft flush ruleset");
        cni.call("bridge", "CHECK", "c1", "/run/netns/c1", "eth0", &with_prev.to_string()).err(999);
        let out = sh(&format!("{} reconcile", berth_tests::harness::bin_dir().join("netd").display()));
        assert!(out.contains("1 MAC spoof check(s)"), "{out}");
        cni.call("bridge", "CHECK", "c1", "/run/netns/c1", "eth0", &with_prev.to_string()).ok();
        c1.sh("ip link set eth0 address 02:00:00:00:00:99");
        assert!(!reaches(), "a spoofed MAC got through after the reconcile");
        c1.sh(&format!("ip link set eth0 address {mac}"));

        // DEL (twice) leaves no element and no record; GC takes what a lost DEL left.
        let veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
        assert!(sh("nft list table bridge berth").contains(&veth));
        cni.call("bridge", "DEL", "c1", "/run/netns/c1", "eth0", &with_prev.to_string()).ok();
        cni.call("bridge", "DEL", "c1", "/run/netns/c1", "eth0", &conf.to_string()).ok();
        assert!(!sh("nft list table bridge berth").contains(&veth), "{}", sh("nft list table bridge berth"));
        assert_eq!(sh("ls /run/berth/cni-spoofchk").trim(), "");
        let r2 = cni.call("bridge", "ADD", "c2", "/run/netns/c2", "eth0", &conf.to_string()).ok();
        let veth2 = r2["interfaces"][1]["name"].as_str().unwrap().to_string();
        let gc = serde_json::json!({"cniVersion": "1.1.0", "name": "berth", "type": "bridge", "bridge": "docker0",
            "macspoofchk": true, "ipam": {"type": "host-local", "subnet": "172.17.0.0/16"}, "cni.dev/valid-attachments": []});
        cni.call("bridge", "GC", "", "", "", &gc.to_string()).ok();
        assert!(!sh("nft list table bridge berth").contains(&veth2), "GC left the check:\n{}", sh("nft list table bridge berth"));
        // netd cleanup takes the table.
        sh(&format!("{} cleanup", berth_tests::harness::bin_dir().join("netd").display()));
        assert!(!sh("nft list tables").contains("bridge berth"));
    });
}

#[test]
fn layer2_attachments_as_the_reference_and_disable_container_interface() {
    isolated(|| {
        let cni = Cni::default();
        let l2 = |br: &str, extra: serde_json::Value| {
            let mut c = serde_json::json!({"cniVersion": "1.0.0", "name": "l2", "type": "bridge", "bridge": br});
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            c.to_string()
        };
        let (c1, c2, c3) = (Netns::new("c1"), Netns::new("c2"), Netns::new("c3"));
        // No ipam: a port on the bridge and an interface up, no address, no rule.
        let r1 = cni.call("bridge", "ADD", "c1", "/run/netns/c1", "eth0", &l2("l2br", serde_json::json!({}))).ok();
        cni.call("bridge", "ADD", "c2", "/run/netns/c2", "eth0", &l2("l2br", serde_json::json!({}))).ok();
        assert!(r1.get("ips").is_none_or(|i| i.as_array().is_some_and(|a| a.is_empty())), "{r1}");
        assert!(!c1.sh("ip -o addr show dev eth0").contains("inet "), "an address on a layer-2 attachment");
        assert!(!fw::dump().contains("l2br"), "rules for a layer-2 network:\n{}", fw::dump());
        // Layer 2 works: the test's own addresses reach each other over the bridge.
        c1.sh("ip addr add 192.168.77.1/24 dev eth0");
        c2.sh("ip addr add 192.168.77.2/24 dev eth0");
        c1.sh("busybox ping -c1 -W2 192.168.77.2");
        if let Some(dir) = berth_tests::harness::plugin::reference("bridge", "layer2_attachments_as_the_reference") {
            let c4 = Netns::new("c4");
            let theirs = cni.call_in(&dir, "bridge", "ADD", "c4", "/run/netns/c4", "eth0", &l2("l2ref", serde_json::json!({}))).ok();
            let shape = |r: &serde_json::Value| (r["interfaces"].as_array().map(Vec::len), r.get("ips").cloned(), r.get("routes").cloned());
            assert_eq!(shape(&r1), shape(&theirs), "ours {r1}\ntheirs {theirs}");
            assert_eq!(c4.sh("ip -o addr show dev eth0 | grep -c 'inet ' || true").trim(), "0");
            cni.call_in(&dir, "bridge", "DEL", "c4", "/run/netns/c4", "eth0", &l2("l2ref", serde_json::json!({}))).ok();
        }
        // disableContainerInterface: the interface stays down; CHECK expects that.
        let down = l2("l2br", serde_json::json!({"disableContainerInterface": true}));
        let r3 = cni.call("bridge", "ADD", "c3", "/run/netns/c3", "eth0", &down).ok();
        assert!(!c3.sh("ip -o link show eth0").contains(",UP"), "{}", c3.sh("ip -o link show eth0"));
        let mut check = serde_json::from_str::<serde_json::Value>(&down).unwrap();
        check["prevResult"] = r3;
        cni.call("bridge", "CHECK", "c3", "/run/netns/c3", "eth0", &check.to_string()).ok();
        c3.sh("ip link set eth0 up");
        cni.call("bridge", "CHECK", "c3", "/run/netns/c3", "eth0", &check.to_string()).err(999);
        // With IPAM it is refused, nothing made.
        let bad = serde_json::json!({"disableContainerInterface": true, "ipam": {"type": "host-local", "subnet": "10.50.0.0/24"}});
        let before = links();
        cni.call("bridge", "ADD", "c9", "/run/netns/c3", "net9", &l2("l2br", bad)).err(7);
        assert_eq!(links(), before);
        for c in ["c1", "c2", "c3"] {
            cni.call("bridge", "DEL", c, &format!("/run/netns/{c}"), "eth0", &l2("l2br", serde_json::json!({}))).ok();
        }
        assert!(!sh("ip -o link show type veth").contains("master l2br"), "{}", sh("ip -o link show type veth"));
    });
}
