//! Source-based routing (the `sbr` plugin): each address of an interface gets a table of
//! its own, chosen from 100 up among the tables no rule or route uses, a rule `from
//! ADDR lookup TABLE`, a default route through its gateway there, and copies of the
//! interface's routes that belong to it; the interface's routes then leave the main
//! table, so a reply always leaves by the interface its request came in on. With a
//! fixed `table` only the rules are made: that table's routes are the caller's.
//!
//! Everything here runs in the calling thread's netns (the container's).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::error::{Error, Result};
use crate::netlink::{KernelRoute, Route, Socket};

/// The first table source-based routing takes.
pub const FIRST_TABLE: u32 = 100;
const MAIN: u32 = 254;

/// One address of the interface, with the gateway its traffic leaves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The address and its prefix.
    pub addr: IpNetwork,
    /// Its gateway, if it has one.
    pub gateway: Option<IpAddr>,
}

fn host(ip: IpAddr) -> IpNetwork {
    IpNetwork::from(ip)
}

fn link_index(sock: &mut Socket, ifname: &str) -> Result<Option<u32>> {
    Ok(sock.link_by_name(ifname)?.map(|l| l.index))
}

/// Routes `ifname`'s sources by source address. Returns the tables used, one per source
/// (all `table` when given). On failure what it made is taken back.
pub fn apply(ifname: &str, sources: &[Source], table: Option<u32>) -> Result<Vec<u32>> {
    let mut sock = Socket::open()?;
    let index = link_index(&mut sock, ifname)?
        .ok_or_else(|| Error::NoSuchInterface { ifname: ifname.to_string(), netns: "the container's netns".into() })?;
    let mut made = Made::default();
    let res = match table {
        Some(t) => sources.iter().map(|s| made.rule(&mut sock, s.addr.ip(), t).map(|()| t)).collect(),
        None => per_source_tables(&mut sock, index, sources, &mut made),
    };
    if res.is_err() {
        made.undo(&mut sock);
    }
    res
}

/// What `apply` made so far, for its undo.
#[derive(Default)]
struct Made {
    rules: Vec<(IpAddr, u32)>,
    tables: Vec<u32>,
}

impl Made {
    fn rule(&mut self, sock: &mut Socket, ip: IpAddr, table: u32) -> Result<()> {
        sock.add_rule(host(ip), table)?;
        self.rules.push((ip, table));
        Ok(())
    }

    fn undo(self, sock: &mut Socket) {
        if let Ok(rules) = sock.rules() {
            for r in rules.iter().filter(|r| self.rules.iter().any(|(ip, t)| r.src == Some(host(*ip)) && r.table == *t)) {
                let _ = sock.del_rule(r);
            }
        }
        if let Ok(routes) = sock.all_routes() {
            for r in routes.iter().filter(|r| self.tables.contains(&r.table())) {
                let _ = sock.del_kernel_route(r);
            }
        }
    }
}

fn per_source_tables(sock: &mut Socket, index: u32, sources: &[Source], made: &mut Made) -> Result<Vec<u32>> {
    let all = sock.all_routes()?;
    let mut used: BTreeSet<u32> = sock.rules()?.iter().map(|r| r.table).collect();
    used.extend(all.iter().map(KernelRoute::table));
    let own: Vec<&KernelRoute> = all.iter().filter(|r| r.table() == MAIN && r.oif() == Some(index)).collect();
    let mut tables = Vec::new();
    let mut table = FIRST_TABLE;
    for s in sources {
        while used.contains(&table) {
            table += 1;
        }
        made.tables.push(table);
        made.rule(sock, s.addr.ip(), table)?;
        if let Some(gw) = s.gateway {
            sock.add_route_in(&Route { dst: Route::default_dst(gw), gw: Some(gw), oif: index, src: None }, table)?;
        }
        let belongs = |r: &&&KernelRoute| {
            let inside = |ip: Option<IpAddr>| ip.is_some_and(|ip| s.addr.contains(ip));
            inside(r.src()) || inside(r.gw()) || (r.src().is_none() && r.gw().is_none())
        };
        for r in own.iter().filter(belongs) {
            sock.replace_route_in(r, table)?;
        }
        tables.push(table);
        table += 1;
    }
    // Only once every table has its copies: two sources of one subnet both need the
    // connected route while their gateways are added.
    for r in &own {
        sock.del_kernel_route(r)?;
    }
    Ok(tables)
}

/// Deletes the rules whose source is an address `ifname` still has (only those looking
/// up `table`, when given). The tables' routes go with the interface. A missing
/// interface is fine.
pub fn remove(ifname: &str, table: Option<u32>) -> Result<()> {
    let mut sock = Socket::open()?;
    let Some(index) = link_index(&mut sock, ifname)? else { return Ok(()) };
    let addrs = sock.addresses(index)?;
    for r in sock.rules()? {
        let ours = r.src.is_some_and(|src| addrs.iter().any(|a| host(a.ip()) == src));
        if ours && table.is_none_or(|t| r.table == t) {
            sock.del_rule(&r)?;
        }
    }
    Ok(())
}

/// Checks every source has its rule (to `table`, when given).
pub fn check(sources: &[Source], table: Option<u32>) -> Result<()> {
    let rules = Socket::open()?.rules()?;
    for s in sources {
        if !rules.iter().any(|r| r.src == Some(host(s.addr.ip())) && table.is_none_or(|t| r.table == t)) {
            return Err(Error::Check(format!("no source rule for {}", s.addr.ip())));
        }
    }
    Ok(())
}
