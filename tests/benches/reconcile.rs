//! bench/reconcile: in a private netns, M port mappings (default 500: 50 endpoints × 10
//! ports) published through the engine, then the firewall flushed (`iptables -t nat -F`,
//! `nft flush ruleset`): how long `reconcile` takes to restore them in-process, and how
//! long until netd's watcher has them back (flush to the last DNAT rule present).
//! Usage: cargo bench -p berth-tests --bench reconcile [-- M]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::harness::{bin_dir, isolated_main, sh, try_sh, Netns};
use netd::engine::{AttachOptions, Engine, Networking};
use netd::portmap::{PortMapping, Proto};

fn main() {
    let m: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500);
    isolated_main(|| {
        let engine = Engine::new("/var/lib/berth/networks", "/var/lib/berth/ipam", "/run/berth");
        let net = engine.network("bridge").unwrap();
        let per = 10;
        let endpoints = m.div_ceil(per);
        for e in 0..endpoints {
            let ns = Netns::new(&format!("c{e}"));
            let ports =
                (0..per).map(|p| PortMapping::new(None, (10_000 + e * per + p) as i64, 80, Proto::Tcp).unwrap()).collect::<Vec<_>>();
            let opts = AttachOptions { ports, ..AttachOptions::iface("eth0") };
            let id = format!("{e:064x}");
            engine.attach(&net, &id, Path::new(&format!("/run/netns/{}", ns.name)), &opts).unwrap();
        }
        let last = 10_000 + endpoints * per - 1;
        let restored = || try_sh(&format!("iptables -t nat -S | grep -q -- '--dport {last} -j DNAT'")).0;
        assert!(restored());
        println!("reconcile: {} mappings on {endpoints} endpoints", endpoints * per);
        for flush in ["iptables -t nat -F", "nft flush ruleset"] {
            sh(flush);
            let t0 = Instant::now();
            let r = engine.reconcile().unwrap();
            println!("  in-process after `{flush}`: {:?} ({} networks, {} attachments)", t0.elapsed(), r.networks, r.ports);
            assert!(restored());
            let again = engine.reconcile().unwrap();
            assert_eq!(again.networks, 0, "a second pass found a network to repair");
        }
        let log = std::fs::File::create("/tmp/netd-reconcile.log").unwrap();
        let mut netd =
            Command::new(bin_dir().join("netd")).env("RUST_LOG", "netd=debug").stdout(Stdio::null()).stderr(log).spawn().unwrap();
        while !try_sh("curl -sf --unix-socket /run/berth/netd.sock http://x/_ping").0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        for flush in ["iptables -t nat -F", "nft flush ruleset"] {
            sh(flush);
            let t0 = Instant::now();
            while !restored() {
                assert!(t0.elapsed() < Duration::from_secs(30), "netd did not restore");
                std::thread::sleep(Duration::from_millis(5));
            }
            println!("  netd watcher after `{flush}`: back in {:?} (5 ms polling)", t0.elapsed());
        }
        let _ = netd.kill();
        let _ = netd.wait();
    });
}
