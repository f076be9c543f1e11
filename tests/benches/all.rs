//! bench/all: every figure berth's performance is judged by, measured in one run on one
//! private "host" (a fresh network and mount namespace), printed as one table and written
//! to bench/RESULTS.md with the machine it ran on:
//! - the netlink floor: the same veth + address + route per container with one netlink
//!   socket and nothing else (and deleting the veth), so every figure has a ratio to it;
//! - CNI ADD and DEL (bridge + host-local + portmap, one published port each) at N = 1,
//!   100, 500, 1000 for berth on nftables, berth on iptables and the reference plugins
//!   (/usr/lib/cni), same driver, same run; DEL at N is the DEL that leaves N-1;
//! - `berth run -d -p` to the first HTTP answer, the CLI's own time, and `rm -f`, up to N;
//! - the per-container monitor's memory; DNAT throughput through 127.0.0.1 against the
//!   container's own address; a plugin's `VERSION` exec time.
//!
//! Usage: cargo bench -p berth-tests --bench all [-- N]   (N: containers, default 1000)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_cni::conflist::Runner;
use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::net::{conflist, rt};
use berth_tests::harness::{bin_dir, isolated_main, plugin_dir, sh, try_sh};
use netd::netlink::{Route, Socket, VethRequest};
use netd::netns::NetNs;

const REFERENCE: &str = "/usr/lib/cni";

/// Median and p90 in milliseconds of `v`.
fn stats(v: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    if ms.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.9))
}

/// The (up to) 10 operations that ended with `n` containers: samples `[n-10, n)`.
fn window(v: &[Duration], n: usize) -> &[Duration] {
    &v[n.saturating_sub(10)..n.min(v.len())]
}

fn fmt((m, p): (f64, f64)) -> String {
    if m.is_nan() {
        "–".into()
    } else {
        format!("{m:.2} / {p:.2}")
    }
}

/// ADD samples by count after the ADD, DEL samples by count before the DEL.
struct Series {
    add: Vec<Duration>,
    del: Vec<Duration>,
}

fn checkpoints(n: usize) -> Vec<usize> {
    let mut c: Vec<usize> = [1, 100, 500, 1000].into_iter().filter(|&k| k <= n).collect();
    if !c.contains(&n) {
        c.push(n);
    }
    c
}

fn netns_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

/// Clean slate between runs: berth's records, bridges and rules of both backends gone.
fn reset() {
    sh(&format!("{} cleanup >/dev/null", bin_dir().join("netd").display()));
    let _ = try_sh("ip link del docker0 2>/dev/null; rm -rf /var/lib/cni/networks/berth /run/berth/*");
}

/// The floor: per container, a veth created with its peer directly in the netns, the host
/// end on a bridge and up, IPv6 off on both ends (as berth does on IPv4 networks), an
/// address, the link up and a default route inside: one netlink socket per namespace and
/// nothing else. DEL: the veth deleted by its host end.
fn floor(n: usize) -> Series {
    let mut sock = Socket::open().expect("netlink");
    sock.create_bridge("floor0", None, false).expect("bridge");
    let br = sock.link_by_name("floor0").unwrap().unwrap();
    sock.add_address(br.index, "10.99.0.1/16".parse().unwrap()).unwrap();
    sock.set_up(br.index).unwrap();
    let mut add = Vec::with_capacity(n);
    for (i, c) in netns_names(n).iter().enumerate() {
        let t = Instant::now();
        let ns = NetNs::open(format!("/run/netns/{c}")).unwrap();
        let host = format!("vf{i}");
        sock.create_veth(&VethRequest { host_name: &host, peer_name: "eth9", peer_netns_fd: ns.fd(), mtu: None, master: Some(br.index) })
            .unwrap();
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
        let l = sock.link_by_name(&host).unwrap().unwrap();
        sock.set_up(l.index).unwrap();
        let addr = format!("10.99.{}.{}/16", (i + 2) / 250, (i + 2) % 250 + 2).parse().unwrap();
        ns.run(|| {
            let mut s = Socket::open()?;
            let _ = std::fs::write("/proc/sys/net/ipv6/conf/eth9/disable_ipv6", "1");
            let l = s.link_by_name("eth9")?.ok_or(netd::Error::Internal("no eth9"))?;
            s.add_address(l.index, addr)?;
            s.set_up(l.index)?;
            let gw = "10.99.0.1".parse().unwrap();
            s.add_route(&Route { dst: Route::default_dst(gw), gw: Some(gw), oif: l.index, src: None })?;
            Ok(())
        })
        .unwrap();
        add.push(t.elapsed());
    }
    let mut del = vec![Duration::ZERO; n];
    for i in (0..n).rev() {
        let t = Instant::now();
        let l = sock.link_by_name(&format!("vf{i}")).unwrap().unwrap();
        sock.delete_link(l.index).unwrap();
        del[i] = t.elapsed();
    }
    sock.delete_link(br.index).unwrap();
    Series { add, del }
}

