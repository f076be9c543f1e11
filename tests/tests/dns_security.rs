//! netd's resolver serves a network's names to that network's members only, forwards
//! nothing from an `--internal` network, stays answering while one container floods it
//! with unknown names behind a slow upstream (its descriptors and memory bounded), and
//! truncates large UDP answers (complete over TCP).

use std::process::{Command, Stdio};

use berth_tests::harness::berth::{berth, import_busybox};
use berth_tests::harness::dns::{dig, dig_tries, upstream, upstream_saw};
use berth_tests::harness::{isolated, sh, wait_for, OtherHost};

fn pid(name: &str) -> String {
    berth(&["inspect", "-f", "{{.State.Pid}}", name]).ok().trim().to_string()
}

fn run_d(name: &str, net: &str, extra: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name, "--net", net];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["busybox", "sleep", "600"]);
    berth(&a).ok();
    pid(name)
}

fn netd_pid() -> String {
    sh("cat /run/berth/netd.pid").trim().to_string()
}

fn fds_and_rss(pid: &str) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    (fds, rss)
}

#[test]
fn the_resolver_answers_only_its_networks_members() {
    isolated(|| {
        let other = OtherHost::new();
        let _up = upstream(&other, false);
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        berth(&["network", "create", "--subnet", "10.90.0.0/24", "other"]).ok();
        berth(&["network", "create", "--internal", "--subnet", "10.91.0.0/24", "sealed"]).ok();
        let web = run_d("web", "app", &[]);
        let ip = berth(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]).ok().trim().to_string();
        wait_for("the resolver", || dig(&web, "10.89.0.1", "web", "udp").contains(&ip));
        assert!(dig(&web, "10.89.0.1", "example.test", "udp").contains("198.51.100.7"), "forwarding works for members");

        // A container on another user network, and one on the default bridge: nothing
        // from app's resolver (it is bound to app's bridge), over UDP and TCP.
        let stranger = run_d("stranger", "other", &[]);
        let plain = run_d("plain", "bridge", &[]);
        for who in [&stranger, &plain] {
            for proto in ["udp", "tcp"] {
                let out = dig(who, "10.89.0.1", "web", proto);
                assert!(out == "no answer" || out.starts_with("rcode=5"), "{who} {proto}: {out}");
            }
        }

        // A LAN host that routes the subnet via this host: no answer from any gateway
        // resolver, no recursion for it either.
        other.ns.sh("ip route add 10.89.0.0/16 via 192.0.2.1");
        sh("sysctl -qw net.ipv4.ip_forward=1");
        for (server, name) in [("10.89.0.1", "web"), ("10.89.0.1", "lan.test"), ("10.90.0.1", "stranger")] {
            for proto in ["udp", "tcp"] {
                assert_eq!(dig("other", server, name, proto), "no answer", "the LAN host asked {server} for {name} over {proto}");
            }
        }
        assert!(!upstream_saw("lan.test"), "the LAN host's question was forwarded");

        // --internal: container names resolve, nothing is forwarded.
        let inside = run_d("inside", "sealed", &[]);
        run_d("peer", "sealed", &[]);
        wait_for("names on the internal network", || dig(&inside, "10.91.0.1", "peer", "udp").starts_with("rcode=0 tc=0 answers=1"));
        for proto in ["udp", "tcp"] {
            let out = dig(&inside, "10.91.0.1", "exfil.test", proto);
            assert!(out.starts_with("rcode=5"), "internal {proto}: {out}");
        }
        assert!(!upstream_saw("exfil.test"), "a name from an --internal network reached the upstream");
    });
}

