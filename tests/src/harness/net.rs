//! The network configurations the tests use: docker0-like bridge + host-local + portmap.

use serde_json::{json, Value};

use berth_cni::conflist::{ConfList, Runner, RuntimeConf};

use super::plugin::bin_dir;

/// The bridge plugin config of the default test network, in `ver`.
pub fn bridge_conf(ver: &str) -> Value {
    json!({
        "cniVersion": ver, "name": "berth", "type": "bridge", "bridge": "docker0",
        "isGateway": true, "isDefaultGateway": true, "ipMasq": true, "hairpinMode": true,
        "ipam": {"type": "host-local", "subnet": "172.17.0.0/16"}
    })
}

/// The conflist bridge → portmap of the default test network.
pub fn conflist(ver: &str) -> ConfList {
    let mut bridge = bridge_conf(ver);
    let obj = bridge.as_object_mut().expect("object");
    obj.remove("cniVersion");
    obj.remove("name");
    let doc = json!({
        "cniVersion": ver, "name": "berth",
        "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]
    });
    ConfList::parse(doc.to_string().as_bytes()).expect("conflist")
}

/// A runner over our plugin binaries.
pub fn runner() -> Runner {
    Runner { path: vec![bin_dir()] }
}

/// Runtime config for container `cid` in netns `ns` with `ports` as (host, container, proto, hostIP).
pub fn rt(cid: &str, netns: &str, ports: &[(u16, u16, &str, &str)]) -> RuntimeConf {
    let mut rt = RuntimeConf { container_id: cid.into(), netns: netns.into(), ifname: "eth0".into(), ..Default::default() };
    if !ports.is_empty() {
        let maps: Vec<Value> =
            ports.iter().map(|(h, c, p, ip)| json!({"hostPort": h, "containerPort": c, "protocol": p, "hostIP": ip})).collect();
        rt.capability_args.insert("portMappings".into(), Value::Array(maps));
    }
    rt
}

/// The firewall state of the backend under test, one line each, sorted: IPv4 iptables
/// rules and chains (counters stripped), or the lines of berth's nftables table.
pub fn rules() -> Vec<String> {
    let dump =
        if super::fw::nft() { super::fw::dump() } else { super::sh("iptables-save -t nat; iptables-save -t raw; iptables-save -t filter") };
    let mut v: Vec<String> = if super::fw::nft() {
        dump.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
    } else {
        dump.lines().filter(|l| l.starts_with("-A") || l.starts_with(':')).map(|l| l.split(" [").next().unwrap_or(l).to_string()).collect()
    };
    v.sort();
    v
}

/// The host-local allocation files of the test network.
pub fn allocations() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/var/lib/cni/networks/berth")
        .map(|rd| {
            rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n.parse::<std::net::IpAddr>().is_ok()).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The names of the links of the test host.
pub fn links() -> Vec<String> {
    super::sh("ip -o link show")
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}
