//! `berth network create | ls | rm`: user-defined bridge networks, each with its own
//! bridge and subnet, stored by the engine as CNI conflists under `<root>/networks`.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netd::engine::CreateNetwork;

use crate::container::{self, NetMode};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// `--label K=V` (a bare K has an empty value, as in Docker).
fn labels(labels: &[String]) -> std::collections::BTreeMap<String, String> {
    labels.iter().map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((l.clone(), String::new()))).collect()
}

/// Creates a network; the engine picks a free subnet when none is given.
#[allow(clippy::too_many_arguments)]
pub fn create(
    paths: &Paths,
    name: &str,
    subnet: Option<&str>,
    gateway: Option<IpAddr>,
    bridge: Option<&str>,
    opts: &[String],
    label: &[String],
    internal: bool,
) -> Result<i32> {
    let subnet: Option<IpNetwork> =
        subnet.map(|s| s.parse().map_err(|_| Error::Invalid(format!("invalid subnet {s:?}: not a CIDR")))).transpose()?;
    let mut req = CreateNetwork {
        name: name.to_string(),
        subnet,
        gateway,
        bridge: bridge.map(str::to_string),
        labels: labels(label),
        internal,
        ..Default::default()
    };
    for o in opts {
        let (k, v) = o.split_once('=').ok_or_else(|| Error::Invalid(format!("invalid option {o:?}: use KEY=VALUE")))?;
        req.option(k, v)?;
    }
    let net = paths.networking().create_network(&req)?;
    println!("{}", net.name);
    Ok(0)
}

/// Lists networks, the built-in `bridge` first.
pub fn ls(paths: &Paths) -> Result<i32> {
    println!("{:<20}  {:<16}  {:<18}  DRIVER", "NAME", "BRIDGE", "SUBNET");
    for n in paths.networking().networks()? {
        println!("{:<20}  {:<16}  {:<18}  bridge", n.name, n.bridge, n.subnet.to_string());
    }
    Ok(0)
}

/// Removes a network no container uses, with its bridge and address store.
pub fn rm(paths: &Paths, name: &str) -> Result<i32> {
    let nets = paths.networking();
    let net = nets.network(name)?;
    if let Some(c) = container::all(paths)?.into_iter().find(|c| c.spec.net == NetMode::Bridge(net.name.clone()) && c.alive()) {
        return Err(Error::State(format!("network {name} is in use by container {}", c.name)));
    }
    nets.remove_network(&net.name)?;
    println!("{name}");
    Ok(0)
}