#[test]
fn a_flood_of_unknown_names_costs_only_the_flooder() {
    isolated(|| {
        let other = OtherHost::new();
        let _up = upstream(&other, true);
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        let victim = run_d("victim", "app", &[]);
        let flooder = run_d("flooder", "app", &[]);
        run_d("db", "app", &[]);
        wait_for("the resolver", || dig(&victim, "10.89.0.1", "db", "udp").starts_with("rcode=0"));
        let netd = netd_pid();
        let before = fds_and_rss(&netd);
        // 3 s of unknown names as fast as one socket sends them, from the flooder's netns.
        let flood = "import socket, struct, time, os\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)\nend, n = time.time() + 3, 0\nwhile time.time() < end:\n    q = struct.pack('>HHHHHH', n & 0xffff, 0x0100, 1, 0, 0, 0) + bytes([8]) + os.urandom(4).hex().encode() + b'\\x04test\\x00\\x00\\x01\\x00\\x01'\n    try: s.sendto(q, ('10.89.0.1', 53)); n += 1\n    except BlockingIOError: time.sleep(0.0005)\n    try:\n        while True: s.recv(512)\n    except BlockingIOError: pass\nprint(n)\n";
        std::fs::write("/run/berth/flood.py", flood).unwrap();
        let flood =
            Command::new("nsenter").args(["-t", &flooder, "-n", "python3", "/run/berth/flood.py"]).stdout(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        // Meanwhile the other container's lookups keep answering (each with the three
        // tries a stub resolver makes: on a loaded 2-core machine a datagram may drop).
        let (mut asked, mut answered) = (0, 0);
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(2) {
            asked += 1;
            answered += u32::from(dig_tries(&victim, "10.89.0.1", "db", "udp", 3).starts_with("rcode=0 tc=0 answers=1"));
        }
        let during = fds_and_rss(&netd);
        let sent = String::from_utf8_lossy(&flood.wait_with_output().unwrap().stdout).trim().to_string();
        std::thread::sleep(std::time::Duration::from_secs(4));
        let after = fds_and_rss(&netd);
        println!(
            "REPORT dns flood: {sent} unknown names in 3 s from one container behind a silent upstream; the other container's lookups {answered}/{asked} answered; netd fds {} → {} (during) → {} (after), RSS {} → {} → {} kB",
            before.0, during.0, after.0, before.1, during.1, after.1
        );
        assert_eq!(answered, asked, "the victim lost answers during the flood");
        assert!(during.0 <= before.0 + 8, "netd's descriptors grew with the flood: {before:?} → {during:?}");
        assert!(after.1 < before.1 + 20_000, "netd's memory grew with the flood: {before:?} → {after:?}");
        // The flooder itself is told REFUSED past its share, not left hanging forever.
        let out = dig(&flooder, "10.89.0.1", "db", "udp");
        assert!(out.starts_with("rcode=0"), "the flooder's own names still resolve: {out}");
    });
}

#[test]
fn a_large_answer_is_truncated_over_udp_and_whole_over_tcp() {
    isolated(|| {
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        for i in 0..100 {
            berth(&["run", "-d", "--name", &format!("r{i}"), "--net", "app", "--network-alias", "svc", "busybox", "sleep", "600"]).ok();
        }
        let asker = pid("r0");
        wait_for("the names", || dig(&asker, "10.89.0.1", "r99", "udp").starts_with("rcode=0 tc=0 answers=1"));
        let udp = dig(&asker, "10.89.0.1", "svc", "udp");
        assert!(udp.starts_with("rcode=0 tc=1 answers=0"), "UDP: {udp}");
        let tcp = dig(&asker, "10.89.0.1", "svc", "tcp");
        assert!(tcp.starts_with("rcode=0 tc=0 answers=100"), "TCP: {tcp}");
        assert_eq!(tcp.split_whitespace().skip(3).count(), 100, "{tcp}");

        // TCP is bounded: eight idle connections from one source are its share (a ninth
        // is closed unanswered), and idle ones are closed after 5 s.
        let script = "import socket, struct, time\nidle = [socket.create_connection(('10.89.0.1', 53), timeout=2) for _ in range(8)]\ntime.sleep(0.3)\nq = struct.pack('>HHHHHH', 1, 0x0100, 1, 0, 0, 0) + b'\\x03r99\\x00' + struct.pack('>HH', 1, 1)\ns = socket.create_connection(('10.89.0.1', 53), timeout=2)\ns.sendall(struct.pack('>H', len(q)) + q)\ntry: print('ninth', 'answered' if s.recv(2) else 'closed')\nexcept OSError: print('ninth closed')\nt0 = time.time()\nfor c in idle: c.settimeout(8); print('idle', 'closed' if c.recv(1) == b'' else 'data')\nprint('after', round(time.time() - t0))\n";
        std::fs::write("/run/berth/tcpcap.py", script).unwrap();
        let out = sh(&format!("nsenter -t {asker} -n python3 /run/berth/tcpcap.py"));
        assert!(out.starts_with("ninth closed"), "{out}");
        assert_eq!(out.matches("idle closed").count(), 8, "{out}");
        let after: u64 = out.lines().last().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!((4..=6).contains(&after), "idle connections closed after {after} s: {out}");
    });
}
