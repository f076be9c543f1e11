//! Allocation and release over a [`Store`]: pure policy, the store does the I/O.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::range::RangeSet;
use super::store::Store;
use crate::error::{Error, Result};

/// An address handed to a container, with the data a CNI result needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Address with the subnet's prefix length.
    pub address: IpNetwork,
    /// The range's gateway.
    pub gateway: Option<IpAddr>,
}

/// `ip` with its range's prefix.
fn address(ip: IpAddr, range: &crate::ipam::Range) -> Result<IpNetwork> {
    IpNetwork::new(ip, range.subnet.prefix()).map_err(|e| Error::BadSubnet { subnet: range.subnet.to_string(), why: e.to_string() })
}

/// Allocates one address from each range set for (id, ifname), round-robin after the
/// last address handed out. `requested` pins addresses (CNI_ARGS IP=, runtimeConfig ips).
/// On failure every address claimed by this call is released again.
pub fn allocate(store: &Store, sets: &[RangeSet], id: &str, ifname: &str, requested: &[IpAddr]) -> Result<Vec<Allocation>> {
    let locked = store.lock()?;
    let mut out: Vec<Allocation> = Vec::new();
    let mut pinned: Vec<IpAddr> = requested.to_vec();
    let result = (|| {
        for (idx, set) in sets.iter().enumerate() {
            let alloc = if let Some(pos) = pinned.iter().position(|ip| set.range_for(*ip).is_some()) {
                let ip = pinned.remove(pos);
                let range = set.range_for(ip).ok_or(Error::BadRequestedAddress { ip, why: "not in a range" })?;
                if range.gateway == Some(ip) {
                    return Err(Error::BadRequestedAddress { ip, why: "it is the gateway" });
                }
                if !locked.reserve(ip, id, ifname, idx)? {
                    let owner = locked.owner(ip).map(|o| o.0).unwrap_or_default();
                    return Err(Error::AddressTaken { ip, owner });
                }
                Allocation { address: address(ip, range)?, gateway: range.gateway }
            } else {
                let mut found = None;
                for (ri, ip) in set.candidates(locked.last_reserved(idx)) {
                    let range = &set.0[ri];
                    if range.gateway == Some(ip) {
                        continue;
                    }
                    if locked.reserve(ip, id, ifname, idx)? {
                        found = Some(Allocation { address: address(ip, range)?, gateway: range.gateway });
                        break;
                    }
                }
                found.ok_or_else(|| Error::RangeExhausted(describe(set)))?
            };
            out.push(alloc);
        }
        if let Some(ip) = pinned.first() {
            return Err(Error::BadRequestedAddress { ip: *ip, why: "not in any configured range" });
        }
        crate::fault::point("ipam-allocated");
        Ok(())
    })();
    if let Err(e) = result {
        for a in &out {
            let _ = locked.release_if_owned(a.address.ip(), id, ifname);
        }
        return Err(e);
    }
    Ok(out)
}

fn describe(set: &RangeSet) -> String {
    set.0.iter().map(|r| format!("{}-{}", r.start, r.end)).collect::<Vec<_>>().join(",")
}

/// Releases what (id, ifname) holds. `hints` (addresses from a previous result) are tried
/// first so the common case touches one file; otherwise the store is scanned.
/// Releasing nothing is success: DEL is idempotent.
pub fn release(store: &Store, id: &str, ifname: &str, hints: &[IpAddr]) -> Result<Vec<IpAddr>> {
    let locked = store.lock()?;
    let mut freed = Vec::new();
    for ip in hints {
        if locked.release_if_owned(*ip, id, ifname)? {
            freed.push(*ip);
        }
    }
    if freed.is_empty() || freed.len() < hints.len() {
        freed.extend(locked.release_by_id(id, ifname)?);
    }
    Ok(freed)
}

/// The addresses (id, ifname) holds.
pub fn find(store: &Store, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
    let locked = store.lock()?;
    Ok(locked.entries()?.into_iter().filter(|e| e.id == id.trim() && (e.ifname == ifname || e.ifname.is_empty())).map(|e| e.ip).collect())
}

/// Releases every allocation whose (containerID, ifname) is not in `valid` (CNI GC).
pub fn gc(store: &Store, valid: &HashSet<(String, String)>) -> Result<Vec<IpAddr>> {
    let locked = store.lock()?;
    let mut freed = Vec::new();
    for e in locked.entries()? {
        if !valid.contains(&(e.id.clone(), e.ifname.clone())) && locked.release_if_owned(e.ip, &e.id, &e.ifname)? {
            freed.push(e.ip);
        }
    }
    Ok(freed)
}
