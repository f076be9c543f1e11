//! portmap: published ports answer from another host, from the host itself (127.0.0.1 and
//! its own address), from siblings (hairpin); UDP; localhost-only bindings; conflicts.

use berth_tests::harness::net::{allocations, conflist, rt, rules, runner};
use berth_tests::harness::peer::{HOST_IP, PEER_IP};
use berth_tests::harness::{curl, fw, isolated, sh, try_sh, wait_for, web_server, Netns, OtherHost, Proc};

#[test]
fn tcp_mapping_answers_from_other_host_host_and_siblings() {
    isolated(|| {
        let other = OtherHost::new();
        let run = runner();
        let list = conflist("1.0.0");
        let (web, sib) = (Netns::new("web"), Netns::new("sib"));
        run.add(&list, &rt("web", "/run/netns/web", &[(4000, 80, "tcp", "")])).unwrap();
        run.add(&list, &rt("sib", "/run/netns/sib", &[])).unwrap();
        let _srv = web_server(&web, "hello from web");
        // another host, at the host's address
        assert_eq!(other.ns.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "hello from web");
        // the host itself, on loopback and on its own addresses
        assert_eq!(sh(&curl("http://127.0.0.1:4000/")), "hello from web");
        assert_eq!(sh(&curl(&format!("http://{HOST_IP}:4000/"))), "hello from web");
        assert_eq!(sh(&curl("http://172.17.0.1:4000/")), "hello from web");
        // a sibling and the container itself, through the host's address (hairpin)
        assert_eq!(sib.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "hello from web");
        assert_eq!(web.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "hello from web");
        // an unmapped port does not answer
        assert!(!other.ns.try_sh(&curl(&format!("http://{HOST_IP}:4001/"))).0);
    });
}

#[test]
fn udp_mapping_delivers_a_datagram() {
    isolated(|| {
        let other = OtherHost::new();
        let run = runner();
        let list = conflist("1.0.0");
        let c = Netns::new("c");
        run.add(&list, &rt("c", "/run/netns/c", &[(5353, 53, "udp", "")])).unwrap();
        // busybox-static's nc has no UDP mode; python3 is a plain UDP peer.
        let _srv = c.spawn("python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"0.0.0.0\", 53)); d, a = s.recvfrom(100); open(\"/run/berth/udp.out\", \"wb\").write(d)'");
        wait_for("udp listener", || c.sh("ss -Hlun").contains(":53"));
        other.ns.sh(&format!(
            "python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b\"datagram-1\", (\"{HOST_IP}\", 5353))'"
        ));
        wait_for("the datagram", || std::fs::read_to_string("/run/berth/udp.out").is_ok_and(|s| s.contains("datagram-1")));
    });
}

#[test]
fn localhost_binding_is_not_reachable_from_other_host() {
    isolated(|| {
        let other = OtherHost::new();
        let run = runner();
        let list = conflist("1.0.0");
        let c = Netns::new("c");
        run.add(&list, &rt("c", "/run/netns/c", &[(4000, 80, "tcp", "127.0.0.1")])).unwrap();
        let _srv = web_server(&c, "local only");
        assert_eq!(sh(&curl("http://127.0.0.1:4000/")), "local only");
        assert!(!other.ns.try_sh(&curl(&format!("http://{HOST_IP}:4000/"))).0, "reachable at the host address");
        assert!(!try_sh(&curl(&format!("http://{HOST_IP}:4000/"))).0, "bound to 127.0.0.1 only");
        // Docker #45610: a neighbour routing 127.0.0.1 to the host must be dropped.
        other.ns.sh("sysctl -qw net.ipv4.conf.eth0.route_localnet=1 net.ipv4.conf.all.route_localnet=1");
        other.ns.sh(&format!("ip route add 127.0.0.1/32 via {HOST_IP} dev eth0 table 100"));
        other.ns.sh("ip rule add to 127.0.0.1 lookup 100 pref 10 && ip rule add pref 100 lookup local && ip rule del pref 0 lookup local");
        // Counters around berth's raw chain: packets for 127.0.0.1:4000 from the network
        // arrive (before, priority -301) and none get past it (after, -299).
        sh("nft add table inet probe \
            && nft add chain inet probe before '{ type filter hook prerouting priority -301; }' \
            && nft add chain inet probe after '{ type filter hook prerouting priority -299; }' \
            && nft add rule inet probe before iifname != lo ip daddr 127.0.0.1 tcp dport 4000 counter \
            && nft add rule inet probe after iifname != lo ip daddr 127.0.0.1 tcp dport 4000 counter");
        let (ok, out) = other.ns.try_sh(&curl("http://127.0.0.1:4000/"));
        assert!(!ok || !out.contains("local only"), "127.0.0.1 mapping answered a neighbour: {out}");
        let counted = |chain: &str| {
            let l = sh(&format!("nft list chain inet probe {chain}"));
            l.split("packets ").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|n| n.parse::<u64>().ok()).unwrap()
        };
        assert!(counted("before") > 0, "the neighbour's packets never arrived: this test would prove nothing");
        assert_eq!(counted("after"), 0, "a packet for 127.0.0.1 got past berth's raw chain");
    });
}

