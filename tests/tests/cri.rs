//! Pods through containerd's CRI with only berth's plugins, as kubelet runs them: the
//! test plays kubelet over the CRI socket (k8s-cri), containerd 1.6 calls the node
//! conflist (bridge + host-local on the podCIDR, portmap, bandwidth). One node: hostPort
//! answers on 127.0.0.1 and on the node's address from another host, bandwidth
//! annotations shape, a pod reaches another, and removing the pods leaves no veth, no
//! address, no rule; containerd killed in the middle of a RunPodSandbox still lists the
//! pod after a restart, and removing it leaves nothing. Two nodes (each a netns with its own
//! containerd and podCIDR, wired host-gw style): pods reach each other by pod IP with
//! their own source address, while traffic leaving the cluster is masqueraded.

use std::time::{Duration, Instant};

use berth_tests::harness::cri::{node_conflist, Node, NETWORK};
use berth_tests::harness::{bin_dir, curl, fw, isolated, sh, try_sh, wait_for, Netns};

const HTTPD: &[&str] = &["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"];

/// What the pods of `node` left there: veths, held addresses, ifbs, rules naming `ips`.
fn leftovers(node: &Node, ips: &[String]) -> Vec<String> {
    // The pods' host ends (the test's own links are named otherwise).
    let mut left: Vec<String> = node
        .sh("ip -o link show type veth")
        .lines()
        .filter(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with("veth")))
        .map(|l| format!("veth: {l}"))
        .collect();
    let held = node.sh(&format!("ls /var/lib/cni/networks/{NETWORK} 2>/dev/null | grep '^10\\.'; true"));
    left.extend(held.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("address held: {l}")));
    left.extend(node.sh("ip -o link show type ifb").lines().map(|l| format!("ifb: {l}")));
    let rules = node.sh(fw::dump_cmd());
    for ip in ips {
        if fw::mentions_in(&rules, ip) {
            left.push(format!("rule naming {ip}"));
        }
    }
    if fw::publishes_in(&rules, 30080) {
        left.push("hostPort 30080 still published".into());
    }
    left
}

/// The node's LAN: a veth to netns `lan` (192.0.2.9), the node at 192.0.2.1.
fn lan() -> Netns {
    let lan = Netns::new("lan");
    sh("ip link add uplink type veth peer name eth0 netns lan && ip addr add 192.0.2.1/24 dev uplink && ip link set uplink up");
    lan.sh("ip addr add 192.0.2.9/24 dev eth0 && ip link set eth0 up");
    lan
}

#[test]
fn pods_on_containerd_cri_get_berth_networking() {
    isolated(|| {
        let lan = lan();
        let mut node = Node::start("n1", None, &bin_dir(), &node_conflist("10.244.1.0/24", "10.244.0.0/16"));
        let t = Instant::now();
        let web = node.run_pod("web", &[(30080, 80)], &[]).unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", node.log()));
        let first = t.elapsed();
        let shaped = node
            .run_pod("shaped", &[], &[("kubernetes.io/ingress-bandwidth", "1M"), ("kubernetes.io/egress-bandwidth", "2M")])
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}"));
        let (web_ip, shaped_ip) = (node.pod_ip(&web), node.pod_ip(&shaped));
        assert!(web_ip.starts_with("10.244.1.") && shaped_ip.starts_with("10.244.1."), "{web_ip} {shaped_ip}");
        println!("REPORT cri: RunPodSandbox with hostPort {} ms (first pod, cold)", first.as_millis());
        let httpd = node.start_container(&web, "httpd", HTTPD);
        let shaped_httpd = node.start_container(&shaped, "httpd", HTTPD);

        // hostPort: on loopback and on the node's address from another host.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !try_sh(&curl("http://127.0.0.1:30080/")).1.contains("pod page") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(try_sh(&curl("http://127.0.0.1:30080/")).1.contains("pod page"), "127.0.0.1:30080 does not answer");
        assert!(lan.try_sh(&curl("http://192.0.2.1:30080/")).1.contains("pod page"), "192.0.2.1:30080 does not answer the LAN");

        // Bandwidth annotations: a tbf on the shaped pod's host veth, an ifb for egress.
        let tbfs = sh("for d in $(ls /sys/class/net); do tc qdisc show dev $d | grep -q tbf && echo $d; done; true");
        assert_eq!(tbfs.lines().filter(|d| d.starts_with("veth")).count(), 1, "one tbf on a host veth: {tbfs}");
        assert_eq!(tbfs.lines().filter(|d| d.starts_with("bwp")).count(), 1, "one ifb with its tbf: {tbfs}");
        assert!(sh("tc qdisc show").contains("rate 1Mbit"), "{}", sh("tc qdisc show"));

        // A pod reaches another pod.
        let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {shaped_ip} 80");
        let (code, out) = node.exec(&httpd, &["/bin/busybox", "sh", "-c", &get]);
        assert!(code == 0 && out.contains("pod page"), "web → shaped: {code} {out}");
        let (code, _) = node.exec(&shaped_httpd, &["/bin/busybox", "ping", "-c1", "-W2", &web_ip]);
        assert_eq!(code, 0, "shaped → web: no answer to ping");

        // kubelet removes the pods: nothing of them stays.
        node.remove_pod(&web).expect("remove web");
        node.remove_pod(&shaped).expect("remove shaped");
        assert_eq!(leftovers(&node, &[web_ip, shaped_ip]), Vec::<String>::new());
    });
}

