//! The bridge plugin's `macspoofchk`: frames from a container's bridge port must carry
//! the container's MAC (nftables `bridge berth`, see [`crate::firewall::nft::spoof`]).
//! Each check is recorded before it is installed, so DEL without a prevResult, GC,
//! reconcile after a ruleset flush and `netd cleanup` all find it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::firewall::nft::spoof;
use crate::records::Record;
use crate::state::file_key;

/// The record of one attachment's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// Network name.
    pub network: String,
    /// Container ID.
    pub container_id: String,
    /// Interface in the container.
    pub ifname: String,
    /// The host end of its veth: the bridge port checked.
    pub port: String,
    /// The only source MAC let through.
    pub mac: String,
}

impl Checked {
    /// Its record key.
    pub fn key(&self) -> String {
        key(&self.network, &self.container_id, &self.ifname)
    }
}

/// The record key of an attachment.
pub fn key(network: &str, container_id: &str, ifname: &str) -> String {
    file_key(&[network, container_id, ifname])
}

/// Records and installs the check; on failure nothing stays.
pub fn apply(run: &Path, c: &Checked) -> Result<()> {
    let mac = spoof::parse_mac(&c.mac)?;
    let records = Record::CniSpoofchk.open(run)?;
    records.save(&c.key(), c)?;
    if let Err(e) = spoof::add(&c.port, mac) {
        let _ = records.remove(&c.key());
        return Err(e);
    }
    Ok(())
}

/// Removes the attachment's check and record; none is success.
pub fn remove(run: &Path, network: &str, container_id: &str, ifname: &str) -> Result<()> {
    let records = Record::CniSpoofchk.open(run)?;
    let k = key(network, container_id, ifname);
    if let Some(c) = records.load::<Checked>(&k) {
        spoof::remove(&c.port, spoof::parse_mac(&c.mac)?)?;
    }
    records.remove(&k)
}

/// Whether the attachment's check is in place (CHECK).
pub fn check(run: &Path, network: &str, container_id: &str, ifname: &str) -> Result<()> {
    let k = key(network, container_id, ifname);
    let c = Record::CniSpoofchk
        .open(run)?
        .load::<Checked>(&k)
        .ok_or_else(|| crate::Error::Check(format!("no MAC spoof check recorded for {container_id}/{ifname}")))?;
    if !spoof::present(&c.port, spoof::parse_mac(&c.mac)?)? {
        return Err(crate::Error::Check(format!("the MAC spoof check of {} ({}) is missing", c.port, c.mac)));
    }
    Ok(())
}

/// Removes the checks of `network`'s attachments whose key is not in `valid` (GC).
pub fn gc(run: &Path, network: &str, valid: &[String]) -> Result<()> {
    let records = Record::CniSpoofchk.open(run)?;
    for k in records.keys().into_iter().filter(|k| !valid.contains(k)) {
        if let Some(c) = records.load::<Checked>(&k).filter(|c| c.network == network) {
            remove(run, &c.network, &c.container_id, &c.ifname)?;
        }
    }
    Ok(())
}

/// Re-installs every recorded check that is missing (reconcile); returns how many.
pub fn repair(run: &Path) -> Result<usize> {
    let records = Record::CniSpoofchk.open(run)?;
    let mut n = 0;
    for c in records.keys().into_iter().filter_map(|k| records.load::<Checked>(&k)) {
        let mac = spoof::parse_mac(&c.mac)?;
        if !spoof::present(&c.port, mac)? {
            spoof::add(&c.port, mac)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes every check with its table (`netd cleanup`); returns how many were recorded.
pub fn remove_all(run: &Path) -> Result<usize> {
    let n = Record::CniSpoofchk.open(run)?.keys().len();
    if n > 0 || crate::firewall::Nftables::available() {
        spoof::remove_table()?;
    }
    Ok(n)
}
