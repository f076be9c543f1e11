//! The dhcp IPAM plugin and its daemon against a real DHCP server: busybox `udhcpd` in
//! the LAN netns (`lanpeer`, behind the veth `lan0`) with 6-second leases. A macvlan +
//! dhcp ADD gets a lease (address, router as gateway and default route; DNS kept with the
//! lease, macvlan reporting only its config's as the reference's); the daemon
//! renews it at T1, and a restarted daemon goes on renewing it (the server still holds it
//! long after it would have run out); DEL sends a RELEASE the server acts on and leaves
//! nothing; beside the reference's plugin and daemon the result has the same shape.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use berth_tests::harness::plugin::{masked, reference};
use berth_tests::harness::{bin_dir, isolated, sh, try_sh, wait_for, Cni, Netns};

const LEASES: &str = "/run/berth/udhcpd.leases";

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, log: &str) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(cmd.stdout(Stdio::null()).stderr(log).spawn().expect("spawn"))
}

/// The LAN peer with udhcpd serving 192.0.2.100-150 on it.
fn lan_with_dhcp() -> (Netns, Proc) {
    let peer = Netns::new("lanpeer");
    sh("ip link add lan0 type veth peer name eth0 netns lanpeer && ip link set lan0 up");
    peer.sh("ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip link set lo up");
    std::fs::write(
        "/run/berth/udhcpd.conf",
        format!(
            "start 192.0.2.100\nend 192.0.2.150\ninterface eth0\nlease_file {LEASES}\npidfile /run/berth/udhcpd.pid\n\
             option subnet 255.255.255.0\noption router 192.0.2.1\noption dns 192.0.2.53\noption domain example.test\n\
             option lease 6\nmin_lease 4\nauto_time 1\n"
        ),
    )
    .unwrap();
    std::fs::write(LEASES, "").unwrap();
    let server = spawn(
        Command::new("ip").args(["netns", "exec", "lanpeer", "busybox", "udhcpd", "-f", "/run/berth/udhcpd.conf"]),
        "/run/berth/udhcpd.log",
    );
    (peer, server)
}

fn daemon(dir: &Path, sock: &str) -> Proc {
    let d = spawn(Command::new(dir.join("dhcp")).args(["daemon", "-socketpath", sock]).env("RUST_LOG", "info"), &format!("{sock}.log"));
    wait_for("the dhcp daemon's socket", || Path::new(sock).exists());
    d
}

fn conf(sock: &str) -> String {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "lan0",
        "ipam": {"type": "dhcp", "daemonSocketPath": sock}})
    .to_string()
}

/// The server's view of `ip`: Some(true) held, Some(false) expired or released.
fn server_holds(ip: &str) -> Option<bool> {
    let out = sh(&format!("busybox dumpleases -f {LEASES} 2>/dev/null || true"));
    out.lines().find(|l| l.split_whitespace().any(|w| w == ip)).map(|l| !l.contains("expired"))
}

fn ours_lease(ip: &str) -> Option<Value> {
    let out = try_sh("cat /run/cni/dhcp-leases/*.json 2>/dev/null").1;
    serde_json::from_str::<Value>(&out).ok().filter(|v| v["lease"]["ip"] == ip)
}

