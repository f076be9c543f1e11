//! berth's plugins under the runtimes people run: a stock podman (CNI backend, its
//! default conflist bridge → portmap → firewall → tuning) and containerd's `ctr run
//! --cni`, each with only berth's plugins in its plugin directory. Skipped, with a
//! printed reason, where the program is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_tests::harness::net::links;
use berth_tests::harness::netns::{http_answers, wait_for};
use berth_tests::harness::podman::{self, Podman};
use berth_tests::harness::{bin_dir, fw, image, isolated, sh, try_sh};

const PLUGINS: [&str; 8] = ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback", "macvlan", "ipvlan"];

fn installed(progs: &[&str], what: &str) -> bool {
    let missing: Vec<&&str> = progs.iter().filter(|p| !try_sh(&format!("command -v {p}")).0).collect();
    if !missing.is_empty() {
        println!("SKIP {what}: {missing:?} not installed (apt-get install podman containerd runc)");
    }
    missing.is_empty()
}

/// A directory holding berth's plugins and nothing else.
fn plugin_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for p in PLUGINS {
        std::fs::copy(bin_dir().join(p), dir.join(p)).unwrap();
    }
    dir.to_path_buf()
}

/// The container-side state berth keeps per attachment, which must all be gone.
fn attachment_state() -> Vec<String> {
    let mut left = Vec::new();
    for d in ["/run/berth/cni-firewall", "/run/berth/cni-portmap", "/run/cni/tuning"] {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            left.push(e.path().display().to_string());
        }
    }
    for e in std::fs::read_dir("/var/lib/cni/networks").into_iter().flatten().flatten() {
        for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().parse::<std::net::IpAddr>().is_ok() {
                left.push(f.path().display().to_string());
            }
        }
    }
    left
}

fn veths() -> Vec<String> {
    links().into_iter().filter(|l| l.starts_with("veth")).collect()
}

#[test]
fn podman_serves_a_published_port_through_berths_plugins_and_cleans_up() {
    isolated(|| {
        if !installed(&["podman", "runc"], "podman") || !podman::installed() {
            return;
        }
        let plugins = plugin_dir(Path::new("/run/berth/cni-bin"));
        let tar = image::busybox_tar("served by podman");
        let pm = Podman::new(Path::new("/run/berth/podman"), &plugins, &tar);
        let podman = |args: &str| pm.run(args);
        let (ok, out) = podman("run -d --name web -p 4100:80 localhost/bb httpd -f -p 80 -h /www");
        assert!(ok, "podman run: {out}");
        wait_for("the published port to answer", || http_answers(4100, "served by podman"));
        let ip = podman("inspect -f '{{.NetworkSettings.IPAddress}}' web").1.trim().to_string();
        assert!(ip.starts_with("10.88."), "podman's default network address: {ip}");
        assert!(fw::mentions(&ip), "the firewall plugin let {ip} through:\n{}", fw::dump());
        assert!(fw::publishes(4100));
        assert_eq!(veths().len(), 1);

        let (ok, out) = podman("rm -f -t 0 web");
        assert!(ok, "podman rm: {out}");
        assert!(!http_answers(4100, "served by podman"));
        assert!(!fw::publishes(4100), "port still published:\n{}", fw::dump());
        assert!(!fw::mentions(&ip), "rules for {ip} left:\n{}", fw::dump());
        assert_eq!(veths(), Vec::<String>::new());
        assert_eq!(attachment_state(), Vec::<String>::new());
    });
}

