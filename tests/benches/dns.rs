//! bench/dns: in a private netns, N containers (default 200) on one user network, then
//! DNS queries for their names from inside a container's netns: serial latency (one at a
//! time) and throughput with 100 queries in flight; lost queries counted; the server's
//! RSS. Then, in the same run, the same for podman's aardvark-dns serving the same names
//! on the same address (where installed), and both again with `dnsperf` (where
//! installed). Usage: cargo bench -p berth-tests --bench dns [-- N]

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::{isolated_main, try_sh};

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

fn rss_kb(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string()))
        .unwrap_or_else(|| "?".into())
}

/// Our load generator, from inside the netns of `pid`: 5,000 serial queries, then
/// 50,000 with 100 in flight. One line of figures.
fn measure(pid: i64, n: usize) -> String {
    let t = std::thread::spawn(move || {
        // setns is per thread: this thread enters the container's netns.
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.connect("10.89.0.1:53").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 512];
        // Warm-up: the first answers may wait for the names to be read.
        for i in 0..200u16 {
            let _ = s.send(&query(i, &format!("c{}", i as usize % n)));
            let _ = s.recv(&mut buf);
        }
        let mut lat = Vec::new();
        for i in 0..5000u16 {
            let t0 = Instant::now();
            // A send error (a pending ICMP error on the connected socket) counts as lost.
            if s.send(&query(i, &format!("c{}", i as usize % n))).is_ok() && s.recv(&mut buf).is_ok() && buf[3] & 0x0f == 0 {
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
            }
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let avg = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
        let pct = |p: usize| lat.get(lat.len() * p / 100).copied().unwrap_or(0.0);
        let (total, inflight) = (50_000u32, 100u32);
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let t0 = Instant::now();
        let (mut sent, mut got) = (0u32, 0u32);
        while sent < inflight {
            let _ = s.send(&query(sent as u16, &format!("c{}", sent as usize % n)));
            sent += 1;
        }
        while got < sent {
            if s.recv(&mut buf).is_err() {
                break;
            }
            got += 1;
            if sent < total {
                let _ = s.send(&query(sent as u16, &format!("c{}", sent as usize % n)));
                sent += 1;
            }
        }
        let qps = got as f64 / t0.elapsed().as_secs_f64();
        format!(
            "serial: avg {avg:.0} us, p50 {:.0} us, p99 {:.0} us, {} lost of 5000 | 100 in flight: {qps:.0} qps, {} lost of {sent}",
            pct(50),
            pct(99),
            5000 - lat.len(),
            sent - got
        )
    });
    t.join().unwrap()
}

/// From inside the netns of `pid`, unknown names as fast as one socket sends them until
/// `stop` is set (answers read and dropped); how many were sent.
fn flood(pid: i64, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.connect("10.89.0.1:53").unwrap();
        s.set_nonblocking(true).unwrap();
        let (mut n, mut buf) = (0u64, [0u8; 512]);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if s.send(&query(n as u16, &format!("x{n:x}.test"))).is_ok() {
                n += 1;
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
            while s.recv(&mut buf).is_ok() {}
        }
        n
    })
}

