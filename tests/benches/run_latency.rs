//! bench/run-latency: in a private netns, time from `berth run -d -p P:80 busybox httpd`
//! to the first HTTP answer on 127.0.0.1:P, over N runs (default 20); prints median and
//! p90, how long the CLI itself took, and the monitor's per-step timings of one run.
//! Usage: cargo bench -p berth-tests --bench run-latency [-- N]

use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{bin_dir, isolated_main};

fn answered(port: u16) -> bool {
    berth_tests::harness::netns::http_answers(port, "hello")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    isolated_main(|| {
        import_busybox("hello");
        let exe = bin_dir().join("berth");
        let (mut total, mut cli) = (Vec::new(), Vec::new());
        for i in 0..n {
            let port = 4000 + i as u16;
            let name = format!("lat{i}");
            let t0 = Instant::now();
            let st = Command::new(&exe)
                .args(["run", "-d", "--name", &name, "-p", &format!("{port}:80"), "busybox", "httpd", "-f", "-p", "80", "-h", "/www"])
                .env("RUST_LOG", "berth=debug")
                .output()
                .expect("berth run");
            assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
            cli.push(t0.elapsed().as_secs_f64() * 1000.0);
            while !answered(port) {
                assert!(t0.elapsed() < Duration::from_secs(10), "no answer on {port}");
                std::thread::sleep(Duration::from_micros(200));
            }
            total.push(t0.elapsed().as_secs_f64() * 1000.0);
            if i == n - 1 {
                let id = String::from_utf8_lossy(&st.stdout).trim().to_string();
                let log = std::fs::read_to_string(format!("/var/lib/berth/containers/{id}/monitor.log")).unwrap_or_default();
                println!("monitor steps of the last run:");
                for l in log.lines().filter(|l| l.contains("start step")) {
                    let field =
                        |k: &str| l.split(k).nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?").trim_matches('"').to_string();
                    println!("  {:<12} done at {:>6.2} ms", field("step="), field("elapsed_us=").parse::<f64>().unwrap_or(0.0) / 1000.0);
                }
            }
        }
        // The per-container monitor (the waiter) of the last container.
        let rec: serde_json::Value =
            serde_json::from_str(&berth(&["inspect", &format!("lat{}", n - 1)]).ok()).unwrap_or(serde_json::Value::Null);
        let id = rec[0]["Id"].as_str().unwrap_or("").to_string();
        let rec: serde_json::Value = std::fs::read(format!("/var/lib/berth/containers/{id}/container.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or(serde_json::Value::Null);
        if let Some(mp) = rec["state"]["monitor_pid"].as_i64() {
            let rollup = std::fs::read_to_string(format!("/proc/{mp}/smaps_rollup")).unwrap_or_default();
            let kb =
                |k: &str| rollup.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_string();
            let private: u64 = ["Private_Clean:", "Private_Dirty:"].iter().filter_map(|k| kb(k).parse::<u64>().ok()).sum();
            println!("monitor: RSS {} kB (private {private} kB, PSS {} kB)", kb("Rss:"), kb("Pss:"));
        }
        for i in 0..n {
            berth(&["rm", "-f", &format!("lat{i}")]).ok();
        }
        // Containers accumulate: the first and the last ten show how a run scales with N.
        let k = n.min(10);
        println!(
            "run-latency: N={n} first answer median first {k}: {:.1} ms, last {k}: {:.1} ms",
            pct(&mut total[..k].to_vec(), 0.5),
            pct(&mut total[n - k..].to_vec(), 0.5)
        );
        println!(
            "run-latency: N={n} first answer median {:.1} ms, p90 {:.1} ms | `berth run -d` returns after median {:.1} ms, p90 {:.1} ms",
            pct(&mut total.clone(), 0.5),
            pct(&mut total, 0.9),
            pct(&mut cli.clone(), 0.5),
            pct(&mut cli, 0.9)
        );
    });
}
