//! `berth network create | ls | rm`: user-defined bridge networks, stored as JSON under
//! `<root>/networks`, each with its own bridge and subnet.

use std::fs;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netd::network::endpoint::BridgeNetwork;

use crate::container::{self, NetMode};
use crate::error::{Error, Result};
use crate::network;
use crate::paths::Paths;

fn stored(paths: &Paths) -> Vec<BridgeNetwork> {
    let Ok(rd) = fs::read_dir(paths.lib.join("networks")) else { return Vec::new() };
    let mut v: Vec<BridgeNetwork> = rd
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|d| serde_json::from_slice(&d).ok())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// Creates a network; picks a free 172.18-31.0.0/16 subnet when none is given.
pub fn create(paths: &Paths, name: &str, subnet: Option<&str>, gateway: Option<IpAddr>, bridge: Option<&str>) -> Result<i32> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid || ["bridge", "host", "none", "default"].contains(&name) {
        return Err(Error::Invalid(format!("invalid network name {name:?}")));
    }
    if network::network(paths, name).is_ok() {
        return Err(Error::Invalid(format!("network with name {name} already exists")));
    }
    let mut taken: Vec<IpNetwork> = stored(paths).iter().map(|n| n.subnet).collect();
    taken.push(BridgeNetwork::docker_default().subnet);
    let subnet: IpNetwork = match subnet {
        Some(s) => {
            let net: IpNetwork = s.parse().map_err(|_| Error::Invalid(format!("invalid subnet {s:?}: not a CIDR")))?;
            if net.ip() != net.network() {
                return Err(Error::Invalid(format!("invalid subnet {s}: host bits set (use {}/{})", net.network(), net.prefix())));
            }
            if let Some(o) = taken.iter().find(|t| overlaps(t, &net)) {
                return Err(Error::Invalid(format!("subnet {net} overlaps {o} of another network")));
            }
            net
        }
        None => (18..=31u8)
            .filter_map(|b| IpNetwork::new(IpAddr::from([172, b, 0, 0]), 16).ok())
            .find(|n| !taken.iter().any(|t| overlaps(t, n)))
            .ok_or_else(|| Error::Invalid("no free subnet left; pass --subnet".into()))?,
    };
    // Validate the range the same way allocation will.
    netd::ipam::Range::new(subnet, None, None, gateway)?;
    let bridge = match bridge {
        Some(b) if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) => {
            return Err(Error::Invalid(format!("invalid bridge name {b:?}")));
        }
        Some(b) => b.to_string(),
        None => format!("br-{}", netd::netlink::random_hex(5)),
    };
    let net = BridgeNetwork { name: name.to_string(), bridge, subnet, gateway, ip_masq: true, mtu: None };
    let data = serde_json::to_vec_pretty(&net).map_err(|e| Error::Invalid(e.to_string()))?;
    netd::state::write_atomic(&paths.lib.join("networks").join(format!("{name}.json")), &data)?;
    println!("{name}");
    Ok(0)
}

/// Lists networks, the built-in `bridge` first.
pub fn ls(paths: &Paths) -> Result<i32> {
    println!("{:<20}  {:<16}  {:<18}  DRIVER", "NAME", "BRIDGE", "SUBNET");
    for n in std::iter::once(BridgeNetwork::docker_default()).chain(stored(paths)) {
        println!("{:<20}  {:<16}  {:<18}  bridge", n.name, n.bridge, n.subnet.to_string());
    }
    Ok(0)
}

/// Removes a network no container uses, with its bridge and address store.
pub fn rm(paths: &Paths, name: &str) -> Result<i32> {
    if name == "bridge" {
        return Err(Error::Invalid("the built-in bridge network cannot be removed".into()));
    }
    let net = network::network(paths, name)?;
    if let Some(c) = container::all(paths)?.into_iter().find(|c| c.spec.net == NetMode::Bridge(name.to_string()) && c.alive()) {
        return Err(Error::State(format!("network {name} is in use by container {}", c.name)));
    }
    let mut sock = netd::netlink::Socket::open().map_err(netd::Error::from)?;
    if let Some(l) = sock.link_by_name(&net.bridge).map_err(netd::Error::from)? {
        sock.delete_link(l.index).map_err(netd::Error::from)?;
    }
    let _ = fs::remove_dir_all(paths.lib.join("ipam").join(name));
    let p = paths.lib.join("networks").join(format!("{name}.json"));
    fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
    println!("{name}");
    Ok(0)
}
