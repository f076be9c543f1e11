//! The nftables backend against the `nft` tool itself: the table berth builds over raw
//! netlink reads back exactly as the golden text, and encodes exactly as `nft -f` encodes
//! that text; published ports are map elements, so 1,000 of them add no rule and a host
//! port mapped twice is refused by the kernel; switching backends leaves nothing behind.

use std::path::Path;

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{curl, isolated, sh, try_sh, wait_for};
use netd::firewall::{Backend, Firewall, MasqRules, NetworkRules, Nftables, PortRules};
use netd::portmap::{PortMapping, Proto};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/nft-table.txt");
/// The same table as versions before December 2026 made it: hairpin sets of
/// concatenated ranges, matched in postrouting.
const RANGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/nft-table-hairpin-ranges.txt");

fn backend() -> Nftables {
    Nftables::new("/run/berth/nftables.lock", netd::firewall::DEFAULT_MARK_BIT)
}

fn network(subnet: &str, bridge: &str) -> NetworkRules {
    NetworkRules {
        network: "n".into(),
        subnet: subnet.parse().unwrap(),
        bridge: bridge.into(),
        masquerade: true,
        masq_exclude: Vec::new(),
        protect: true,
        internal: false,
        backend: Backend::Nftables,
    }
}

fn ports(id: &str, addrs: &[&str], mappings: Vec<PortMapping>) -> PortRules {
    PortRules {
        network: "n".into(),
        container_id: id.into(),
        ifname: "eth0".into(),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        mappings,
        snat: true,
        host_if: Some("docker0".into()),
        conditions_v4: vec![],
        conditions_v6: vec![],
        backend: Backend::Nftables,
        mark_bit: netd::firewall::DEFAULT_MARK_BIT,
    }
}

fn map(host_ip: Option<&str>, host: i64, ctr: i64, proto: Proto) -> PortMapping {
    PortMapping::new(host_ip.map(|h| h.parse().unwrap()), host, ctr, proto).unwrap()
}

