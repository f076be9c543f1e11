//! The Docker Engine API's JSON shapes for networks and (read-only) containers, built
//! from the engine's networks and the runtime's container records.

use std::path::Path;

use crate::network::endpoint::BridgeNetwork;
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

/// The container records of the runtime, as stored (`<root>/containers/*/container.json`).
pub fn containers(root: &Path) -> Vec<Value> {
    let Ok(rd) = std::fs::read_dir(root.join("containers")) else { return Vec::new() };
    let mut v: Vec<Value> = rd
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("container.json")).ok())
        .filter_map(|d| serde_json::from_slice(&d).ok())
        .collect();
    v.sort_by_key(|c: &Value| std::cmp::Reverse(c["created"].as_u64().unwrap_or(0)));
    v
}

/// A record by full ID, name, or unique ID prefix (3 characters at least), as berth's
/// own lookup.
pub fn find_container<'a>(records: &'a [Value], key: &str) -> Option<&'a Value> {
    if let Some(c) = records.iter().find(|c| c["id"] == key || c["name"] == key) {
        return Some(c);
    }
    let mut m = records.iter().filter(|c| key.len() >= 3 && c["id"].as_str().is_some_and(|i| i.starts_with(key)));
    m.next().filter(|_| m.next().is_none())
}

/// Whether the process a record names under `key` (`pid`, `monitor_pid`) runs and is
/// that process (its start time, `pid_start` / `monitor_start`, when recorded).
fn record_alive(c: &Value, key: &str, start: &str) -> bool {
    c["state"][key].as_i64().is_some_and(|p| crate::proc::same_process(p as i32, c["state"][start].as_u64()))
}

/// Whether a record's PID 1 still runs.
pub fn running(c: &Value) -> bool {
    c["state"]["status"] == "running" && record_alive(c, "pid", "pid_start")
}

/// Whether a record is of a container that died unseen: "running" with neither PID 1
/// nor its monitor alive, or "created" for over a minute (a start killed midway). A
/// container being started right now (created, monitor busy) is not dead.
pub fn dead(c: &Value) -> bool {
    match c["state"]["status"].as_str() {
        Some("running") => !record_alive(c, "pid", "pid_start") && !record_alive(c, "monitor_pid", "monitor_start"),
        Some("created") => c["created"].as_u64().is_some_and(|t| crate::clock::now().saturating_sub(t) > 60),
        _ => false,
    }
}

/// The network a record is on (`bridge` mode), if any.
fn network_of(c: &Value) -> Option<&str> {
    c["spec"]["net"]["bridge"].as_str()
}

fn endpoint_json(c: &Value, net: &str) -> Value {
    let ep = &c["state"]["endpoint"];
    let addr = ep["address"].as_str().unwrap_or("");
    let (ip, prefix) = addr.split_once('/').unwrap_or((addr, "0"));
    json!({
        "NetworkID": network_id(net),
        "EndpointID": network_id(&format!("{}/{net}", c["id"].as_str().unwrap_or(""))),
        "Gateway": ep["gateway"].as_str().unwrap_or(""),
        "IPAddress": ip,
        "IPPrefixLen": prefix.parse::<u32>().unwrap_or(0),
        "MacAddress": ep["mac"].as_str().unwrap_or(""),
    })
}