/// A container answering `GET /cgi-bin/ip` with the address the request came from.
const WHO: &[&str] = &[
    "/bin/busybox",
    "sh",
    "-c",
    "mkdir -p /w/cgi-bin && printf '#!/bin/sh\\necho\\necho from $REMOTE_ADDR\\n' >/w/cgi-bin/ip && chmod +x /w/cgi-bin/ip && exec httpd -f -p 80 -h /w",
];

/// `GET /cgi-bin/ip` from a container, by nc: what the server saw as the source.
fn who_am_i(node: &mut Node, container: &str, server: &str) -> String {
    let get = format!("printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {server} 80");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, out) = node.exec(container, &["/bin/busybox", "sh", "-c", &get]);
        if (code == 0 && out.contains("from ")) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pods_on_two_nodes_keep_their_addresses_between_nodes_and_are_masqueraded_beyond() {
    isolated(|| {
        // Two nodes wired host-gw style (each routes the other's podCIDR via its
        // address on the wire), and a host outside the cluster beyond node 1.
        let (n1, n2, ext) = (Netns::new("node1"), Netns::new("node2"), Netns::new("ext"));
        n1.sh("ip link add wire type veth peer name wire netns node2 && ip addr add 192.0.2.1/24 dev wire && ip link set wire up");
        n2.sh("ip addr add 192.0.2.2/24 dev wire && ip link set wire up");
        n1.sh("ip route add 10.244.2.0/24 via 192.0.2.2 && sysctl -qw net.ipv4.ip_forward=1");
        n2.sh("ip route add 10.244.1.0/24 via 192.0.2.1 && ip route add default via 192.0.2.1 && sysctl -qw net.ipv4.ip_forward=1");
        n1.sh("ip link add uplink type veth peer name eth0 netns ext && ip addr add 198.51.100.1/24 dev uplink && ip link set uplink up");
        ext.sh("ip addr add 198.51.100.9/24 dev eth0 && ip link set eth0 up && ip route add default via 198.51.100.1");
        let cgi = std::path::Path::new("/var/lib/berth/ext-w/cgi-bin");
        std::fs::create_dir_all(cgi).expect("mkdir");
        std::fs::write(cgi.join("ip"), "#!/bin/sh\necho\necho from $REMOTE_ADDR\n").expect("cgi");
        sh(&format!("chmod +x {}/ip", cgi.display()));
        let _outside = ext.spawn("busybox httpd -f -p 80 -h /var/lib/berth/ext-w");
        let cluster = "10.244.0.0/16";
        let mut node1 = Node::start("n1", Some(&n1), &bin_dir(), &node_conflist("10.244.1.0/24", cluster));
        let mut node2 = Node::start("n2", Some(&n2), &bin_dir(), &node_conflist("10.244.2.0/24", cluster));
        let a = node1.run_pod("a", &[], &[]).unwrap_or_else(|e| panic!("RunPodSandbox on node 1: {e}\n{}", node1.log()));
        let b = node2.run_pod("b", &[], &[]).unwrap_or_else(|e| panic!("RunPodSandbox on node 2: {e}\n{}", node2.log()));
        let (ip_a, ip_b) = (node1.pod_ip(&a), node2.pod_ip(&b));
        assert!(ip_a.starts_with("10.244.1.") && ip_b.starts_with("10.244.2."), "{ip_a} {ip_b}");
        let client = node1.start_container(&a, "who", WHO);
        let server = node2.start_container(&b, "who", WHO);

        // Pod to pod across nodes: the receiver sees the sender's pod address.
        let seen = who_am_i(&mut node1, &client, &ip_b);
        assert!(seen.contains(&format!("from {ip_a}")) || seen.contains(&format!(":{ip_a}]")), "pod b saw: {seen}");
        let seen = who_am_i(&mut node2, &server, &ip_a);
        assert!(seen.contains(&format!("from {ip_b}")) || seen.contains(&format!(":{ip_b}]")), "pod a saw: {seen}");
        // Leaving the cluster: masqueraded to the node's address.
        let seen = who_am_i(&mut node1, &client, "198.51.100.9");
        assert!(seen.contains("198.51.100.1") && !seen.contains(&ip_a), "the outside host saw: {seen}");
        let seen = who_am_i(&mut node2, &server, "198.51.100.9");
        assert!(seen.contains("192.0.2.2") && !seen.contains(&ip_b), "the outside host saw (from node 2): {seen}");

        node1.remove_pod(&a).expect("remove a");
        node2.remove_pod(&b).expect("remove b");
        assert_eq!(leftovers(&node1, &[ip_a]), Vec::<String>::new());
        assert_eq!(leftovers(&node2, &[ip_b]), Vec::<String>::new());
    });
}