/// The CNI table: ADD and DEL at each checkpoint, each column against the floor.
fn cni_table(floor: &Series, columns: &[(&str, Series)], n: usize) -> String {
    let mut t = String::new();
    t.push_str("| CNI bridge+host-local+portmap, ms median / p90 (×floor) | floor (netlink only) |");
    for (name, _) in columns {
        t.push_str(&format!(" {name} |"));
    }
    t.push('\n');
    t.push_str(&format!("|---|---|{}\n", "---|".repeat(columns.len())));
    for (op, pick) in [("ADD", 0), ("DEL", 1)] {
        let cps: Vec<usize> = if pick == 0 { checkpoints(n) } else { checkpoints(n).into_iter().rev().collect() };
        for k in cps {
            let get = |s: &Series| if pick == 0 { stats(window(&s.add, k)) } else { stats(window(&s.del, k)) };
            let f = get(floor);
            t.push_str(&format!("| {op} at N={k} | {} |", fmt(f)));
            for (_, s) in columns {
                let v = get(s);
                t.push_str(&format!(" {} (×{:.1}) |", fmt(v), v.0 / f.0));
            }
            t.push('\n');
        }
    }
    t
}

/// ADD then DEL (newest first) of `n` containers through one plugin directory.
fn cni(path: PathBuf, n: usize, backend: &str) -> Series {
    std::env::set_var("BERTH_FIREWALL", backend);
    reset();
    let runner = Runner { path: vec![path] };
    let list = conflist("1.0.0");
    let cfgs: Vec<_> =
        netns_names(n).iter().enumerate().map(|(i, c)| rt(c, &format!("/run/netns/{c}"), &[(20000 + i as u16, 80, "tcp", "")])).collect();
    let mut add = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    for cfg in &cfgs {
        let t = Instant::now();
        results.push(runner.add(&list, cfg).expect("ADD"));
        add.push(t.elapsed());
    }
    let mut del = vec![Duration::ZERO; n];
    for i in (0..n).rev() {
        let t = Instant::now();
        runner.del(&list, &cfgs[i], Some(&results[i])).expect("DEL");
        del[i] = t.elapsed();
    }
    let left = sh("ip -o link show type veth").lines().count();
    assert_eq!(left, 0, "{backend}: veths left after DEL");
    Series { add, del }
}

fn answered(port: u16) -> bool {
    berth_tests::harness::netns::http_answers(port, "hello")
}

struct Runs {
    answer: Vec<Duration>,
    cli: Vec<Duration>,
    rm: Vec<Duration>,
    rss_kb: Vec<u64>,
    pss_kb: Vec<u64>,
}

/// `berth run -d -p` of `n` httpd containers (each answer awaited before the next run),
/// the monitors' memory with all of them running, then `rm -f` newest first.
fn runs(n: usize) -> Runs {
    std::env::remove_var("BERTH_FIREWALL");
    reset();
    import_busybox("hello");
    let exe = bin_dir().join("berth");
    let (mut answer, mut cli) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let port = 20000 + i as u16;
        let t0 = Instant::now();
        let st = Command::new(&exe)
            .args([
                "run",
                "-d",
                "--name",
                &format!("r{i}"),
                "-p",
                &format!("{port}:80"),
                "busybox",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/www",
            ])
            .stdout(Stdio::null())
            .status()
            .expect("berth run");
        assert!(st.success(), "berth run r{i} failed");
        cli.push(t0.elapsed());
        let f = |fmt: &str| sh(&format!("{} inspect -f '{fmt}' r{i}", exe.display())).trim().to_string();
        while !answered(port) {
            if t0.elapsed() > Duration::from_secs(10) {
                let (pid, ip) = (f("{{.State.Pid}}"), f("{{.NetworkSettings.IPAddress}}"));
                eprintln!(
                    "{}",
                    try_sh(&format!(
                        "nsenter -t {pid} -n sh -c 'ip -d addr; ip route; ip neigh'; ip -d link show master docker0 | tail -4; \
                         bridge link | wc -l; curl -s -m 1 http://{ip}/; echo curl=$?; ip neigh show dev docker0 | wc -l; \
                         ip -s ntable show name arp_cache | grep -E 'entries|table_fulls'"
                    ))
                    .1
                );
                panic!("r{i} never answered");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        answer.push(t0.elapsed());
        // The neighbour table is the kernel's, shared by every namespace (gc_thresh3 1024
        // by default, which only the host's namespace may raise): each answered container
        // holds an entry here and one in its own netns (for the bridge's address), and once
        // they pass 1024 new entries fail: container 513 never answered, and with faster
        // starts (fewer entries old enough for the kernel to evict) the last tens answered
        // after an ARP retry, 1 s. Both go: the container's at once, this namespace's now
        // and then; the next answer resolves its own address anyway.
        let _ = try_sh(&format!("nsenter -t {} -n ip neigh flush all", f("{{.State.Pid}}")));
        if i % 100 == 99 {
            let _ = try_sh("ip neigh flush dev docker0");
        }
    }
    let (mut rss_kb, mut pss_kb) = (Vec::new(), Vec::new());
    for pid in sh("pgrep -f '__wait' || true").lines() {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let kb = |k: &str| rollup.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok());
        if let (Some(r), Some(p)) = (kb("Rss:"), kb("Pss:")) {
            rss_kb.push(r);
            pss_kb.push(p);
        }
    }
    let mut rm = vec![Duration::ZERO; n];
    for i in (0..n).rev() {
        let t = Instant::now();
        berth(&["rm", "-f", &format!("r{i}")]).ok();
        rm[i] = t.elapsed();
    }
    Runs { answer, cli, rm, rss_kb, pss_kb }
}