#[test]
fn podman_macvlan_networks_work_with_only_berths_plugins() {
    isolated(|| {
        if !installed(&["podman", "runc"], "podman") || !podman::installed() {
            return;
        }
        // The LAN: lan0, whose peer netns holds 192.0.2.2.
        sh("ip netns add lanpeer && ip link add lan0 type veth peer name eth0 netns lanpeer && ip link set lan0 up");
        sh("ip netns exec lanpeer sh -c 'ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip link set lo up'");
        let plugins = plugin_dir(Path::new("/run/berth/cni-bin"));
        let pm = Podman::new(Path::new("/run/berth/podman"), &plugins, &image::busybox_tar("on the LAN"));
        pm.ok("network create -d macvlan -o parent=lan0 --subnet 192.0.2.0/24 --ip-range 192.0.2.128/25 --gateway 192.0.2.1 lan");
        let conf = sh("cat /run/berth/podman/net.d/lan.conflist");
        assert!(conf.contains("\"macvlan\""), "{conf}");
        let (ok, out) = pm.run("run -d --name web --network lan localhost/bb httpd -f -p 80 -h /www");
        assert!(ok, "podman run: {out}");
        let ip = pm.ok("inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' web").trim().to_string();
        assert!(ip.starts_with("192.0.2.1"), "{ip}");
        let answers = || try_sh(&format!("ip netns exec lanpeer curl -s --max-time 1 http://{ip}/")).1 == "on the LAN";
        wait_for("the container's web server from the LAN peer", answers);
        assert!(links().iter().all(|l| !l.starts_with("mv") && !l.starts_with("cl")), "a temporary link stayed: {:?}", links());
        let (ok, out) = pm.run("rm -f -t 0 web");
        assert!(ok, "podman rm: {out}");
        assert!(!answers());
        assert_eq!(attachment_state(), Vec::<String>::new(), "podman rm left an address held");
        pm.ok("network rm lan");
    });
}

struct Containerd(Child);

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ctr_run_cni_gets_a_working_network_from_berths_plugins() {
    isolated(|| {
        if !installed(&["containerd", "ctr", "runc"], "containerd") {
            return;
        }
        // ctr reads the fixed CNI directories: give them to this test host only.
        sh("mount -t tmpfs tmpfs /etc/cni && mkdir -p /etc/cni/net.d && mount -t tmpfs tmpfs /opt && mkdir -p /opt/cni/bin");
        plugin_dir(Path::new("/opt/cni/bin"));
        std::fs::write(
            "/etc/cni/net.d/10-berth.conflist",
            r#"{"cniVersion": "1.0.0", "name": "ctrnet", "plugins": [
                {"type": "bridge", "bridge": "ctr0", "isGateway": true, "ipMasq": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "firewall"}, {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}]}"#,
        )
        .unwrap();
        let base = "/run/berth/containerd";
        std::fs::create_dir_all(base).unwrap();
        std::fs::write(
            format!("{base}/config.toml"),
            format!("version = 2\nroot = \"{base}/root\"\nstate = \"{base}/state\"\n[grpc]\naddress = \"{base}/sock\"\n"),
        )
        .unwrap();
        let _daemon = Containerd(
            Command::new("containerd")
                .args(["--config", &format!("{base}/config.toml")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start containerd"),
        );
        wait_for("containerd's socket", || Path::new(&format!("{base}/sock")).exists());
        let rootfs = PathBuf::from(base).join("rootfs");
        image::busybox_rootfs(&rootfs, "served under containerd");
        let ctr = format!("ctr --address {base}/sock");
        let run = Command::new("sh")
            .arg("-c")
            .arg(format!("{ctr} run --cni --rm --rootfs {} web /bin/httpd -f -p 80 -h /www", rootfs.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr run");
        wait_for("the container to answer on its address", || {
            try_sh("curl -s --max-time 1 http://10.77.0.2/").1.contains("served under containerd")
        });
        assert!(fw::mentions("10.77.0.2"), "the firewall plugin let the address through:\n{}", fw::dump());
        assert_eq!(veths().len(), 1);
        // tuning wrote the sysctl inside the container's namespace, not the host's.
        let pid = sh(&format!("{ctr} task ls"))
            .lines()
            .find(|l| l.starts_with("web"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_string();
        assert_eq!(sh(&format!("nsenter -t {pid} -n cat /proc/sys/net/ipv4/conf/eth0/arp_filter")).trim(), "1");

        let (ok, out) = try_sh(&format!("{ctr} task kill -s KILL web"));
        assert!(ok, "ctr task kill: {out}");
        let out = run.wait_with_output().unwrap();
        assert!(out.status.code().is_some(), "ctr run: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!fw::mentions("10.77.0.2"), "rules left:\n{}", fw::dump());
        assert_eq!(veths(), Vec::<String>::new());
        assert_eq!(attachment_state(), Vec::<String>::new());
    });
}
