//! `berth network create | ls | rm`: user-defined networks — bridge networks, each with
//! its own bridge and subnet, or macvlan/ipvlan networks on a parent interface — stored
//! by the engine as CNI conflists under `<root>/networks`.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netd::engine::CreateNetwork;

use super::format::Format;
use crate::container::{self, NetMode};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// `network create`'s flags.
#[derive(Debug, Clone, Default)]
pub struct Create {
    /// `--subnet` (one per family).
    pub subnets: Vec<String>,
    /// `--gateway` (one per family).
    pub gateways: Vec<IpAddr>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    /// `--bridge`.
    pub bridge: Option<String>,
    /// `-o KEY=VALUE`.
    pub opts: Vec<String>,
    /// `--label`.
    pub labels: Vec<String>,
    /// `--internal`.
    pub internal: bool,
    /// `-d`/`--driver`.
    pub driver: String,
}

fn cidr(what: &'static str, s: Option<&str>) -> Result<Option<IpNetwork>> {
    s.map(|s| s.parse().map_err(|_| Error::Flag { flag: what, value: s.to_string(), why: "not a CIDR".into() })).transpose()
}

/// At most one value of a family: Docker's default IPAM takes one subnet per family.
fn one<T>(family: &str, v: Vec<T>) -> Result<Option<T>> {
    match v.len() {
        0 | 1 => Ok(v.into_iter().next()),
        _ => Err(Error::Flag { flag: "--subnet/--gateway", value: format!("IPv{family}"), why: "one per address family".into() }),
    }
}

/// Creates a network; the engine picks a free subnet when none is given.
pub fn create(paths: &Paths, name: &str, c: &Create) -> Result<i32> {
    let mut subnets = Vec::new();
    for s in &c.subnets {
        subnets.extend(cidr("subnet", Some(s))?);
    }
    let (v6, v4): (Vec<IpNetwork>, Vec<IpNetwork>) = subnets.into_iter().partition(IpNetwork::is_ipv6);
    let (g6, g4): (Vec<IpAddr>, Vec<IpAddr>) = c.gateways.iter().partition(|g| g.is_ipv6());
    let mut req = CreateNetwork {
        name: name.to_string(),
        subnet: one("4", v4)?,
        gateway: one("4", g4)?,
        ipv6: c.ipv6,
        subnet6: one("6", v6)?,
        gateway6: one("6", g6)?,
        ip_range: cidr("ip-range", c.ip_range.as_deref())?,
        bridge: c.bridge.clone(),
        labels: super::labels(&c.labels)?,
        internal: c.internal,
        driver: netd::network::driver::Driver::by_name(&c.driver)?,
        ..Default::default()
    };
    for o in &c.opts {
        let (k, v) = o.split_once('=').ok_or_else(|| Error::Flag { flag: "option", value: o.clone(), why: "use KEY=VALUE".into() })?;
        req.option(k, v)?;
    }
    let net = paths.networking().create_network(&req)?;
    println!("{}", net.name);
    Ok(0)
}

/// Prints the networks as `docker network inspect` does; an unknown one is an error
/// after the others are printed, as in Docker.
pub fn inspect(paths: &Paths, names: &[String], format: &Format) -> Result<i32> {
    let nets = paths.networking();
    let running = crate::container::list::attached(paths);
    let mut out = Vec::new();
    let mut missing = None;
    for n in names {
        match nets.network(n) {
            Ok(net) => out.push(netd::docker::network(&net, &running, &nets.members(&net.name)?)),
            Err(netd::Error::NoSuchNetwork(_)) => missing = Some(n.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    super::format::print_objects(format, &out)?;
    match missing {
        Some(n) => Err(netd::Error::NoSuchNetwork(n).into()),
        None => Ok(0),
    }
}

/// Removes every user network no container uses, printing their names.
pub fn prune(paths: &Paths) -> Result<i32> {
    let gone = paths.networking().prune()?;
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for n in gone {
            println!("{n}");
        }
    }
    Ok(0)
}

const TITLES: [(&str, &str); 10] = [
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Subnet", "SUBNET"),
    ("Bridge", "BRIDGE"),
    ("Internal", "INTERNAL"),
    ("IPv6", "IPV6"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// Lists networks, the built-in `bridge` first.
pub fn ls(paths: &Paths, quiet: bool, no_trunc: bool, format: &Format) -> Result<i32> {
    let items: Vec<serde_json::Value> = paths
        .networking()
        .networks()?
        .iter()
        .map(|n| {
            let id = netd::docker::network_id(&n.name);
            serde_json::json!({
                "ID": if no_trunc { id } else { id[..12].to_string() },
                "Name": n.name, "Driver": n.driver.name(), "Scope": "local",
                "Subnet": n.subnet.to_string(), "Bridge": n.bridge,
                "Internal": n.internal, "IPv6": n.subnet6.is_some(),
                "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "CreatedAt": n.created.clone().unwrap_or_default(),
            })
        })
        .collect();
    if quiet {
        for i in &items {
            println!("{}", i["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    super::format::print_list(format, &items, &TITLES, || {
        let mut lines = vec![format!("{:<20}  {:<16}  {:<18}  DRIVER", "NAME", "BRIDGE", "SUBNET")];
        for i in &items {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            lines.push(format!("{:<20}  {:<16}  {:<18}  {}", s("Name"), s("Bridge"), s("Subnet"), s("Driver")));
        }
        lines
    })?;
    Ok(0)
}

/// Removes networks no container uses, with their bridges and address stores; each name
/// is tried, the first failure is the exit status (as Docker).
pub fn rm(paths: &Paths, names: &[String]) -> Result<i32> {
    let nets = paths.networking();
    let mut first_err = None;
    for name in names {
        let removed = (|| {
            let net = nets.network(name)?;
            if let Some(c) = container::all(paths)?.into_iter().find(|c| c.spec.net == NetMode::Bridge(net.name.clone()) && c.alive()) {
                return Err(Error::State(format!("network {name} is in use by container {}", c.name)));
            }
            nets.remove_network(&net.name)?;
            Ok(())
        })();
        match removed {
            Ok(()) => println!("{name}"),
            Err(e) if first_err.is_none() => first_err = Some(e),
            Err(e) => eprintln!("berth: {e}"),
        }
    }
    first_err.map_or(Ok(0), Err)
}