/// berth's plugins in a directory of their own, with `portmap` held back `secs` seconds
/// before it runs: a window in the middle of a RunPodSandbox (bridge done, portmap not).
fn slow_portmap_dir(secs: u32) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from("/var/lib/berth/slow-bin");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for e in std::fs::read_dir(bin_dir()).expect("bin dir").flatten() {
        let name = e.file_name();
        if e.path().is_file() && name != "portmap" {
            let _ = std::os::unix::fs::symlink(e.path(), dir.join(&name));
        }
    }
    let real = bin_dir().join("portmap");
    std::fs::write(
        dir.join("portmap"),
        format!("#!/bin/sh\ntouch {0}/portmap.started\nsleep {secs}\nexec {1} \"$@\"\n", dir.display(), real.display()),
    )
    .expect("wrapper");
    sh(&format!("chmod +x {}/portmap", dir.display()));
    dir
}

#[test]
fn containerd_killed_in_the_middle_of_a_run_pod_sandbox_leaves_nothing() {
    isolated(|| {
        let bins = slow_portmap_dir(2);
        let mut node = Node::start("k", None, &bins, &node_conflist("10.244.1.0/24", "10.244.0.0/16"));
        let pid = node.pid().expect("running");
        let started = bins.join("portmap.started");
        // kubelet's RunPodSandbox, and containerd SIGKILLed while portmap's ADD waits:
        // the bridge's veth, address and rules are in, the hostPort not yet.
        let run = std::thread::scope(|s| {
            let h = s.spawn(|| node.run_pod("half", &[(30080, 80)], &[]));
            wait_for("portmap to start", || started.exists());
            sh(&format!("kill -9 {pid}"));
            h.join().expect("thread")
        });
        assert!(run.is_err(), "RunPodSandbox answered though containerd was killed");
        let veths = || sh("ip -o link show type veth").lines().count();
        assert_eq!(veths(), 1, "the half-made pod has no veth: this test would prove nothing");
        let ip = sh(&format!("ls /var/lib/cni/networks/{NETWORK} | grep '^10\\.'")).trim().to_string();
        // The orphaned portmap finishes its ADD for a runtime that is gone.
        wait_for("the orphaned portmap ADD", || fw::publishes(30080));

        // containerd comes back, kubelet sees the pod and removes it.
        node.restart();
        let pods = node.pods();
        assert_eq!(pods.len(), 1, "containerd forgot the half-made sandbox: {pods:?}");
        node.remove_pod(&pods[0]).expect("remove the half-made pod");
        assert_eq!(leftovers(&node, &[ip]), Vec::<String>::new());
        assert_eq!(sh("ls /run/netns").trim(), "", "the pod's netns is left");
        // A CNI 1.1 runtime's GC with nothing valid then finds nothing to do.
        let mut list = node_conflist("10.244.1.0/24", "10.244.0.0/16");
        list["cniVersion"] = "1.1.0".into();
        let list = berth_cni::conflist::ConfList::parse(list.to_string().as_bytes()).expect("conflist");
        berth_cni::conflist::Runner { path: vec![bin_dir()] }.gc(&list, &[]).expect("GC");
        println!("REPORT cri: containerd SIGKILLed mid-RunPodSandbox: the sandbox is listed after restart and its StopPodSandbox (CNI DEL) removed veth, address, rules and hostPort; a GC after it found nothing");
    });
}
