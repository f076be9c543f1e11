//! Deleting a link answers once the link is gone, not after the kernel's clean-up behind
//! it: the request goes out from a detached process. What a caller can see right after the
//! answer must be the finished state, errors must still reach the caller, and the detached
//! senders must leave nothing of the caller's behind.

use berth_tests::harness::{isolated, sh, try_sh, Netns};
use netd::netlink::Socket;

fn index(name: &str) -> u32 {
    sh(&format!("cat /sys/class/net/{name}/ifindex")).trim().parse().expect("an ifindex")
}

/// Children of this process that have exited and not been reaped.
fn zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            let mut f = rest.split(' ');
            f.next() == Some("Z") && f.next() == Some(me.as_str())
        })
        .collect()
}

#[test]
fn a_deleted_link_is_gone_with_its_peer_addresses_and_routes_when_the_call_returns() {
    isolated(|| {
        let peer = Netns::new("peer");
        let mut sock = Socket::open().unwrap();
        for i in 0..50 {
            sh(&format!(
                "ip link add v{i} type veth peer name p{i} netns peer && ip addr add 10.{i}.0.1/24 dev v{i} && ip link set v{i} up \
                 && ip route add 10.{i}.9.0/24 via 10.{i}.0.2 dev v{i} onlink"
            ));
            let idx = index(&format!("v{i}"));
            sock.delete_link(idx).unwrap();
            // No time passes between the answer and these reads.
            assert!(sock.links().unwrap().iter().all(|l| l.index != idx), "v{i} still listed");
            let addrs = sh("ip -o addr show");
            assert!(!addrs.contains(&format!("10.{i}.0.1")), "{addrs}");
            let routes = sh("ip route show");
            assert!(!routes.contains(&format!("10.{i}.9.0")), "{routes}");
            assert!(!peer.try_sh(&format!("ip link show p{i}")).0, "the peer p{i} outlived the call");
            // The names are free again at once.
            sh(&format!("ip link add v{i} type veth peer name p{i} netns peer && ip link del v{i}"));
        }
        // A link already gone is success (DEL twice); a link the kernel refuses to delete
        // gives the kernel's error to the caller.
        sock.delete_link(999_999).unwrap();
        let err = sock.delete_link(1).expect_err("lo cannot be deleted");
        assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
        assert!(try_sh("ip link show lo").0);
        // The intermediate children were reaped; the senders were not ours to reap.
        assert_eq!(zombies(), Vec::<String>::new());
    });
}

#[test]
fn a_detached_delete_does_not_hold_the_callers_output_open() {
    isolated(|| {
        // A plugin deletes a link and exits; whoever reads its stdout sees the end then,
        // not when the kernel has finished: the sender keeps none of the caller's files.
        sh("ip link add h0 type veth peer name h1");
        let idx = index("h0");
        let mut sock = Socket::open().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        // Stand in for the plugin's stdout: a pipe whose write end this process holds.
        let w = std::fs::File::from(w);
        sock.delete_link(idx).unwrap();
        drop(w);
        // The only other holders could be the senders; read returns end-of-file at once.
        let mut buf = [0u8; 1];
        let mut reader = std::fs::File::from(r);
        nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&reader), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
        let n = std::io::Read::read(&mut reader, &mut buf);
        assert_eq!(n.ok(), Some(0), "a sender still holds the pipe's write end");
    });
}

/// IPv4 settings read and set over netlink, and forwarding read from /proc/net/snmp,
/// agree with /proc/sys: they replace lookups there that cost O(network namespaces).
#[test]
fn ipv4_settings_over_netlink_and_forwarding_agree_with_proc_sys() {
    isolated(|| {
        sh("ip link add v0 type veth peer name p0");
        let mut sock = Socket::open().unwrap();
        let (idx, conf) = sock.ipv4_conf("v0").unwrap().expect("v0 has IPv4 settings");
        assert_eq!(idx, index("v0"));
        assert_eq!(conf.route_localnet, 0);
        assert_eq!(sh("cat /proc/sys/net/ipv4/conf/v0/route_localnet").trim(), "0");
        netd::network::bridge::enable_route_localnet("v0").unwrap();
        assert_eq!(sh("cat /proc/sys/net/ipv4/conf/v0/route_localnet").trim(), "1");
        assert_eq!(sock.ipv4_conf("v0").unwrap().map(|c| c.1.route_localnet), Some(1));
        // The other settings are untouched by the request.
        assert_eq!(sh("cat /proc/sys/net/ipv4/conf/v0/arp_notify").trim(), "0");
        assert!(sock.ipv4_conf("nosuch0").unwrap().is_none());

        for want in ["0", "1", "0"] {
            sh(&format!("echo {want} > /proc/sys/net/ipv4/ip_forward"));
            assert_eq!(netd::sysctl::ipv4_forwarding(), want == "1");
        }
        netd::network::bridge::enable_forwarding(true, false).unwrap();
        assert_eq!(sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
        // From a thread in another netns, that netns's value.
        let other = Netns::new("other");
        let f = std::fs::File::open(other.path()).unwrap();
        let seen = std::thread::spawn(move || {
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            netd::sysctl::ipv4_forwarding()
        })
        .join()
        .unwrap();
        assert!(!seen, "the thread's netns has forwarding off");
        let _ = try_sh("ip link del v0");
    });
}