#[test]
fn a_host_port_is_published_once() {
    isolated(|| {
        let run = runner();
        let list = conflist("1.0.0");
        let (_a, _b) = (Netns::new("a"), Netns::new("b"));
        run.add(&list, &rt("a", "/run/netns/a", &[(4000, 80, "tcp", "")])).unwrap();
        let (base_rules, base_allocs) = (rules(), allocations());
        let err = run.add(&list, &rt("b", "/run/netns/b", &[(4000, 80, "tcp", "")])).unwrap_err();
        assert_eq!(err.code, 101);
        assert!(err.msg.contains("host port 4000/tcp") && err.msg.contains("already in use"), "{err}");
        assert_eq!(rules(), base_rules, "the failed ADD left rules");
        assert_eq!(allocations(), base_allocs, "the failed ADD left an address");
        assert!(!Netns { name: "b".into() }.sh("ip -o link").contains("eth0"));
        // the same port on UDP is another port
        run.add(&list, &rt("b", "/run/netns/b", &[(4000, 80, "udp", "")])).unwrap();
        // a port a process listens on is refused too
        let _srv = Proc(std::process::Command::new("busybox").args(["nc", "-l", "-p", "4100"]).spawn().unwrap());
        wait_for("listener", || sh("ss -Hltn").contains(":4100"));
        let _c = Netns::new("c");
        let err = run.add(&list, &rt("c", "/run/netns/c", &[(4100, 80, "tcp", "")])).unwrap_err();
        assert!(err.msg.contains("listening"), "{err}");
    });
}

#[test]
fn masquerade_hides_containers_behind_the_host_address() {
    isolated(|| {
        let other = OtherHost::new();
        let run = runner();
        let list = conflist("1.0.0");
        let c = Netns::new("c");
        run.add(&list, &rt("c", "/run/netns/c", &[])).unwrap();
        sh("sysctl -qw net.ipv4.ip_forward=1");
        // The peer records the source address of the connection it accepts.
        let _srv = other.ns.spawn("python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 9000)); s.listen(); c, a = s.accept(); open(\"/run/berth/peer.out\", \"w\").write(a[0])'");
        wait_for("peer listener", || other.ns.sh("ss -Hltn").contains(":9000"));
        let _ = c.try_sh(&format!("curl -s --max-time 1 http://{PEER_IP}:9000/"));
        wait_for("the peer to see the connection", || std::fs::metadata("/run/berth/peer.out").is_ok_and(|m| m.len() > 0));
        assert_eq!(std::fs::read_to_string("/run/berth/peer.out").unwrap(), HOST_IP, "source not masqueraded");
    });
}

