//! Every plugin's records in one place (`netd::records`): `netd cleanup` followed by
//! `netd reconcile` leaves nothing of any plugin — no rule of bridge, portmap, firewall
//! or ptp's ipMasq, no ifb of bandwidth, no MAC spoof check — where reconcile used to re-install what cleanup
//! forgot; reconcile puts back ptp's masquerade after a flush; and CNI GC removes the
//! ifb of an attachment whose DEL never came.

use serde_json::json;

use berth_cni::conflist::{ConfList, RuntimeConf};
use berth_cni::types::Attachment;
use berth_tests::harness::net::{rt, runner};
use berth_tests::harness::{bin_dir, fw, isolated, sh, Netns};

const LIMITS: &str = r#""ingressRate": 8000000, "ingressBurst": 80000, "egressRate": 8000000, "egressBurst": 80000"#;

fn list(doc: serde_json::Value) -> ConfList {
    ConfList::parse(doc.to_string().as_bytes()).expect("conflist")
}

/// bridge (with macspoofchk) → portmap → firewall → bandwidth.
fn bridged() -> ConfList {
    let bw: serde_json::Value = serde_json::from_str(&format!(r#"{{"type": "bandwidth", {LIMITS}}}"#)).unwrap();
    list(json!({"cniVersion": "1.1.0", "name": "br", "plugins": [
        {"type": "bridge", "bridge": "br0", "isGateway": true, "ipMasq": true, "macspoofchk": true, "ipam": {"type": "host-local", "subnet": "10.30.0.0/24"}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "firewall"},
        bw
    ]}))
}

/// ptp with ipMasq → bandwidth.
fn ptp() -> ConfList {
    let bw: serde_json::Value = serde_json::from_str(&format!(r#"{{"type": "bandwidth", {LIMITS}}}"#)).unwrap();
    list(json!({"cniVersion": "1.1.0", "name": "pp", "plugins": [
        {"type": "ptp", "ipMasq": true, "ipam": {"type": "host-local", "subnet": "10.31.0.0/24"}},
        bw
    ]}))
}

fn ifbs() -> usize {
    sh("ip -o link show type ifb").lines().count()
}

fn netd(cmd: &str) -> String {
    sh(&format!("{}/netd {cmd}", bin_dir().display()))
}

#[test]
fn cleanup_then_reconcile_leaves_nothing_of_any_plugin() {
    isolated(|| {
        let (_a, _b) = (Netns::new("a"), Netns::new("b"));
        let run = runner();
        run.add(&bridged(), &rt("a", "/run/netns/a", &[(4000, 80, "tcp", "")])).expect("bridge chain");
        run.add(&ptp(), &rt("b", "/run/netns/b", &[])).expect("ptp chain");
        assert!(fw::publishes(4000) && fw::mentions("10.30.0.2") && fw::mentions("10.31.0.2"), "{}", fw::dump());
        assert_eq!(ifbs(), 2);
        // A flush, then reconcile: ptp's masquerade is back with the rest.
        if fw::nft() {
            sh("nft delete table inet berth");
        } else {
            sh("iptables -t nat -F; iptables -t nat -X");
        }
        assert!(!fw::mentions("10.31.0.2"));
        let out = netd("reconcile");
        assert!(fw::mentions("10.31.0.2"), "ptp's masquerade not re-installed: {out}\n{}", fw::dump());
        assert!(out.contains("1 ipMasq"), "{out}");

        let out = netd("cleanup");
        assert!(out.contains("2 ifb(s)"), "{out}");
        netd("reconcile");
        assert!(!fw::nft_table_exists(), "reconcile brought berth's table back:\n{}", fw::dump());
        let all = sh("iptables-save; ip6tables-save");
        assert!(!all.contains("BERTH"), "reconcile brought rules back:\n{all}");
        assert_eq!(ifbs(), 0, "an ifb outlived cleanup");
        assert!(!sh("nft list tables").contains("bridge berth"), "the MAC spoof check outlived cleanup");
    });
}

#[test]
fn gc_removes_the_ifb_of_an_attachment_whose_del_never_came() {
    isolated(|| {
        let (_a, _b) = (Netns::new("a"), Netns::new("b"));
        let run = runner();
        let l = ptp();
        run.add(&l, &rt("a", "/run/netns/a", &[])).expect("a");
        run.add(&l, &rt("b", "/run/netns/b", &[])).expect("b");
        assert_eq!(ifbs(), 2);
        // The runtime lost b (killed before its DEL): GC with a as the only valid one.
        run.gc(&l, &[Attachment { container_id: "a".into(), ifname: "eth0".into() }]).expect("GC");
        assert_eq!(ifbs(), 1, "b's ifb survived GC");
        assert!(fw::mentions("10.31.0.2") && !fw::mentions("10.31.0.3"), "{}", fw::dump());
        let rt_a = RuntimeConf { container_id: "a".into(), netns: "/run/netns/a".into(), ifname: "eth0".into(), ..Default::default() };
        run.del(&l, &rt_a, None).expect("DEL a");
        assert_eq!(ifbs(), 0);
    });
}