/// `bench --sink PORT`: accepts connections and discards what they send (the server
/// side of the throughput test, run inside a container's netns).
fn sink(port: u16) {
    let l = std::net::TcpListener::bind(("0.0.0.0", port)).expect("bind");
    for s in l.incoming().flatten() {
        std::thread::spawn(move || {
            let mut s = s;
            let mut buf = vec![0u8; 1 << 18];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
}

/// Gbit/s sending `bytes` to `addr` (the send completes when the peer has read it all).
fn throughput(addr: std::net::SocketAddr, bytes: usize) -> f64 {
    let mut s = TcpStream::connect(addr).expect("connect");
    let buf = vec![7u8; 1 << 18];
    let t = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        sent += s.write(&buf).expect("write");
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = s.read(&mut [0u8; 1]);
    (sent as f64 * 8.0) / t.elapsed().as_secs_f64() / 1e9
}

/// DNAT (127.0.0.1:5201 → container) against the container's own address, best of 3.
fn dnat_throughput() -> (f64, f64) {
    std::env::remove_var("BERTH_FIREWALL");
    reset();
    sh("ip netns add tp");
    let list = conflist("1.0.0");
    let runner = Runner { path: vec![plugin_dir()] };
    let cfg = rt("tp", "/run/netns/tp", &[(5201, 5201, "tcp", "")]);
    let res = runner.add(&list, &cfg).expect("ADD");
    let ip = res["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string();
    let exe = std::env::current_exe().unwrap();
    let mut srv = Command::new("ip").args(["netns", "exec", "tp"]).arg(exe).args(["--sink", "5201"]).spawn().expect("sink");
    std::thread::sleep(Duration::from_millis(300));
    let bytes = 2 << 30;
    let best = |a: std::net::SocketAddr| (0..3).map(|_| throughput(a, bytes)).fold(0.0, f64::max);
    let direct = best(format!("{ip}:5201").parse().unwrap());
    let dnat = best("127.0.0.1:5201".parse().unwrap());
    let _ = srv.kill();
    let _ = srv.wait();
    runner.del(&list, &cfg, Some(&res)).expect("DEL");
    (dnat, direct)
}

/// Median exec time of a plugin's VERSION, in ms.
fn version_exec(plugin: &Path) -> f64 {
    let mut v = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let out = Command::new(plugin).env("CNI_COMMAND", "VERSION").stdin(Stdio::null()).output().expect("plugin");
        assert!(out.status.success());
        v.push(t.elapsed());
    }
    stats(&v).0
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(": ").nth(1))
        .unwrap_or("?")
        .to_string();
    let mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!(
        "{} cores ({cpu}), {mem}, kernel {}, {}, {}, {}",
        cores,
        sh("uname -r").trim(),
        sh("iptables --version").trim(),
        sh("nft --version").trim(),
        sh("grep PRETTY_NAME /etc/os-release | cut -d'\"' -f2").trim()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(p) = args.iter().position(|a| a == "--sink").and_then(|i| args.get(i + 1)).and_then(|p| p.parse().ok()) {
        sink(p);
        return;
    }
    let n: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/RESULTS.md");
    isolated_main(|| {
        let started = Instant::now();
        let script: String = netns_names(n).iter().map(|c| format!("netns add {c}\n")).collect();
        std::fs::write("/run/berth/netns.batch", script).unwrap();
        sh("ip -batch /run/berth/netns.batch");
        // BENCH_SKIP=nftables,iptables,reference leaves those columns out, =run the runtime
        // part (to look at one part quickly); the table is then not written.
        let skip = std::env::var("BENCH_SKIP").unwrap_or_default();
        eprintln!("floor ...");
        let floor = floor(n);
        let mut columns: Vec<(&str, Series)> = Vec::new();
        if !skip.contains("nftables") {
            eprintln!("berth nftables ...");
            columns.push(("berth nftables", cni(plugin_dir(), n, "nftables")));
        }
        if !skip.contains("iptables") {
            eprintln!("berth iptables ...");
            columns.push(("berth iptables", cni(plugin_dir(), n, "iptables")));
        }
        let reference = Path::new(REFERENCE).join("portmap").is_file() && !skip.contains("reference");
        if reference {
            eprintln!("reference plugins ...");
            columns.push(("reference (/usr/lib/cni)", cni(REFERENCE.into(), n, "iptables")));
        }
        // The CNI table as soon as it is known (the runtime part takes most of a run).
        println!("{}", cni_table(&floor, &columns, n));
        if skip.contains("run") {
            return;
        }
        eprintln!("berth run ...");
        let r = runs(n);
        eprintln!("throughput ...");
        let (dnat, direct) = dnat_throughput();
        let ver = version_exec(&plugin_dir().join("bridge"));
        let ver_ref = if reference { format!("{:.2}", version_exec(&Path::new(REFERENCE).join("bridge"))) } else { "–".into() };

        let t = cni_table(&floor, &columns, n);
        let k = 10.min(n);
        let (a0, a1) = (stats(&r.answer[..k]), stats(&r.answer[n - k..]));
        let (c0, c1) = (stats(&r.cli[..k]), stats(&r.cli[n - k..]));
        let (m0, m1) = (stats(&r.rm[n - k..]), stats(&r.rm[..k]));
        let rss = stats(&r.rss_kb.iter().map(|kb| Duration::from_micros(*kb)).collect::<Vec<_>>());
        let pss = stats(&r.pss_kb.iter().map(|kb| Duration::from_micros(*kb)).collect::<Vec<_>>());
        let mut u = String::new();
        u.push_str("| runtime and data path | first 10 | last 10 |\n|---|---|---|\n");
        u.push_str(&format!("| `berth run -d -p` → first HTTP answer, ms median / p90 (N=1…{n}) | {} | {} |\n", fmt(a0), fmt(a1)));
        u.push_str(&format!("| `berth run -d -p` CLI returns, ms | {} | {} |\n", fmt(c0), fmt(c1)));
        u.push_str(&format!("| `berth rm -f`, ms (at N={n} / at N≤10) | {} | {} |\n", fmt(m0), fmt(m1)));
        u.push_str(&format!(
            "| per-container monitor, kB RSS / PSS (median of {}) | {:.0} / {:.0} | |\n",
            r.rss_kb.len(),
            rss.0 * 1000.0,
            pss.0 * 1000.0
        ));
        u.push_str(&format!(
            "| TCP throughput via DNAT 127.0.0.1 vs container address, Gbit/s | {dnat:.1} vs {direct:.1} ({:.0} %) | |\n",
            dnat / direct * 100.0
        ));
        u.push_str(&format!("| plugin `VERSION` exec, ms median: berth / reference | {ver:.2} / {ver_ref} | |\n"));
        let md = format!(
            "# berth benchmark results\n\nGenerated by `bench/all {n}` on {} (took {:.0} s).\n\nMachine: {}.\n\n\
             Every figure comes from one run in one private network namespace; CNI columns share \
             one driver (berth's conflist runner) and the same 1,000 namespaces. \"ADD at N\" is the \
             10 ADDs that ended with N containers, \"DEL at N\" the 10 DELs that started from N \
             (newest first); the floor is the same veth + address + route with one netlink socket \
             and nothing else.\n\n{t}\n{u}",
            sh("date -u +%Y-%m-%dT%H:%MZ").trim(),
            started.elapsed().as_secs_f64(),
            machine(),
        );
        println!("{md}");
        // The sections other benches wrote (`## ...`) stay below this one's.
        let kept =
            std::fs::read_to_string(&results).ok().and_then(|old| old.find("\n## ").map(|i| old[i..].to_string())).unwrap_or_default();
        if skip.is_empty() {
            std::fs::write(&results, format!("{md}{kept}")).expect("write bench/RESULTS.md");
            println!("written to {}", results.display());
        }
    });
}
