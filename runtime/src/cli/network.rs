//! `berth network create | ls | rm`: user-defined bridge networks, stored as JSON under
//! `<root>/networks`, each with its own bridge and subnet.

use std::fs;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netd::name::Name;
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

/// The network options `-o` understands, Docker's names.
fn unprotected(opts: &[String]) -> Result<bool> {
    let mut unprotected = false;
    for o in opts {
        match o.split_once('=') {
            Some(("com.docker.network.bridge.gateway_mode_ipv4" | "com.docker.network.bridge.gateway_mode_ipv6", v)) => {
                unprotected = match v {
                    "nat" => false,
                    "nat-unprotected" => true,
                    _ => return Err(Error::Invalid(format!("invalid option {o:?}: gateway mode nat or nat-unprotected"))),
                }
            }
            _ => return Err(Error::Invalid(format!("unsupported network option {o:?}"))),
        }
    }
    Ok(unprotected)
}

/// Creates a network; picks a free 172.18-31.0.0/16 subnet when none is given.
pub fn create(
    paths: &Paths,
    name: &str,
    subnet: Option<&str>,
    gateway: Option<IpAddr>,
    bridge: Option<&str>,
    opts: &[String],
) -> Result<i32> {
    let name = Name::network(name).map_err(netd::Error::from)?;
    let name = name.as_str();
    if ["bridge", "host", "none", "default"].contains(&name) {
        return Err(Error::Invalid(format!("invalid network name {name:?}: reserved")));
    }
    let unprotected = unprotected(opts)?;
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
        Some(b) => Name::interface(b).map_err(netd::Error::from)?.to_string(),
        None => format!("br-{}", netd::netlink::random_hex(5)),
    };
    if let Some(other) = stored(paths).iter().find(|n| n.bridge == bridge) {
        return Err(Error::Invalid(format!("bridge {bridge} is already used by network {}", other.name)));
    }
    // An existing link may serve only if it is a bridge, and then it stays the user's.
    let mut sock = netd::netlink::Socket::open().map_err(netd::Error::from)?;
    let external_bridge = match sock.link_by_name(&bridge).map_err(netd::Error::from)? {
        Some(l) if l.kind.as_deref() == Some("bridge") => true,
        Some(_) => return Err(netd::Error::NotABridge(bridge).into()),
        None => false,
    };
    let net = BridgeNetwork { name: name.to_string(), bridge, subnet, gateway, ip_masq: true, mtu: None, external_bridge, unprotected };
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
    let name = Name::network(name).map_err(netd::Error::from)?;
    let name = name.as_str();
    if name == "bridge" {
        return Err(Error::Invalid("the built-in bridge network cannot be removed".into()));
    }
    let net = network::network(paths, name)?;
    if let Some(c) = container::all(paths)?.into_iter().find(|c| c.spec.net == NetMode::Bridge(name.to_string()) && c.alive()) {
        return Err(Error::State(format!("network {name} is in use by container {}", c.name)));
    }
    let mut sock = netd::netlink::Socket::open().map_err(netd::Error::from)?;
    // Only a bridge berth made for this network: never the user's own, never a non-bridge.
    if let Some(l) =
        sock.link_by_name(&net.bridge).map_err(netd::Error::from)?.filter(|l| !net.external_bridge && l.kind.as_deref() == Some("bridge"))
    {
        sock.delete_link(l.index).map_err(netd::Error::from)?;
    }
    let _ = fs::remove_dir_all(paths.lib.join("ipam").join(name));
    let p = paths.lib.join("networks").join(format!("{name}.json"));
    fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
    println!("{name}");
    Ok(0)
}
