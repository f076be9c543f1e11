//! VRFs (the `vrf` plugin): an interface of the container enslaved to a VRF in the same
//! netns, so its addresses route through the VRF's own table. The VRF is made on first
//! use (its table given, or the lowest no other VRF of the netns uses) and deleted with
//! its last member. Enslaving drops global IPv6 addresses unless `keep_addr_on_down`,
//! and the interface's gateway routes leave main: both are put back, the routes into the
//! VRF's table. Kernels built without the kind (this project's CI among them) refuse it:
//! [`Error::KernelLacks`], nothing made.
//!
//! Everything here runs in the calling thread's netns (the container's).

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::netlink::{KernelRoute, Link, Socket};

const MAIN: u32 = 254;

fn vrf(sock: &mut Socket, name: &str) -> Result<Option<Link>> {
    match sock.link_by_name(name)? {
        Some(l) if l.kind.as_deref() == Some("vrf") => Ok(Some(l)),
        Some(_) => Err(Error::BadOption { key: "vrfname".into(), value: name.into(), why: "a link of that name exists and is not a VRF" }),
        None => Ok(None),
    }
}

fn iface(sock: &mut Socket, ifname: &str) -> Result<Link> {
    sock.link_by_name(ifname)?.ok_or_else(|| Error::NoSuchInterface { ifname: ifname.to_string(), netns: "the container's netns".into() })
}

/// Enslaves `ifname` to VRF `name` (made with `table`, or the lowest table id no other
/// VRF uses, when missing). Returns the VRF's table. On failure nothing of it stays.
pub fn attach(ifname: &str, name: &str, table: Option<u32>) -> Result<u32> {
    let mut sock = Socket::open()?;
    let link = iface(&mut sock, ifname)?;
    if let Some(m) = link.master {
        return Err(Error::BadOption {
            key: "vrfname".into(),
            value: format!("{ifname} (master {m})"),
            why: "the interface already has a master",
        });
    }
    let (vrf, made) = match vrf(&mut sock, name)? {
        Some(v) => {
            if let (Some(want), Some(has)) = (table, v.vrf_table) {
                if want != has {
                    return Err(Error::BadOption {
                        key: "table".into(),
                        value: format!("{want} (VRF {name} has {has})"),
                        why: "the VRF exists with another table",
                    });
                }
            }
            (v, false)
        }
        None => {
            let table = match table {
                Some(t) => t,
                None => {
                    let taken: BTreeSet<u32> = sock.links()?.iter().filter_map(|l| l.vrf_table).collect();
                    (1..).find(|t| !taken.contains(t)).unwrap_or(1)
                }
            };
            match sock.create_vrf(name, table) {
                Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => return Err(Error::KernelLacks("vrf")),
                r => r?,
            }
            let v = iface(&mut sock, name)?;
            (v, true)
        }
    };
    let res = enslave(&mut sock, &link, &vrf);
    if res.is_err() {
        let _ = sock.set_nomaster(link.index);
        if made {
            let _ = sock.delete_link(vrf.index);
        }
    }
    res
}

fn enslave(sock: &mut Socket, link: &Link, vrf: &Link) -> Result<u32> {
    let table = vrf.vrf_table.unwrap_or(0);
    sock.set_up(vrf.index)?;
    let v6_before: Vec<_> = sock.addresses(link.index)?.into_iter().filter(|a| a.is_ipv6()).collect();
    let gateway_routes: Vec<KernelRoute> =
        sock.all_routes()?.into_iter().filter(|r| r.table() == MAIN && r.oif() == Some(link.index) && r.gw().is_some()).collect();
    sock.set_master(link.index, vrf.index)?;
    let after = sock.addresses(link.index)?;
    for a in v6_before.iter().filter(|a| !after.contains(a)) {
        sock.add_address(link.index, *a)?;
    }
    for r in &gateway_routes {
        sock.replace_route_in(r, table)?;
    }
    Ok(table)
}

/// Takes `ifname` out of VRF `name` and deletes the VRF when it was the last member.
/// A VRF or an interface already gone is fine.
pub fn detach(ifname: &str, name: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    let Some(vrf) = vrf(&mut sock, name)? else { return Ok(()) };
    if let Some(l) = sock.link_by_name(ifname)?.filter(|l| l.master == Some(vrf.index)) {
        sock.set_nomaster(l.index)?;
    }
    if !sock.links()?.iter().any(|l| l.master == Some(vrf.index)) {
        sock.delete_link(vrf.index)?;
    }
    Ok(())
}

/// Checks `ifname` is a member of VRF `name`.
pub fn check(ifname: &str, name: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    let vrf = vrf(&mut sock, name)?.ok_or_else(|| Error::Check(format!("no VRF {name}")))?;
    if iface(&mut sock, ifname)?.master != Some(vrf.index) {
        return Err(Error::Check(format!("{ifname} is not in VRF {name}")));
    }
    Ok(())
}