/// The rules' bytecode as `nft --debug=netlink` prints it, handles dropped (element
/// listings are left out: nft adds a 0.0.0.0 interval end to interval sets it creates).
fn bytecode() -> String {
    let out = sh("nft --debug=netlink list table inet berth");
    let mut keep = Vec::new();
    let mut in_rule = false;
    for l in out.lines() {
        if l.starts_with("inet berth ") && !l.starts_with("inet berth @") {
            in_rule = true;
            keep.push(l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
        } else if l.starts_with("  [") && in_rule {
            keep.push(l.to_string());
        } else {
            in_rule = false;
        }
        if l.starts_with("table inet berth {") {
            break;
        }
    }
    keep.join("\n")
}

#[test]
fn the_table_reads_back_as_the_golden_text_and_encodes_as_nft_does() {
    isolated(|| {
        std::fs::create_dir_all("/run/berth").unwrap();
        let fw = backend();
        fw.ensure_network(&network("172.17.0.0/16", "docker0")).unwrap();
        fw.ensure_network(&network("fd00:b::/64", "docker0")).unwrap();
        let p = ports(
            "c1",
            &["172.17.0.2/16", "fd00:b::2/64"],
            vec![
                map(None, 4000, 80, Proto::Tcp),
                map(Some("127.0.0.1"), 5353, 53, Proto::Udp),
                map(Some("fd00:b::1"), 4443, 443, Proto::Tcp),
            ],
        );
        fw.add_ports(&p).unwrap();
        fw.check_ports(&p).unwrap();
        // A ptp attachment's own masquerade: address, then its subnet and multicast spared.
        let masq = MasqRules {
            network: "p".into(),
            container_id: "c2".into(),
            ifname: "eth0".into(),
            addrs: vec!["10.9.0.5/24".parse().unwrap(), "fd00:c::5/64".parse().unwrap()],
            backend: Backend::Nftables,
        };
        fw.add_masq(&masq).unwrap();
        fw.check_masq(&masq).unwrap();
        let listed = sh("nft list table inet berth");
        if std::env::var("BERTH_BLESS").is_ok() {
            std::fs::write(GOLDEN, &listed).unwrap();
        }
        let golden = std::fs::read_to_string(GOLDEN).unwrap();
        assert_eq!(listed, golden, "`nft list` differs from {GOLDEN} (BERTH_BLESS=1 rewrites it)");
        // nft's own encoding of the same text: the same expressions, registers and data.
        let ours = bytecode();
        sh("nft delete table inet berth");
        sh(&format!("nft -f {GOLDEN}"));
        let theirs = bytecode();
        assert!(ours.lines().count() > 60, "{ours}");
        assert_eq!(ours, theirs, "berth's netlink encoding differs from nft's for the same table");
        // Removal leaves the fixed part only; the network's chains go with it.
        fw.remove_ports(&p).unwrap();
        fw.remove_masq(&masq).unwrap();
        fw.remove_masq(&masq).unwrap();
        assert!(fw.check_masq(&masq).unwrap_err().to_string().contains("lacks the element of ptp4"));
        fw.remove_network(&network("172.17.0.0/16", "docker0")).unwrap();
        fw.remove_network(&network("fd00:b::/64", "docker0")).unwrap();
        let left = sh("nft list table inet berth");
        assert!(!left.contains("elements") && !left.contains("docker0"), "{left}");
        // Removing again is no error; CHECK names what is missing.
        fw.remove_ports(&p).unwrap();
        let err = fw.check_ports(&p).unwrap_err().to_string();
        assert!(err.contains("lacks the element of any4 for 4000->80/tcp"), "{err}");
    });
}

#[test]
fn a_table_of_the_hairpin_ranges_layout_is_brought_up_to_date_by_the_next_publish() {
    isolated(|| {
        std::fs::create_dir_all("/run/berth").unwrap();
        sh(&format!("nft -f {RANGES}"));
        let fw = backend();
        assert!(!fw.base_intact().unwrap(), "the older layout passes for the current one");
        let p = ports("c9", &["172.17.0.9/16"], vec![map(None, 4100, 80, Proto::Tcp)]);
        fw.add_ports(&p).unwrap();
        fw.check_ports(&p).unwrap();
        assert!(fw.base_intact().unwrap());
        let listed = sh("nft list table inet berth");
        assert!(!listed.contains("hairpin4") && !listed.contains("hairpin6"), "the older sets are left:\n{listed}");
        assert!(listed.contains(r#""docker0" . 172.17.0.9 . tcp . 80"#), "{listed}");
        assert!(listed.contains("meta mark & 0x00002000 == 0x00002000 masquerade"), "{listed}");
        // A container published by the older version: its record has no host interface.
        // A reconcile (netd's, or `netd reconcile`) gives it the one its address is
        // routed out of, so hairpin works again; the record stays as it was.
        sh("ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up");
        let mut old = serde_json::to_value(ports("c1", &["172.17.0.2/16"], vec![map(None, 4000, 80, Proto::Tcp)])).unwrap();
        old.as_object_mut().unwrap().remove("host_if");
        let dir = netd::records::Record::CniPortmap.open(Path::new("/run/berth")).unwrap();
        dir.save(&netd::portmap::publish::key("n", "c1", "eth0"), &old).unwrap();
        netd::reconcile::reconcile(Path::new("/run/berth")).unwrap();
        let listed = sh("nft list set inet berth hairpin_if4");
        assert!(listed.contains(r#""docker0" . 172.17.0.2 . tcp . 80"#), "{listed}");
        let saved = sh("cat /run/berth/cni-portmap/*c1*");
        assert!(!saved.contains("host_if"), "{saved}");
    });
}

#[test]
fn a_thousand_published_ports_are_a_thousand_elements_not_rules() {
    isolated(|| {
        std::fs::create_dir_all("/run/berth").unwrap();
        let fw = backend();
        fw.ensure_network(&network("10.80.0.0/16", "br0")).unwrap();
        let rules = || sh("nft -a list table inet berth").matches("# handle").count();
        let before = rules();
        let all: Vec<PortRules> = (0..1000u32)
            .map(|i| {
                ports(
                    &format!("c{i}"),
                    &[&format!("10.80.{}.{}/16", i / 250, i % 250 + 2)],
                    vec![map(None, 20000 + i as i64, 80, Proto::Tcp)],
                )
            })
            .collect();
        let t0 = std::time::Instant::now();
        for p in &all {
            fw.add_ports(p).unwrap();
        }
        println!("1000 publications: {:?} ({:?} each)", t0.elapsed(), t0.elapsed() / 1000);
        assert_eq!(rules(), before, "publishing added rules");
        let any4 = sh("nft list map inet berth any4");
        assert_eq!(any4.matches(" : 10.80.").count(), 1000, "{any4}");
        // A host port mapped twice: the kernel refuses, the message names the port.
        let dup = ports("intruder", &["10.80.9.9/16"], vec![map(None, 20500, 80, Proto::Tcp)]);
        let err = fw.add_ports(&dup).unwrap_err();
        assert!(matches!(err, netd::Error::PortInUse { port: 20500, .. }), "{err}");
        assert_eq!(sh("nft list map inet berth any4").matches(" : 10.80.").count(), 1000, "the refused batch left something");
        // A rebuild (reconcile) yields the same, from nothing.
        sh("nft flush map inet berth any4");
        fw.rebuild_ports(&all).unwrap();
        assert_eq!(sh("nft list map inet berth any4").matches(" : 10.80.").count(), 1000);
        let t0 = std::time::Instant::now();
        for p in &all {
            fw.remove_ports(p).unwrap();
        }
        println!("1000 removals: {:?}", t0.elapsed());
        assert!(!sh("nft list table inet berth").contains("20000"));
    });
}

#[test]
fn switching_backends_leaves_nothing_of_the_other() {
    isolated(|| {
        import_busybox("page");
        let run = |name: &str, port: &str, backend: &str| {
            let out = sh(&format!(
                "BERTH_FIREWALL={backend} {} run -d --name {name} -p {port}:80 busybox httpd -f -p 80 -h /www",
                berth_tests::harness::bin_dir().join("berth").display()
            ));
            assert!(!out.is_empty());
            wait_for("the published port", || try_sh(&curl(&format!("http://127.0.0.1:{port}/"))).1 == "page");
        };
        let rm = |name: &str, backend: &str| {
            sh(&format!("BERTH_FIREWALL={backend} {} rm -f {name}", berth_tests::harness::bin_dir().join("berth").display()))
        };
        let iptables_has = || sh("iptables-save; ip6tables-save").contains("BERTH");
        let nft_has = || try_sh("nft list table inet berth").0;
        let netd = berth_tests::harness::bin_dir().join("netd");
        // Made with iptables, removed while nftables is the default: the record decides.
        run("a", "4000", "iptables");
        assert!(iptables_has() && !nft_has());
        rm("a", "nftables");
        assert!(!sh("iptables-save -t nat").contains("--dport 4000"), "DEL used the wrong backend");
        // Then nftables; a reconcile drops iptables' empty chains: no record uses them.
        run("b", "4001", "nftables");
        sh(&format!("BERTH_FIREWALL=nftables {} reconcile", netd.display()));
        assert!(!iptables_has(), "iptables chains left after the switch:\n{}", sh("iptables-save"));
        assert!(try_sh(&curl("http://127.0.0.1:4001/")).1 == "page");
        // And back: the nftables table goes once nothing uses it.
        rm("b", "iptables");
        run("c", "4002", "iptables");
        sh(&format!("BERTH_FIREWALL=iptables {} reconcile", netd.display()));
        assert!(!nft_has(), "nftables table left after the switch back");
        assert!(try_sh(&curl("http://127.0.0.1:4002/")).1 == "page");
        berth(&["rm", "-f", "c"]).ok();
        assert!(!Path::new("/run/berth/endpoint-ports").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false));
    });
}
