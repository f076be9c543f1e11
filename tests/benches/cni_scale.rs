//! bench/cni-scale: in a private netns, ADD N containers through bridge + host-local +
//! portmap (one published port each), then DEL them; prints per-operation medians for the
//! first and last 10, totals and what is left. Runs the reference plugins too when
//! /usr/lib/cni has them (not with BENCH_NO_REFERENCE set); BENCH_BANDWIDTH chains bandwidth
//! after portmap, as a Kubernetes node does.
//! Usage: cargo bench -p berth-tests --bench cni-scale [-- N]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_cni::conflist::Runner;
use berth_tests::harness::net::{allocations, conflist, rt, rules};
use berth_tests::harness::{isolated_main, plugin_dir, sh};

fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms.get(ms.len() / 2).copied().unwrap_or(0.0)
}

fn run(label: &str, path: PathBuf, n: usize, prefix: &str) {
    let runner = Runner { path: vec![path] };
    let mut list = conflist("1.0.0");
    if std::env::var_os("BENCH_BANDWIDTH").is_some() {
        // The Kubernetes node chain: bridge → portmap → bandwidth (both directions shaped).
        list.plugins.push(serde_json::json!({"type": "bandwidth", "ingressRate": 100_000_000, "ingressBurst": 1_000_000,
            "egressRate": 100_000_000, "egressBurst": 1_000_000}));
    }
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let script: String = names.iter().map(|c| format!("netns add {c}\n")).collect();
    std::fs::write("/run/berth/netns.batch", script).unwrap();
    sh("ip -batch /run/berth/netns.batch");
    let cfgs: Vec<_> =
        names.iter().enumerate().map(|(i, c)| rt(c, &format!("/run/netns/{c}"), &[(20000 + i as u16, 80, "tcp", "")])).collect();
    let mut adds = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let t0 = Instant::now();
    for cfg in &cfgs {
        let t = Instant::now();
        results.push(runner.add(&list, cfg).expect("ADD"));
        adds.push(t.elapsed());
    }
    let add_total = t0.elapsed();
    let mut dels = Vec::with_capacity(n);
    let t0 = Instant::now();
    for (cfg, res) in cfgs.iter().zip(&results) {
        let t = Instant::now();
        runner.del(&list, cfg, Some(res)).expect("DEL");
        dels.push(t.elapsed());
    }
    let del_total = t0.elapsed();
    let k = 10.min(n);
    let veths = sh("ip -o link show type veth").lines().count();
    println!(
        "{label:>9}: N={n} ADD median first {k}: {:.1} ms, last {k}: {:.1} ms (ratio {:.2}), total {:.2} s | DEL median first {k}: {:.1} ms, last {k}: {:.1} ms, total {:.2} s | left: {} addresses, {} veths, {} per-container rules",
        median(&adds[..k]),
        median(&adds[n - k..]),
        median(&adds[n - k..]) / median(&adds[..k]).max(1e-9),
        add_total.as_secs_f64(),
        median(&dels[..k]),
        median(&dels[n - k..]),
        del_total.as_secs_f64(),
        allocations().len(),
        veths,
        rules().iter().filter(|r| r.contains("172.17.0.") || r.contains("-DN-")).count(),
    );
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    isolated_main(|| {
        let bw = if std::env::var_os("BENCH_BANDWIDTH").is_some() { "+bandwidth" } else { "" };
        println!("chain: bridge+host-local+portmap{bw}");
        run("berth", plugin_dir(), n, "b");
        if std::env::var_os("BENCH_NO_REFERENCE").is_some() {
            println!("reference: skipped (BENCH_NO_REFERENCE)");
        } else if std::path::Path::new("/usr/lib/cni/portmap").is_file() {
            // A fresh bridge for a fair start: same network name, state kept apart.
            sh("ip link del docker0");
            sh("rm -rf /var/lib/cni/networks/berth");
            run("reference", PathBuf::from("/usr/lib/cni"), n, "r");
        } else {
            println!("reference: skipped (install containernetworking-plugins for /usr/lib/cni)");
        }
    });
}
