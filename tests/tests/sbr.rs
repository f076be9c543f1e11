//! The sbr plugin chained after macvlan, beside the reference's (Debian's
//! containernetworking-plugins 1.1.1 in /usr/lib/cni). The container has two legs: `eth0`
//! a veth to the test's netns carrying the main default route, and `net1` a macvlan on
//! the LAN `lan0`, whose router (netns `router`, 192.168.50.1) leads to a client at
//! 198.51.100.2. Without source-based routing the container answers the client through
//! eth0's default route, where the answer is lost; with sbr it answers from net1's
//! table. Both implementations give the same rules, the same table 100, the same main
//! table; DEL removes the rules, twice, after the netns is gone, and across
//! implementations.

use std::path::Path;

use serde_json::{json, Value};

use berth_tests::harness::plugin::{masked, reference};
use berth_tests::harness::{bin_dir, isolated, sh, Cni, Netns};

/// The LAN, its router and the client behind it.
fn lan() -> (Netns, Netns) {
    let router = Netns::new("router");
    let client = Netns::new("client");
    sh("ip link add lan0 type veth peer name eth0 netns router && ip link set lan0 up");
    router.sh("ip addr add 192.168.50.1/24 dev eth0 && ip link set eth0 up && ip link set lo up && \
         ip link add wan0 type veth peer name eth0 netns client && ip addr add 198.51.100.1/24 dev wan0 && ip link set wan0 up && \
         sysctl -qw net.ipv4.ip_forward=1");
    client.sh("ip addr add 198.51.100.2/24 dev eth0 && ip link set eth0 up && ip route add default via 198.51.100.1");
    (router, client)
}

/// A container whose main default route leaves by eth0, a veth to the test's netns.
fn container(name: &str) -> Netns {
    let c = Netns::new(name);
    sh(&format!(
        "ip link add h-{name} type veth peer name eth0 netns {name} && ip addr add 10.99.0.1/24 dev h-{name} && ip link set h-{name} up"
    ));
    c.sh("ip addr add 10.99.0.2/24 dev eth0 && ip link set eth0 up && ip link set lo up && ip route add default via 10.99.0.1");
    c
}

fn macvlan() -> String {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "lan0",
        "ipam": {"type": "static", "addresses": [{"address": "192.168.50.10/24", "gateway": "192.168.50.1"}],
                 "routes": [{"dst": "203.0.113.0/24", "gw": "192.168.50.1"}]}})
    .to_string()
}

fn sbr(prev: &Value, extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "lan", "type": "sbr", "prevResult": prev});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c.to_string()
}

/// The container's routing as text: rules, tables 100 and main of both families.
fn routing(c: &Netns) -> String {
    c.sh("ip rule; ip -6 rule; echo; ip route show table 100; ip -6 route show table 100; echo; ip route; ip -6 route")
}

fn client_reaches(client: &Netns) -> bool {
    client.try_sh("busybox ping -c1 -W1 192.168.50.10").0
}

fn call(dir: &Path, ty: &str, cmd: &str, c: &Netns, conf: &str) -> berth_tests::harness::plugin::Outcome {
    Cni::default().call_in(dir, ty, cmd, "sbr1", c.path().to_str().unwrap(), "net1", conf)
}

/// macvlan + sbr ADD through `dir`: (result, routing, client reached). The router
/// forgets the previous macvlan's MAC first.
fn add(dir: &Path, c: &Netns, (router, client): &(Netns, Netns)) -> (Value, String, bool) {
    router.sh("ip neigh flush all");
    let m = call(dir, "macvlan", "ADD", c, &macvlan()).ok();
    c.sh("ip link set net1 up");
    berth_tests::harness::wait_for("net1's IPv6 link-local route", || c.sh("ip -6 route").contains("fe80::/64 dev net1"));
    let r = call(dir, "sbr", "ADD", c, &sbr(&m, json!({}))).ok();
    (r, routing(c), client_reaches(client))
}

