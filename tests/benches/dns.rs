//! bench/dns: in a private netns, N containers (default 200) on one user network, then
//! DNS queries for their names from inside a container's netns: serial latency (one at a
//! time) and throughput with 100 queries in flight; lost queries counted; netd's RSS.
//! Usage: cargo bench -p berth-tests --bench dns [-- N]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::isolated_main;

/// A DNS A query for `name` with id `id` (a load generator's packet, not a parser).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    isolated_main(|| {
        import_busybox("x");
        berth(&["network", "create", "--subnet", "10.89.0.0/16", "bench"]).ok();
        for i in 0..n {
            berth(&["run", "-d", "--name", &format!("c{i}"), "--net", "bench", "busybox", "sleep", "600"]).ok();
        }
        let pid = berth(&["inspect", "c0"]).ok();
        let pid: serde_json::Value = serde_json::from_str(&pid).unwrap();
        let pid = pid[0]["State"]["Pid"].as_i64().unwrap();
        // Queries come from inside a container's netns, as containers ask: a thread of
        // its own enters it (setns is per thread), the main thread cleans up after.
        let measure = std::thread::spawn(move || {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.connect("10.89.0.1:53").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = [0u8; 512];
            let mut lat = Vec::new();
            for i in 0..5000u16 {
                let t0 = Instant::now();
                s.send(&query(i, &format!("c{}", i as usize % n))).unwrap();
                if s.recv(&mut buf).is_ok() {
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                }
            }
            lat.sort_by(|a, b| a.total_cmp(b));
            let avg = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
            let (total, inflight) = (50_000u32, 100u32);
            s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let t0 = Instant::now();
            let (mut sent, mut got) = (0u32, 0u32);
            while sent < inflight {
                s.send(&query(sent as u16, &format!("c{}", sent as usize % n))).unwrap();
                sent += 1;
            }
            while got < sent {
                if s.recv(&mut buf).is_err() {
                    break;
                }
                got += 1;
                if sent < total {
                    s.send(&query(sent as u16, &format!("c{}", sent as usize % n))).unwrap();
                    sent += 1;
                }
            }
            let qps = got as f64 / t0.elapsed().as_secs_f64();
            let rss = std::fs::read_to_string("/run/berth/netd.pid")
                .ok()
                .and_then(|p| std::fs::read_to_string(format!("/proc/{}/status", p.trim())).ok())
                .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string()))
                .unwrap_or_else(|| "?".into());
            (avg, lat, qps, sent, got, rss)
        });
        let (avg, lat, qps, sent, got, rss) = measure.join().unwrap();
        println!(
            "dns: N={n} containers | serial: avg {avg:.0} us, p99 {:.0} us, {} lost of 5000 | 100 in flight: {qps:.0} qps, {} lost of {sent} | netd RSS {rss} kB",
            lat.get(lat.len() * 99 / 100).copied().unwrap_or(0.0),
            5000 - lat.len(),
            sent - got
        );
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let mut args = vec!["rm", "-f"];
        args.extend(names.iter().map(String::as_str));
        berth(&args).ok();
        if let Ok(pid) = std::fs::read_to_string("/run/berth/netd.pid") {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid.trim().parse().unwrap_or(0)), nix::sys::signal::Signal::SIGKILL);
        }
    });
}
