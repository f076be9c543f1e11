//! Docker's macvlan and ipvlan drivers in berth. The LAN is a veth `lan0` whose peer is
//! the netns `lanpeer` (192.0.2.2/24). `berth network create -d macvlan -o parent=lan0`:
//! containers get their own addresses on the LAN — the peer reaches a container's web
//! server directly, containers reach each other, the default route only through the
//! `--gateway` given — find each other by name (netd on 127.0.0.11 in their netns, as
//! Docker), publish no ports (refused, nothing held), and `network rm` leaves no link; the same network through the real docker CLI against netd. Parents this kernel
//! cannot make (802.1Q `IF.VID`, the dummy of a parentless network) and ipvlan links are
//! refused clearly with nothing stored or held, after their SKIP lines.

use serde_json::Value;

use berth_tests::harness::berth::{berth, import_busybox, inspect};
use berth_tests::harness::netd::{Netd, SOCK};
use berth_tests::harness::{curl, isolated, kernel_has, sh, try_sh, wait_for, Netns};

fn lan() -> Netns {
    let peer = Netns::new("lanpeer");
    sh("ip link add lan0 type veth peer name eth0 netns lanpeer && ip link set lan0 up");
    peer.sh("ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip link set lo up");
    peer
}

fn ip_of(name: &str) -> String {
    let v = inspect(name);
    v["NetworkSettings"]["Networks"].as_object().and_then(|n| n.values().next()).map(|n| n["IPAddress"].clone()).map_or_else(
        || v["NetworkSettings"]["IPAddress"].as_str().unwrap_or_default().to_string(),
        |a| a.as_str().unwrap_or_default().to_string(),
    )
}

fn held(net: &str) -> usize {
    sh(&format!("ls /var/lib/berth/ipam/{net} 2>/dev/null | grep -c '^192' || true")).trim().parse().unwrap_or(0)
}

#[test]
fn berth_macvlan_networks_put_containers_on_the_lan() {
    isolated(|| {
        let peer = lan();
        import_busybox("page");
        berth(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=lan0",
            "--subnet",
            "192.0.2.0/24",
            "--ip-range",
            "192.0.2.128/25",
            "--gateway",
            "192.0.2.1",
            "lan",
        ])
        .ok();
        let v: Value = serde_json::from_str(&berth(&["network", "inspect", "lan"]).ok()).unwrap();
        assert_eq!(v[0]["Driver"], "macvlan");
        assert_eq!((v[0]["Options"]["parent"].as_str(), v[0]["Options"]["macvlan_mode"].as_str()), (Some("lan0"), Some("bridge")));
        assert!(berth(&["network", "ls"]).ok().lines().any(|l| l.starts_with("lan ") && l.ends_with("macvlan")));
        let conf: Value = serde_json::from_str(&sh("cat /var/lib/berth/networks/lan.conflist")).unwrap();
        assert_eq!((conf["plugins"][0]["type"].as_str(), conf["plugins"][0]["master"].as_str()), (Some("macvlan"), Some("lan0")), "{conf}");

        berth(&["run", "-d", "--name", "web", "--net", "lan", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        berth(&["run", "-d", "--name", "other", "--net", "lan", "busybox", "sleep", "60"]).ok();
        let ip = ip_of("web");
        assert!(ip.starts_with("192.0.2.12"), "{ip}: not from --ip-range");
        // The LAN peer reaches the container's own address, straight over the LAN.
        wait_for("the container's web server from the LAN", || peer.try_sh(&curl(&format!("http://{ip}/"))).1 == "page");
        assert!(peer.sh("ip neigh show").contains(&ip), "the peer did not resolve the container's address on the LAN");
        assert!(berth(&["exec", "other", "busybox", "ping", "-c1", "-W1", &ip]).code == 0, "containers do not reach each other");
        let routes = berth(&["exec", "web", "ip", "route"]).ok();
        assert!(routes.contains("default via 192.0.2.1 dev eth0"), "{routes}");
        // Names: netd answers on 127.0.0.11 inside each member's netns, as Docker.
        assert!(berth(&["exec", "web", "cat", "/etc/resolv.conf"]).ok().contains("nameserver 127.0.0.11"));
        wait_for("web's name from the other container", || {
            let o = berth(&["exec", "other", "busybox", "nslookup", "web"]);
            o.code == 0 && o.stdout.contains(&ip)
        });
        let o = berth(&["exec", "other", "busybox", "nslookup", "nosuchname.invalid"]);
        assert_ne!(o.code, 0, "{}", o.stdout);
        let netd_sockets = || {
            let pid = sh("ss -xlpn | grep -o 'netd\",pid=[0-9]*' | head -1 | cut -d= -f2");
            sh(&format!("ls -l /proc/{}/fd | grep -c socket: || true", pid.trim())).trim().parse::<usize>().unwrap_or(0)
        };
        let with_members = netd_sockets();
        assert!(sh("ip -o link show type macvlan").is_empty(), "a macvlan stayed in the host netns");
        // No published ports on a macvlan network: refused, nothing held.
        let out = berth(&["run", "-d", "--name", "pub", "--net", "lan", "-p", "8080:80", "busybox", "sleep", "60"]);
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("publishes no ports"), "{}", out.stderr);
        assert_eq!(held("lan"), 2);
        berth(&["rm", "-f", "web", "other"]).ok();
        assert_eq!(held("lan"), 0);
        // Their resolvers' sockets are closed, so none keeps a netns alive.
        wait_for("netd to close the embedded resolvers", || netd_sockets() + 4 <= with_members);
        berth(&["network", "rm", "lan"]).ok();
        assert!(!std::path::Path::new("/var/lib/berth/networks/lan.conflist").exists());
        assert_eq!(sh("ip -o link show | grep -v -e ' lo:' -e ' lan0@' || true"), "", "a link stayed");

        // Without --gateway: no default route (Docker 29).
        berth(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=lan0",
            "--subnet",
            "192.0.2.0/24",
            "--ip-range",
            "192.0.2.128/25",
            "nogw",
        ])
        .ok();
        berth(&["run", "-d", "--name", "c", "--net", "nogw", "busybox", "sleep", "60"]).ok();
        let routes = berth(&["exec", "c", "ip", "route"]).ok();
        assert!(!routes.contains("default"), "{routes}");
        assert!(berth(&["exec", "c", "busybox", "ping", "-c1", "-W1", "192.0.2.2"]).code == 0);
        berth(&["rm", "-f", "c"]).ok();
        berth(&["network", "rm", "nogw"]).ok();
    });
}