/// [`measure`] while container `flooder` floods the server with unknown names.
fn measure_flooded(pid: i64, flooder: i64, n: usize) -> String {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flood(flooder, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let m = measure(pid, n);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = f.join().unwrap_or(0);
    format!("{m} | flood {:.0} qps of unknown names", sent as f64 / (t0.elapsed().as_secs_f64() + 0.3))
}

/// utime + stime of process `pid`, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// dnsperf from inside the netns of `pid` against the server `server`: 100 in flight for
/// 5 s (with the server's CPU time), and one at a time.
fn dnsperf(pid: i64, server: u32) -> String {
    if !try_sh("command -v dnsperf").0 {
        return "dnsperf not installed".into();
    }
    let run = |q: u32| {
        let out = try_sh(&format!("nsenter --net=/proc/{pid}/ns/net dnsperf -s 10.89.0.1 -d /run/berth/queries -q {q} -l 5 -t 1 2>&1")).1;
        let get =
            |k: &str| out.lines().find(|l| l.trim_start().starts_with(k)).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string());
        (
            get("Queries per second").unwrap_or_default(),
            get("Average Latency (s)").unwrap_or_default(),
            get("Queries lost").unwrap_or_default(),
        )
    };
    let cpu0 = cpu_ticks(server);
    let (qps, _, lost) = run(100);
    let cpu = (cpu_ticks(server) - cpu0) as f64 / 100.0;
    let (_, lat, lost1) = run(1);
    format!("dnsperf: 100 in flight {qps} qps, lost {lost}, server CPU {cpu:.2} s of 5 | one at a time latency {lat} s, lost {lost1}")
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    isolated_main(|| {
        // Upstream: nothing listens on loopback, so forwarded names go nowhere else.
        std::fs::write("/run/berth/resolv.conf", "nameserver 127.0.0.1\n").unwrap();
        berth_tests::harness::sh("mount --bind /run/berth/resolv.conf /etc/resolv.conf");
        import_busybox("x");
        berth(&["network", "create", "--subnet", "10.89.0.0/16", "bench"]).ok();
        for i in 0..n {
            berth(&["run", "-d", "--name", &format!("c{i}"), "--net", "bench", "busybox", "sleep", "600"]).ok();
        }
        let records: Vec<serde_json::Value> =
            (0..n).map(|i| serde_json::from_str(&berth(&["inspect", &format!("c{i}")]).ok()).unwrap()).collect();
        let pid = records[0][0]["State"]["Pid"].as_i64().unwrap();
        let flooder = records[1][0]["State"]["Pid"].as_i64().unwrap();
        std::fs::write("/run/berth/queries", (0..n).map(|i| format!("c{i} A\n")).collect::<String>()).unwrap();
        let netd: u32 = std::fs::read_to_string("/run/berth/netd.pid").unwrap().trim().parse().unwrap();
        println!("dns: N={n} containers");
        println!("  netd        | {} | RSS {} kB", measure(pid, n), rss_kb(netd));
        println!("  netd        | {}", dnsperf(pid, netd));
        println!("  netd        | flooded: {} | RSS {} kB", measure_flooded(pid, flooder, n), rss_kb(netd));
        // aardvark-dns on the same address with the same names: netd steps aside.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(netd as i32), nix::sys::signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(100));
        let aardvark = ["/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns", "/usr/bin/aardvark-dns"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        if let Some(aardvark) = aardvark {
            std::fs::create_dir_all("/run/berth/aardvark").unwrap();
            let mut conf = String::from("10.89.0.1\n");
            for (i, r) in records.iter().enumerate() {
                let id = r[0]["Id"].as_str().unwrap();
                let ip = r[0]["NetworkSettings"]["IPAddress"].as_str().unwrap();
                conf.push_str(&format!("{id} {ip}  c{i},{}\n", &id[..12]));
            }
            std::fs::write("/run/berth/aardvark/bench", conf).unwrap();
            let mut a = Command::new(aardvark)
                .args(["--config", "/run/berth/aardvark", "-p", "53", "run"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            // It forks into the background: the server is the process bound to port 53.
            let server = try_sh("pidof aardvark-dns").1.split_whitespace().filter_map(|p| p.parse().ok()).max().unwrap_or(a.id());
            println!("  aardvark-dns | {} | RSS {} kB", measure(pid, n), rss_kb(server));
            println!("  aardvark-dns | {}", dnsperf(pid, server));
            println!("  aardvark-dns | flooded: {} | RSS {} kB", measure_flooded(pid, flooder, n), rss_kb(server));
            // The forked server too, not just the process that started it.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(server as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = a.kill();
            let _ = a.wait();
        } else {
            println!("  aardvark-dns not installed: no comparison");
        }
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let mut args = vec!["rm", "-f"];
        args.extend(names.iter().map(String::as_str));
        berth(&args).ok();
    });
}
