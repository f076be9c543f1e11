//! The engine as the one owner of networks: `berth network create` stores a CNI conflist
//! that CNI plugins (ours and the reference ones) use unchanged, sharing the engine's
//! address store with the runtime; default subnets avoid the host's routes.

use std::path::Path;

use berth_cni::conflist::{ConfList, Runner};
use berth_tests::harness::berth::{berth, import_busybox, inspect};
use berth_tests::harness::net::rt;
use berth_tests::harness::{bin_dir, curl, isolated, sh, try_sh, wait_for, Netns};

const REFERENCE: &str = "/usr/lib/cni";

fn conflist(name: &str) -> ConfList {
    let data = std::fs::read(format!("/var/lib/berth/networks/{name}.conflist")).expect("berth network create writes a conflist");
    ConfList::parse(&data).expect("the conflist parses as CNI")
}

#[test]
fn a_berth_network_is_a_cni_network() {
    isolated(|| {
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        let list = conflist("app");
        // A container of the runtime and a CNI attachment share one address store.
        berth(&["run", "-d", "--name", "web", "--net", "app", "-p", "4100:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        assert_eq!(inspect("web")["NetworkSettings"]["IPAddress"], "10.89.0.2");
        let ns = Netns::new("cni");
        let ours = Runner { path: vec![bin_dir()] };
        let r = ours.add(&list, &rt("cni1", "/run/netns/cni", &[(4200, 80, "tcp", "")])).unwrap();
        assert_eq!(r["ips"][0]["address"], "10.89.0.3/24", "{r}");
        let files = sh("ls /var/lib/berth/ipam/app");
        assert!(files.contains("10.89.0.2") && files.contains("10.89.0.3"), "{files}");
        // The network's rules exist once, whichever front end attached.
        assert_eq!(berth_tests::harness::fw::network_rules("10.89.0.0/24"), 1, "{}", berth_tests::harness::fw::dump());
        // Both reach each other over the network's bridge, and the published port answers.
        assert!(ns.try_sh("busybox ping -c1 -W1 10.89.0.2").0);
        wait_for("the published port", || try_sh(&curl("http://127.0.0.1:4100/")).1 == "page");
        ours.del(&list, &rt("cni1", "/run/netns/cni", &[(4200, 80, "tcp", "")]), Some(&r)).unwrap();
        assert!(!sh("ls /var/lib/berth/ipam/app").contains("10.89.0.3"));
        // The reference plugins take the same file unchanged.
        if ["bridge", "host-local", "portmap"].iter().all(|p| Path::new(REFERENCE).join(p).is_file()) {
            let reference = Runner { path: vec![REFERENCE.into()] };
            let r = reference.add(&list, &rt("ref1", "/run/netns/cni", &[])).unwrap();
            // host-local hands out the next address after the last reserved one.
            assert_eq!(r["ips"][0]["address"], "10.89.0.4/24", "{r}");
            assert!(sh("ls /var/lib/berth/ipam/app").contains("10.89.0.4"));
            assert!(ns.try_sh("busybox ping -c1 -W1 10.89.0.2").0);
            reference.del(&list, &rt("ref1", "/run/netns/cni", &[]), Some(&r)).unwrap();
        } else {
            println!("SKIP reference plugins on a berth conflist: not installed in {REFERENCE}");
        }
        // An endpoint the engine knows blocks removal; without it the network goes.
        let busy = berth(&["network", "rm", "app"]);
        assert_eq!(busy.code, 125);
        berth(&["rm", "-f", "web"]).ok();
        berth(&["network", "rm", "app"]).ok();
        assert!(!Path::new("/var/lib/berth/networks/app.conflist").exists());
        assert!(!Path::new("/var/lib/berth/ipam/app").exists());
    });
}

#[test]
fn default_subnets_avoid_the_hosts_routes() {
    isolated(|| {
        sh("ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up && ip route add 172.18.0.0/16 dev d0");
        berth(&["network", "create", "one"]).ok();
        let out = berth(&["network", "ls"]).ok();
        let line = out.lines().find(|l| l.starts_with("one ")).unwrap().to_string();
        assert!(line.contains("172.19.0.0/16"), "{out}");
        berth(&["network", "create", "two"]).ok();
        assert!(berth(&["network", "ls"]).ok().contains("172.20.0.0/16"));
        // Typed refusals: a duplicate name, a predefined name, an overlapping subnet.
        for (args, msg) in [
            (vec!["network", "create", "one"], "already exists"),
            (vec!["network", "create", "host"], "pre-defined"),
            (vec!["network", "create", "--subnet", "172.19.1.0/24", "three"], "overlaps"),
            (vec!["network", "rm", "bridge"], "pre-defined"),
            (vec!["network", "rm", "nope"], "not found"),
        ] {
            let o = berth(&args);
            assert_eq!(o.code, 125, "{args:?}");
            assert!(o.stderr.contains(msg), "{args:?}: {}", o.stderr);
        }
    });
}

#[test]
fn internal_networks_have_no_way_out() {
    isolated(|| {
        let _other = berth_tests::harness::OtherHost::new();
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "open"]).ok();
        berth(&["network", "create", "--internal", "--subnet", "10.90.0.0/24", "int"]).ok();
        let peer = berth_tests::harness::peer::PEER_IP;
        let ping = |net: &str| berth(&["run", "--rm", "--net", net, "busybox", "ping", "-c1", "-W1", peer]).code;
        assert_eq!(ping("open"), 0, "a normal network reaches the other host");
        assert_ne!(ping("int"), 0, "an internal network reached the other host");
        // Inside, containers still reach each other (by name, too).
        berth(&["run", "-d", "--name", "a", "--net", "int", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]).ok();
        let out = berth(&["run", "--rm", "--net", "int", "busybox", "wget", "-qO-", "http://a/"]);
        assert_eq!((out.code, out.stdout.as_str()), (0, "page"), "{}", out.stderr);
        berth(&["rm", "-f", "a"]).ok();
    });
}