#[test]
fn parents_and_kinds_this_kernel_lacks_are_refused_cleanly() {
    isolated(|| {
        let _peer = lan();
        import_busybox("page");
        let name = "parents_and_kinds_this_kernel_lacks_are_refused_cleanly";
        let create = |args: &[&str]| berth(&[&["network", "create"], args].concat());
        // parent=lan0.10: Docker makes the 802.1Q link, and removes it with the network.
        if kernel_has("vlan", "link lan0 type vlan id 9", name) {
            create(&["-d", "macvlan", "-o", "parent=lan0.10", "--subnet", "192.0.2.0/24", "v10"]).ok();
            assert!(sh("ip -d link show lan0.10").contains("vlan protocol 802.1Q id 10"));
            berth(&["network", "rm", "v10"]).ok();
            assert!(!try_sh("ip link show lan0.10").0, "network rm left the VLAN link it made");
        } else {
            let out = create(&["-d", "macvlan", "-o", "parent=lan0.10", "--subnet", "192.0.2.0/24", "v10"]);
            assert_ne!(out.code, 0);
            assert!(out.stderr.contains("lacks the vlan link kind"), "{}", out.stderr);
            assert!(!std::path::Path::new("/var/lib/berth/networks/v10.conflist").exists());
        }
        // No parent: an internal network on a dummy parent of its own.
        if kernel_has("dummy", "type dummy", name) {
            create(&["-d", "macvlan", "--subnet", "198.51.100.0/24", "alone"]).ok();
            let v: Value = serde_json::from_str(&berth(&["network", "inspect", "alone"]).ok()).unwrap();
            assert_eq!(v[0]["Internal"], true);
            let parent = v[0]["Options"]["parent"].as_str().unwrap().to_string();
            assert!(parent.starts_with("dm-"), "{parent}");
            berth(&["network", "rm", "alone"]).ok();
            assert!(!try_sh(&format!("ip link show {parent}")).0);
        } else {
            let out = create(&["-d", "macvlan", "--subnet", "198.51.100.0/24", "alone"]);
            assert!(out.code != 0 && out.stderr.contains("lacks the dummy link kind"), "{}", out.stderr);
        }
        // Bad options: named, nothing stored.
        for (args, words) in [
            (vec!["-d", "macvlan", "-o", "parent=nosuch0", "x"], "no such interface"),
            (vec!["-d", "macvlan", "-o", "parent=lo", "x"], "loopback"),
            (vec!["-d", "macvlan", "-o", "parent=lan0", "-o", "macvlan_mode=sideways", "x"], "bridge, private, vepa, passthru"),
            (vec!["-d", "macvlan", "-o", "parent=lan0", "-o", "ipvlan_mode=l3", "x"], "parent, macvlan_mode"),
            (vec!["-d", "ipvlan", "-o", "parent=lan0", "-o", "ipvlan_flag=x", "x"], "bridge, private, vepa"),
            (vec!["-d", "overlay", "x"], "bridge, macvlan, ipvlan"),
        ] {
            let out = create(&args);
            assert!(out.code != 0 && out.stderr.contains(words), "{args:?}: {}", out.stderr);
            assert!(!std::path::Path::new("/var/lib/berth/networks/x.conflist").exists());
        }
        // ipvlan: created; a container on it needs the kind.
        create(&["-d", "ipvlan", "-o", "parent=lan0", "-o", "ipvlan_mode=l3", "--subnet", "192.0.2.0/24", "iv"]).ok();
        let v: Value = serde_json::from_str(&berth(&["network", "inspect", "iv"]).ok()).unwrap();
        assert_eq!((v[0]["Driver"].as_str(), v[0]["Options"]["ipvlan_mode"].as_str()), (Some("ipvlan"), Some("l3")));
        let (has_ipvlan, why) = try_sh("ip link add link lan0 name probe0 type ipvlan && ip link del probe0");
        let out = berth(&["run", "-d", "--name", "i1", "--net", "iv", "busybox", "sleep", "60"]);
        if has_ipvlan {
            assert_eq!(out.code, 0, "{}", out.stderr);
            let routes = berth(&["exec", "i1", "ip", "route"]).ok();
            assert!(routes.contains("default dev eth0"), "l3: a device route: {routes}");
            berth(&["rm", "-f", "i1"]).ok();
        } else {
            println!("SKIP {name}: kernel lacks ipvlan ({})", why.trim());
            assert_ne!(out.code, 0);
            assert!(out.stderr.contains("lacks the ipvlan link kind"), "{}", out.stderr);
            let _ = berth(&["rm", "-f", "i1"]);
        }
        assert_eq!(held("iv"), 0, "an address stayed held");
        berth(&["network", "rm", "iv"]).ok();
    });
}

