//! The Docker Engine API's network document, built from the engine's networks and the
//! containers attached to them (which the daemon reads through berth's container library).

use crate::network::endpoint::{BridgeNetwork, Endpoint};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The API version this daemon speaks.
pub const API_VERSION: &str = "1.50";
/// The oldest it accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// A network's ID: stable, 64 hex digits, derived from its unique name.
pub fn network_id(name: &str) -> String {
    Sha256::digest(format!("berth-network\0{name}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A running container as a network document names it.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The network it was started on, with its attachment there.
    pub network: Option<(String, Endpoint)>,
}

/// A network as `GET /networks` shows it; `Containers` filled from the running
/// containers started on it and from `members` connected later.
pub fn network(net: &BridgeNetwork, running: &[Attached], members: &[crate::engine::Member]) -> Value {
    let mut containers = Map::new();
    for m in members {
        let id = &m.id;
        let Some(c) = running.iter().find(|c| c.id == *id) else { continue };
        let v4 = m.addresses.iter().find(|ip| ip.is_ipv4()).map(|ip| format!("{ip}/{}", net.subnet.prefix())).unwrap_or_default();
        let v6 = m
            .addresses
            .iter()
            .find(|ip| ip.is_ipv6())
            .map(|ip| format!("{ip}/{}", net.subnet6.map(|s| s.prefix()).unwrap_or(64)))
            .unwrap_or_default();
        containers.insert(
            id.clone(),
            json!({"Name": c.name, "EndpointID": network_id(&format!("{id}/{}", net.name)), "MacAddress": "", "IPv4Address": v4, "IPv6Address": v6}),
        );
    }
    for c in running {
        let Some((_, ep)) = c.network.as_ref().filter(|(n, _)| *n == net.name) else { continue };
        containers.insert(
            c.id.clone(),
            json!({
                "Name": c.name, "EndpointID": network_id(&format!("{}/{}", c.id, net.name)), "MacAddress": ep.mac,
                "IPv4Address": ep.address.to_string(),
                "IPv6Address": ep.address6.map(|a| a.to_string()).unwrap_or_default(),
            }),
        );
    }
    let gateway = net.gateway_ip().to_string();
    let mut ipam_config = json!({"Subnet": net.subnet.to_string(), "Gateway": gateway});
    if let Some(r) = net.ip_range {
        ipam_config["IPRange"] = json!(r.to_string());
    }
    let mut configs = vec![ipam_config];
    if let Some(v6) = net.subnet6 {
        let gw6 = net.gateway6.unwrap_or_else(|| crate::ipam::offset(v6.network(), 1));
        configs.push(json!({"Subnet": v6.to_string(), "Gateway": gw6.to_string()}));
    }
    let mut options = net.driver.docker_options();
    if net.driver == crate::network::driver::Driver::Bridge {
        options.insert("com.docker.network.bridge.name".to_string(), net.bridge.clone());
        options.insert("com.docker.network.bridge.enable_ip_masquerade".to_string(), net.ip_masq.to_string());
        options.insert(
            "com.docker.network.bridge.gateway_mode_ipv4".to_string(),
            if net.unprotected { "nat-unprotected" } else { "nat" }.into(),
        );
    }
    json!({
        "Name": net.name, "Id": network_id(&net.name),
        "Created": net.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "Scope": "local", "Driver": net.driver.name(), "EnableIPv4": true, "EnableIPv6": net.subnet6.is_some(),
        "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
        "Internal": net.internal, "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": options, "Labels": net.labels,
    })
}