#[test]
fn dhcp_leases_renews_survives_a_daemon_restart_and_releases() {
    isolated(|| {
        let (peer, _server) = lan_with_dhcp();
        let sock = "/run/berth/dhcp.sock";
        let mut d = Some(daemon(&bin_dir(), sock));
        let c1 = Netns::new("c1");
        let p1 = c1.path().to_str().unwrap().to_string();
        let cni = Cni::default();
        let r = cni.call("macvlan", "ADD", "c1", &p1, "eth0", &conf(sock)).ok();
        let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
        let ip = addr.split('/').next().unwrap().to_string();
        assert!(addr.starts_with("192.0.2.1") && addr.ends_with("/24"), "{r}");
        assert_eq!(r["ips"][0]["gateway"], "192.0.2.1");
        assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "192.0.2.1"}]));
        // macvlan reports its config's `dns`, not the IPAM plugin's (as the reference).
        assert_eq!(r["dns"], json!({}), "{r}");
        assert!(c1.sh("ip -4 -o addr show eth0").contains(&addr));
        assert!(c1.sh("ip route").contains("default via 192.0.2.1 dev eth0"));
        assert!(c1.try_sh("busybox ping -c1 -W1 192.0.2.2").0, "the LAN peer is not reachable on the leased address");
        wait_for("the server to record the lease", || server_holds(&ip) == Some(true));
        // Renewal at T1 (3 s): the lease on disk is renewed, the server's runs on.
        let lease = ours_lease(&ip).expect("the daemon keeps the lease on disk");
        assert_eq!((lease["lease"]["dns"].clone(), lease["lease"]["domain"].clone()), (json!(["192.0.2.53"]), json!("example.test")));
        let first = lease["lease"]["obtained"].as_u64().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        let renewed = ours_lease(&ip).unwrap()["lease"]["obtained"].as_u64().unwrap();
        assert!(renewed > first, "no renewal at T1 ({first} → {renewed})");
        // A daemon restart keeps the lease: the new one renews what the old one leased.
        drop(d.take());
        d = Some(daemon(&bin_dir(), sock));
        std::thread::sleep(Duration::from_secs(8));
        assert_eq!(server_holds(&ip), Some(true), "the lease ran out after the daemon's restart");
        assert!(ours_lease(&ip).unwrap()["lease"]["obtained"].as_u64().unwrap() > renewed, "the restarted daemon did not renew");
        // DEL: RELEASE seen by the server, nothing left; twice; after the netns went.
        assert_eq!(cni.call("macvlan", "DEL", "c1", &p1, "eth0", &conf(sock)).code, 0);
        wait_for("the server to see the RELEASE", || server_holds(&ip) == Some(false));
        assert!(ours_lease(&ip).is_none(), "the daemon kept the lease");
        assert!(!c1.try_sh("ip link show eth0").0);
        assert_eq!(cni.call("macvlan", "DEL", "c1", &p1, "eth0", &conf(sock)).code, 0);
        let c2 = Netns::new("c2");
        let p2 = c2.path().to_str().unwrap().to_string();
        cni.call("macvlan", "ADD", "c2", &p2, "eth0", &conf(sock)).ok();
        c2.delete();
        assert_eq!(cni.call("macvlan", "DEL", "c2", &p2, "eth0", &conf(sock)).code, 0);
        assert_eq!(try_sh("ls /run/cni/dhcp-leases | wc -l").1.trim(), "0");
        drop(peer);
        drop(d);
    });
}

#[test]
fn dhcp_matches_the_reference_and_refuses_clearly() {
    isolated(|| {
        let (_peer, _server) = lan_with_dhcp();
        let sock = "/run/berth/dhcp.sock";
        let _d = daemon(&bin_dir(), sock);
        let cni = Cni::default();
        let c1 = Netns::new("c1");
        let ours = cni.call("macvlan", "ADD", "c1", c1.path().to_str().unwrap(), "eth0", &conf(sock)).ok();
        if let Some(refdir) = reference("dhcp", "dhcp differential") {
            let rsock = "/run/berth/ref-dhcp.sock";
            let _rd = daemon(&refdir, rsock);
            let c2 = Netns::new("c2");
            let theirs = cni.call_in(&refdir, "macvlan", "ADD", "c2", c2.path().to_str().unwrap(), "eth0", &conf(rsock)).ok();
            assert_eq!(masked(ours.clone()), masked(theirs), "results differ");
            assert_eq!(cni.call_in(&refdir, "macvlan", "DEL", "c2", c2.path().to_str().unwrap(), "eth0", &conf(rsock)).code, 0);
        }
        assert_eq!(cni.call("macvlan", "DEL", "c1", c1.path().to_str().unwrap(), "eth0", &conf(sock)).code, 0);
        // No daemon: ADD says so (code 11) and leaves no link; DEL has nothing to release.
        let c3 = Netns::new("c3");
        let p3 = c3.path().to_str().unwrap().to_string();
        let msg = cni.call("macvlan", "ADD", "c3", &p3, "eth0", &conf("/run/berth/none.sock")).err(11);
        assert!(msg.contains("dhcp daemon"), "{msg}");
        assert_eq!(c3.sh("ip -o link show | grep -vc ' lo:' || true").trim(), "0", "a link stayed");
        assert_eq!(cni.call("macvlan", "DEL", "c3", &p3, "eth0", &conf("/run/berth/none.sock")).code, 0);
        // A bad option name: code 7, nothing left.
        let bad = json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "lan0",
            "ipam": {"type": "dhcp", "daemonSocketPath": sock, "request": [{"option": "no-such-option"}]}})
        .to_string();
        let msg = cni.call("macvlan", "ADD", "c3", &p3, "eth0", &bad).err(7);
        assert!(msg.contains("unknown option"), "{msg}");
        assert_eq!(c3.sh("ip -o link show | grep -vc ' lo:' || true").trim(), "0");
    });
}