#[test]
fn the_docker_cli_makes_macvlan_networks_through_netd() {
    isolated(|| {
        let Some(docker) = ["/usr/local/bin/docker", "/usr/bin/docker"].into_iter().find(|p| std::path::Path::new(p).is_file()) else {
            println!("SKIP the_docker_cli_makes_macvlan_networks_through_netd: no docker CLI installed");
            return;
        };
        let peer = lan();
        import_busybox("x");
        let _d = Netd::start();
        let d = |args: &str| sh(&format!("{docker} -H unix://{SOCK} {args}"));
        d("network create -d macvlan -o parent=lan0 -o macvlan_mode=bridge --subnet 192.0.2.0/24 --ip-range 192.0.2.128/25 --gateway 192.0.2.1 lan");
        assert!(d("network ls").lines().any(|l| l.contains(" lan ") && l.contains("macvlan")), "{}", d("network ls"));
        let v: Value = serde_json::from_str(&d("network inspect lan")).unwrap();
        assert_eq!((v[0]["Driver"].as_str(), v[0]["Options"]["parent"].as_str()), (Some("macvlan"), Some("lan0")));
        berth(&["run", "-d", "--name", "web", "busybox", "sleep", "60"]).ok();
        d("network connect lan web");
        let addrs = berth(&["exec", "web", "ip", "-o", "-4", "addr"]).ok();
        let ip = addrs.split_whitespace().find(|w| w.starts_with("192.0.2.")).map(|w| w.split('/').next().unwrap().to_string());
        let ip = ip.unwrap_or_else(|| panic!("no LAN address: {addrs}"));
        assert!(peer.try_sh(&format!("busybox ping -c1 -W1 {ip}")).0, "the LAN peer does not reach {ip}");
        let (code, out) = try_sh(&format!("{docker} -H unix://{SOCK} network rm lan 2>&1"));
        assert!(!code && out.contains("active endpoint"), "a network in use was removed: {out}");
        d("network disconnect lan web");
        d("network rm lan");
        berth(&["rm", "-f", "web"]).ok();
        assert_eq!(sh("ip -o link show | grep -v -e ' lo:' -e ' lan0@' -e docker0 -e veth || true"), "");
    });
}