/// A network as `GET /networks` shows it; `Containers` filled from running records and
/// from `members` connected later.
pub fn network(net: &BridgeNetwork, records: &[Value], members: &[crate::engine::Member]) -> Value {
    let mut containers = Map::new();
    for m in members {
        let id = &m.id;
        let Some(c) = records.iter().find(|c| c["id"] == id.as_str() && running(c)) else { continue };
        let v4 = m.addresses.iter().find(|ip| ip.is_ipv4()).map(|ip| format!("{ip}/{}", net.subnet.prefix())).unwrap_or_default();
        let v6 = m
            .addresses
            .iter()
            .find(|ip| ip.is_ipv6())
            .map(|ip| format!("{ip}/{}", net.subnet6.map(|s| s.prefix()).unwrap_or(64)))
            .unwrap_or_default();
        containers.insert(
            id.clone(),
            json!({"Name": c["name"], "EndpointID": network_id(&format!("{id}/{}", net.name)), "MacAddress": "", "IPv4Address": v4, "IPv6Address": v6}),
        );
    }
    for c in records.iter().filter(|c| network_of(c) == Some(net.name.as_str()) && running(c)) {
        let e = endpoint_json(c, &net.name);
        containers.insert(
            c["id"].as_str().unwrap_or("").to_string(),
            json!({
                "Name": c["name"], "EndpointID": e["EndpointID"], "MacAddress": e["MacAddress"],
                "IPv4Address": c["state"]["endpoint"]["address"],
                "IPv6Address": c["state"]["endpoint"]["address6"].as_str().unwrap_or("")
            }),
        );
    }
    let gateway = net.gateway.map(|g| g.to_string()).unwrap_or_else(|| {
        let first = crate::ipam::offset(net.subnet.network(), 1);
        first.to_string()
    });
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

fn ports(c: &Value) -> Vec<Value> {
    let maps = c["state"]["endpoint"]["ports"].as_array().or_else(|| c["spec"]["ports"].as_array()).cloned().unwrap_or_default();
    maps.iter()
        .map(|m| {
            json!({
                "IP": m["host_ip"].as_str().unwrap_or("0.0.0.0"), "PrivatePort": m["container_port"],
                "PublicPort": m["host_port"], "Type": m["proto"],
            })
        })
        .collect()
}

fn networks(c: &Value) -> Value {
    let mut m = Map::new();
    if let Some(n) = network_of(c) {
        m.insert(n.to_string(), endpoint_json(c, n));
    }
    Value::Object(m)
}

fn net_mode(c: &Value) -> String {
    match &c["spec"]["net"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.iter().next() {
            Some((k, v)) if k == "bridge" => v.as_str().unwrap_or("bridge").to_string(),
            Some((k, v)) => format!("{k}:{}", v.as_str().unwrap_or("")),
            None => "default".into(),
        },
        _ => "default".into(),
    }
}

fn state(c: &Value) -> &'static str {
    if running(c) {
        "running"
    } else if c["state"]["status"] == "created" {
        "created"
    } else {
        "exited"
    }
}

/// A container as `GET /containers/json` lists it.
pub fn container_summary(c: &Value) -> Value {
    let args: Vec<&str> = c["spec"]["args"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let status = match state(c) {
        "running" => "Up".to_string(),
        "created" => "Created".to_string(),
        _ => format!("Exited ({})", c["state"]["exit_code"].as_i64().unwrap_or(0)),
    };
    json!({
        "Id": c["id"], "Names": [format!("/{}", c["name"].as_str().unwrap_or(""))],
        "Image": c["spec"]["image"], "ImageID": c["spec"]["image_id"], "Command": args.join(" "),
        "Created": c["created"], "Ports": ports(c), "Labels": {}, "State": state(c), "Status": status,
        "HostConfig": {"NetworkMode": net_mode(c)}, "NetworkSettings": {"Networks": networks(c)}, "Mounts": [],
    })
}

/// A container as `GET /containers/{id}/json` shows it (the fields `docker inspect` reads).
pub fn container_inspect(c: &Value) -> Value {
    let args: Vec<Value> = c["spec"]["args"].as_array().cloned().unwrap_or_default();
    let t = |v: &Value| v.as_u64().map(crate::clock::rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    let running = running(c);
    json!({
        "Id": c["id"], "Created": t(&c["created"]),
        "Path": args.first().cloned().unwrap_or(Value::Null), "Args": args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
        "State": {
            "Status": state(c), "Running": running, "Paused": false, "Restarting": false, "OOMKilled": false, "Dead": false,
            "Pid": if running { c["state"]["pid"].clone() } else { json!(0) },
            "ExitCode": c["state"]["exit_code"].as_i64().unwrap_or(0), "Error": c["state"]["error"],
            "StartedAt": t(&c["state"]["started_at"]), "FinishedAt": t(&c["state"]["finished_at"]),
        },
        "Image": c["spec"]["image_id"], "Name": format!("/{}", c["name"].as_str().unwrap_or("")),
        "HostConfig": {"NetworkMode": net_mode(c)},
        "Config": {"Hostname": c["spec"]["hostname"], "Env": c["spec"]["env"], "Cmd": c["spec"]["args"], "Image": c["spec"]["image"], "Labels": {}},
        "NetworkSettings": {"Networks": networks(c), "Ports": {}},
        "Mounts": [],
    })
}