#[test]
fn stale_udp_conntrack_entries_are_flushed_when_a_mapping_moves() {
    isolated(|| {
        let other = OtherHost::new();
        let run = runner();
        let list = conflist("1.0.0");
        let (a, b) = (Netns::new("a"), Netns::new("b"));
        let server = |ns: &Netns, out: &str| {
            let p = ns.spawn(&format!("python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"0.0.0.0\", 53)); d, a = s.recvfrom(100); open(\"{out}\", \"wb\").write(d)'"));
            wait_for("udp listener", || ns.sh("ss -Hlun").contains(":53"));
            p
        };
        // A peer keeps sending from one source port: its flow is NATed to container a.
        let send = |msg: &str| {
            other.ns.sh(&format!("python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 40000)); s.sendto(b\"{msg}\", (\"{HOST_IP}\", 5353))'"))
        };
        let cfg_a = rt("a", "/run/netns/a", &[(5353, 53, "udp", "")]);
        let res_a = run.add(&list, &cfg_a).unwrap();
        let _sa = server(&a, "/run/berth/a.out");
        send("to-a");
        wait_for("a's datagram", || std::fs::read_to_string("/run/berth/a.out").is_ok_and(|s| s.contains("to-a")));
        // The port moves to container b; the same flow must follow it.
        run.del(&list, &cfg_a, Some(&res_a)).unwrap();
        run.add(&list, &rt("b", "/run/netns/b", &[(5353, 53, "udp", "")])).unwrap();
        let _sb = server(&b, "/run/berth/b.out");
        send("to-b");
        wait_for("b's datagram through the moved mapping", || {
            std::fs::read_to_string("/run/berth/b.out").is_ok_and(|s| s.contains("to-b"))
        });
    });
}