#[test]
fn sbr_after_macvlan_routes_replies_as_the_reference() {
    isolated(|| {
        let lan = lan();
        let client = &lan.1;
        let ours = bin_dir();
        let c = container("c1");
        // Without sbr the answer takes eth0's default route and is lost.
        let m = call(&ours, "macvlan", "ADD", &c, &macvlan()).ok();
        assert!(!client_reaches(client), "answered without source routing: the test proves nothing");
        assert_eq!(call(&ours, "macvlan", "DEL", &c, &macvlan()).code, 0);
        let _ = m;

        let (r1, state1, reached1) = add(&ours, &c, &lan);
        assert!(reached1, "the client got no answer through sbr's table:\n{state1}");
        assert!(state1.contains("from 192.168.50.10 lookup 100"), "{state1}");
        assert!(state1.contains("default via 192.168.50.1 dev net1"), "{state1}");
        let main = state1.rsplit("\n\n").next().unwrap();
        assert!(!main.contains("net1"), "net1's routes stayed in main:\n{state1}");
        assert_eq!(call(&ours, "sbr", "CHECK", &c, &sbr(&r1, json!({}))).code, 0);
        assert_eq!(call(&ours, "sbr", "DEL", &c, &sbr(&r1, json!({}))).code, 0);
        assert!(!routing(&c).contains("lookup 100"), "DEL left the rule:\n{}", routing(&c));
        assert!(!client_reaches(client), "answered after DEL");
        assert_ne!(call(&ours, "sbr", "CHECK", &c, &sbr(&r1, json!({}))).code, 0, "CHECK passed without the rule");
        assert_eq!(call(&ours, "sbr", "DEL", &c, &sbr(&r1, json!({}))).code, 0, "second DEL");
        assert_eq!(call(&ours, "macvlan", "DEL", &c, &macvlan()).code, 0);

        let Some(theirs) = reference("sbr", "sbr_after_macvlan_routes_replies_as_the_reference") else { return };
        let (r2, state2, reached2) = add(&theirs, &c, &lan);
        assert_eq!(masked(r1.clone()), masked(r2.clone()));
        assert_eq!(state1, state2, "routing differs: berth first, the reference second");
        assert!(reached2);
        // Cross-DEL both ways: the reference's ADD deleted by berth, and berth's by the
        // reference.
        assert_eq!(call(&ours, "sbr", "DEL", &c, &sbr(&r2, json!({}))).code, 0);
        assert!(!routing(&c).contains("lookup 100"));
        assert_eq!(call(&theirs, "macvlan", "DEL", &c, &macvlan()).code, 0);
        let (r3, _, _) = add(&ours, &c, &lan);
        assert_eq!(call(&theirs, "sbr", "DEL", &c, &sbr(&r3, json!({}))).code, 0);
        assert!(!routing(&c).contains("lookup 100"));
        assert_eq!(call(&ours, "macvlan", "DEL", &c, &macvlan()).code, 0);
        // DEL after the netns is gone.
        let path = c.path().to_str().unwrap().to_string();
        c.delete();
        let gone = Cni::default().call_in(&ours, "sbr", "DEL", "sbr1", &path, "net1", &sbr(&r1, json!({})));
        assert_eq!(gone.code, 0, "{}", gone.stdout);
    });
}

#[test]
fn sbr_with_a_table_adds_rules_only_and_refuses_bad_input() {
    isolated(|| {
        let _lan = lan();
        let ours = bin_dir();
        let c = container("c2");
        let m = call(&ours, "macvlan", "ADD", &c, &macvlan()).ok();
        let before = c.sh("ip route");
        call(&ours, "sbr", "ADD", &c, &sbr(&m, json!({"table": 500}))).ok();
        assert!(c.sh("ip rule").contains("from 192.168.50.10 lookup 500"), "{}", c.sh("ip rule"));
        assert_eq!(c.sh("ip route"), before, "routes moved though the table is the caller's");
        assert!(!c.sh("ip route show table all").contains("table 100"), "a table was filled though the table is the caller's");
        assert_eq!(call(&ours, "sbr", "DEL", &c, &sbr(&m, json!({"table": 500}))).code, 0);
        assert!(!c.sh("ip rule").contains("lookup 500"));

        // Bad input: code 7 (or 6 for a missing netns), nothing changed.
        let rules = c.sh("ip rule");
        let bad = [
            json!({"cniVersion": "1.0.0", "name": "lan", "type": "sbr"}).to_string(),
            sbr(&m, json!({"table": 254})),
            sbr(&m, json!({"table": "x"})),
            sbr(&json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []}), json!({})),
        ];
        for conf in &bad {
            call(&ours, "sbr", "ADD", &c, conf).err(7);
        }
        let missing = Cni::default().call_in(&ours, "sbr", "ADD", "sbr1", "/run/netns/nope", "net1", &sbr(&m, json!({})));
        assert_ne!(missing.code, 0);
        assert_eq!(c.sh("ip rule"), rules);
        assert_eq!(c.sh("ip route"), before);
    });
}