#[test]
fn a_container_gets_the_address_it_asks_for() {
    isolated(|| {
        import_busybox("page");
        berth(&["network", "create", "--subnet", "10.89.0.0/24", "app"]).ok();
        berth(&["run", "-d", "--name", "fixed", "--net", "app", "--ip", "10.89.0.50", "busybox", "sleep", "60"]).ok();
        assert_eq!(inspect("fixed")["NetworkSettings"]["IPAddress"], "10.89.0.50");
        for (args, msg) in [
            (vec!["run", "--rm", "--net", "app", "--ip", "10.89.0.50", "busybox", "true"], "already allocated"),
            (
                vec!["run", "--rm", "--net", "app", "--ip", "10.99.0.5", "-p", "4005:80", "busybox", "true"],
                "not in a subnet of network app",
            ),
            (vec!["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"], "user defined networks"),
        ] {
            let o = berth(&args);
            assert_eq!(o.code, 125, "{args:?}");
            assert!(o.stderr.contains(msg), "{args:?}: {}", o.stderr);
        }
        assert_eq!(sh("ls /var/lib/berth/ipam/app").lines().filter(|l| l.starts_with("10.")).count(), 1, "a refused run kept an address");
        assert!(!sh("ls /run/berth/ports").contains("tcp-4005"), "a refused run kept its port claim");
        berth(&["rm", "-f", "fixed"]).ok();
    });
}

#[test]
fn dual_stack_networks_with_ipv6() {
    isolated(|| {
        import_busybox("page");
        berth(&["network", "create", "--ipv6", "--subnet", "10.89.0.0/24", "--subnet", "fd00:89::/64", "app"]).ok();
        let web = ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
        berth(&[&["run", "-d", "--name", "web", "--net", "app", "-p", "8080:80"][..], &web].concat()).ok();
        berth(&["run", "-d", "--name", "cli", "--net", "app", "busybox", "sleep", "60"]).ok();
        assert_eq!(inspect("web")["NetworkSettings"]["GlobalIPv6Address"], "fd00:89::2");
        // Container to container over IPv6, by address and by name (AAAA).
        assert!(berth(&["exec", "cli", "ping", "-c1", "-W2", "fd00:89::2"]).ok().contains("1 packets received"));
        assert!(berth(&["exec", "cli", "nslookup", "-type=AAAA", "web"]).ok().contains("fd00:89::2"));
        assert!(berth(&["exec", "cli", "cat", "/etc/hosts"]).ok().contains("fd00:89::3"));
        // Published on IPv6 too (here through the gateway, a local address of the host).
        assert_eq!(sh("curl -s -m2 -g 'http://[fd00:89::1]:8080/'"), "page");
        assert_eq!(sh("curl -s -m2 'http://127.0.0.1:8080/'"), "page");
        let v: serde_json::Value = serde_json::from_str(&berth(&["network", "inspect", "app"]).ok()).unwrap();
        assert_eq!((v[0]["EnableIPv6"].as_bool(), v[0]["IPAM"]["Config"][1]["Subnet"].as_str()), (Some(true), Some("fd00:89::/64")));
        // Without a subnet: a unique local /64; an IPv6 subnet needs --ipv6.
        berth(&["network", "create", "--ipv6", "auto6"]).ok();
        let v: serde_json::Value = serde_json::from_str(&berth(&["network", "inspect", "auto6"]).ok()).unwrap();
        let auto = v[0]["IPAM"]["Config"][1]["Subnet"].as_str().unwrap().to_string();
        assert!(auto.starts_with("fd") && auto.ends_with("::/64"), "{auto}");
        let o = berth(&["network", "create", "--subnet", "fd00:99::/64", "nov6"]);
        assert_eq!(o.code, 125);
        assert!(o.stderr.contains("--ipv6"), "{}", o.stderr);
        // Gone with the containers: rules of both families, addresses of both.
        berth(&["rm", "-f", "web", "cli"]).ok();
        assert!(!berth_tests::harness::fw::dump().contains("fd00:89::"), "{}", berth_tests::harness::fw::dump());
        assert!(!sh("ls /var/lib/berth/ipam/app").contains("fd00"));
        berth(&["network", "rm", "app", "auto6"]).ok();
        assert!(!berth(&["network", "ls"]).ok().contains("auto6"));
    });
}