#[test]
fn dual_stack_addresses_and_an_ipv6_published_port() {
    isolated(|| {
        let other = OtherHost::new();
        sh("ip addr add 2001:db8::1/64 dev uplink nodad");
        other.ns.sh("ip addr add 2001:db8::2/64 dev eth0 nodad");
        let run = runner();
        let doc = serde_json::json!({
            "cniVersion": "1.0.0", "name": "dual",
            "plugins": [
                {"type": "bridge", "bridge": "br-dual", "isGateway": true, "isDefaultGateway": true, "ipMasq": true, "hairpinMode": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.66.0.0/24"}], [{"subnet": "fd00:66::/64"}]]}},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        let list = berth_cni::conflist::ConfList::parse(doc.to_string().as_bytes()).unwrap();
        let (web, sib) = (Netns::new("web"), Netns::new("sib"));
        let r = run.add(&list, &rt("web", "/run/netns/web", &[(4000, 80, "tcp", "")])).unwrap();
        let addrs: Vec<&str> = r["ips"].as_array().unwrap().iter().map(|i| i["address"].as_str().unwrap()).collect();
        assert_eq!(addrs, ["10.66.0.2/24", "fd00:66::2/64"]);
        run.add(&list, &rt("sib", "/run/netns/sib", &[])).unwrap();
        assert!(web.sh("ip -6 route").contains("default via fd00:66::1"));
        sib.sh("busybox ping -6 -c1 -W2 fd00:66::2");
        sib.sh("busybox ping -6 -c1 -W2 fd00:66::1");
        let _srv = web_server(&web, "hello over v6");
        assert_eq!(other.ns.sh(&curl("-g http://[2001:db8::1]:4000/")), "hello over v6");
        assert_eq!(other.ns.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "hello over v6");
        assert!(fw::dnat_to("fd00:66::2", 80), "{}", fw::dump());
    });
}

#[test]
fn netd_cleanup_removes_every_berth_rule_and_the_next_add_rebuilds() {
    isolated(|| {
        let run = runner();
        let list = conflist("1.0.0");
        let _c = Netns::new("c");
        // Somebody else's rules, which cleanup must leave alone.
        sh("iptables -t nat -A POSTROUTING -s 10.9.9.0/24 -j MASQUERADE && iptables -A FORWARD -j ACCEPT && iptables -t nat -N OTHER");
        sh("nft add table inet other && nft add chain inet other c");
        let others = || {
            (
                sh("iptables-save -t nat; iptables-save -t filter").lines().filter(|l| l.starts_with("-A") && !l.contains("BERTH")).count(),
                sh("nft list table inet other"),
            )
        };
        let (before, theirs) = (rules(), others());
        run.add(&list, &rt("c", "/run/netns/c", &[(4000, 80, "tcp", ""), (4001, 81, "udp", "127.0.0.1")])).unwrap();
        assert!(fw::publishes(4000));
        sh(&format!("{}/netd cleanup", berth_tests::harness::bin_dir().display()));
        let all = sh("iptables-save; ip6tables-save");
        assert!(!all.contains("BERTH"), "left:\n{all}");
        assert!(!fw::nft_table_exists(), "the nftables table is left");
        assert_eq!(rules(), before, "cleanup left berth's rules");
        assert_eq!(others(), theirs, "cleanup touched rules that are not berth's");
        let _d = Netns::new("d");
        run.add(&list, &rt("d", "/run/netns/d", &[(4000, 80, "tcp", "")])).unwrap();
        assert!(fw::publishes(4000));
    });
}

#[test]
fn forwarding_works_under_a_drop_policy_and_berth_user_runs_first() {
    isolated(|| {
        let other = OtherHost::new();
        // A base chain's drop policy drops whatever other tables accepted: berth's
        // acceptance can override iptables' policy only from iptables' own FORWARD chain.
        if !fw::nft() {
            sh("iptables -P FORWARD DROP");
        }
        let run = runner();
        let list = conflist("1.0.0");
        let (web, cl) = (Netns::new("web"), Netns::new("cl"));
        run.add(&list, &rt("web", "/run/netns/web", &[(4000, 80, "tcp", "")])).unwrap();
        run.add(&list, &rt("cl", "/run/netns/cl", &[])).unwrap();
        let _srv = web_server(&web, "through a DROP policy");
        assert_eq!(other.ns.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "through a DROP policy");
        let _peer = web_server(&other.ns, "peer page");
        assert_eq!(cl.sh(&curl(&format!("http://{PEER_IP}:80/"))), "peer page");
        // The user's chain comes first: a rule there overrides berth's acceptance.
        if fw::nft() {
            sh(&format!("nft add rule inet berth user ip saddr {PEER_IP} drop"));
        } else {
            let fwd = sh("iptables -S FORWARD");
            let pos = |c: &str| fwd.lines().position(|l| l.contains(c)).unwrap();
            assert!(pos("BERTH-USER") < pos("BERTH-FORWARD"), "{fwd}");
            sh(&format!("iptables -A BERTH-USER -s {PEER_IP} -j DROP"));
        }
        assert!(!other.ns.try_sh(&curl(&format!("http://{HOST_IP}:4000/"))).0);
    });
}

#[test]
fn netd_reconcile_restores_rules_after_a_firewall_flush() {
    isolated(|| {
        let other = OtherHost::new();
        let run = runner();
        let list = conflist("1.0.0");
        let web = Netns::new("web");
        run.add(&list, &rt("web", "/run/netns/web", &[(4000, 80, "tcp", "")])).unwrap();
        let _srv = web_server(&web, "back again");
        assert_eq!(other.ns.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "back again");
        let before = rules();
        // What a firewall reload does to rules it does not know.
        if fw::nft() {
            sh("nft flush ruleset");
        } else {
            sh("iptables -t nat -F && iptables -t nat -X && iptables -t filter -F && iptables -t filter -X && iptables -t raw -F && iptables -t raw -X");
            sh("iptables -P FORWARD DROP");
        }
        assert!(!other.ns.try_sh(&curl(&format!("http://{HOST_IP}:4000/"))).0);
        let out = sh(&format!("{}/netd reconcile", berth_tests::harness::bin_dir().display()));
        assert!(out.contains("rules of 1 network(s)") && out.contains("rules of 1 port publication(s)"), "{out}");
        assert_eq!(other.ns.sh(&curl(&format!("http://{HOST_IP}:4000/"))), "back again");
        assert_eq!(
            rules().into_iter().filter(|r| !r.starts_with(":FORWARD")).collect::<Vec<_>>(),
            before.into_iter().filter(|r| !r.starts_with(":FORWARD")).collect::<Vec<_>>()
        );
        // A second pass re-installs no network and leaves the rules as they are (the port
        // rebuild is exact: nothing twice).
        let restored = rules();
        let out = sh(&format!("{}/netd reconcile", berth_tests::harness::bin_dir().display()));
        assert!(out.contains("rules of 0 network(s)"), "{out}");
        assert_eq!(rules(), restored);
    });
}

/// containerd's CRI sends `runtimeConfig.portMappings` with Go's field names
/// (`HostPort`, `ContainerPort`, `Protocol`, `HostIP`); the reference plugins take them
/// because Go's decoder folds case, and so does berth's portmap.
#[test]
fn containerd_cri_port_mappings_with_go_field_names_are_published() {
    isolated(|| {
        let list = berth_tests::harness::net::bridge_conf("1.0.0");
        let web = Netns::new("web");
        let cni = berth_tests::harness::Cni::default();
        let r = cni.call("bridge", "ADD", "web", "/run/netns/web", "eth0", &list.to_string()).ok();
        let pm = serde_json::json!({
            "cniVersion": "1.0.0", "name": list["name"], "type": "portmap", "snat": true,
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [{"HostPort": 4000, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]},
            "prevResult": r,
        });
        cni.call("portmap", "ADD", "web", "/run/netns/web", "eth0", &pm.to_string()).ok();
        let _srv = web_server(&web, "go keys");
        assert_eq!(sh(&curl("http://127.0.0.1:4000/")), "go keys");
        assert!(fw::publishes(4000));
        assert_eq!(cni.call("portmap", "DEL", "web", "/run/netns/web", "eth0", &pm.to_string()).code, 0);
        assert!(!fw::publishes(4000), "DEL left the mapping:\n{}", fw::dump());
    });
}

#[test]
fn route_localnet_is_held_per_attachment_also_across_the_index_upgrade() {
    isolated(|| {
        let run = runner();
        let list = conflist("1.0.0");
        let (_a, _b) = (Netns::new("a"), Netns::new("b"));
        let cfg_a = rt("a", "/run/netns/a", &[(4000, 80, "tcp", "")]);
        let cfg_b = rt("b", "/run/netns/b", &[(4001, 80, "tcp", "")]);
        let ra = run.add(&list, &cfg_a).unwrap();
        let rb = run.add(&list, &cfg_b).unwrap();
        let dir = "/run/berth/route-localnet";
        let ifaces: Vec<String> = sh(&format!("ls {dir}")).split_whitespace().map(str::to_string).collect();
        assert!(!ifaces.is_empty(), "no interface holds route_localnet");
        let on = |i: &str| sh(&format!("cat /proc/sys/net/ipv4/conf/{i}/route_localnet")).trim() == "1";
        assert!(ifaces.iter().all(|i| on(i)), "{ifaces:?}");
        assert_eq!(sh(&format!("ls {dir}/.keys")).lines().count(), 2, "one index entry per attachment");
        // The state a version before the per-key index left: rebuilt on the next change.
        sh(&format!("rm -rf {dir}/.keys"));
        run.del(&list, &cfg_a, Some(&ra)).unwrap();
        assert!(ifaces.iter().any(|i| on(i)), "route_localnet went while b still needs it");
        run.del(&list, &cfg_b, Some(&rb)).unwrap();
        assert!(ifaces.iter().all(|i| !std::path::Path::new(&format!("/proc/sys/net/ipv4/conf/{i}")).exists() || !on(i)));
        assert_eq!(sh(&format!("ls {dir}")).trim(), "", "references left");
        assert_eq!(sh(&format!("ls {dir}/.keys")).trim(), "", "index entries left");
    });
}
