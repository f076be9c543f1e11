//! Rate limits on a container's veth (the `bandwidth` plugin), shaped as the reference
//! plugin shapes them. Ingress (toward the container) is a tbf as the root qdisc of the
//! host end; egress (from the container) is redirected from the host end's `ingress`
//! qdisc by a match-all u32 filter to an ifb named for the attachment (`bwp` + 12 hex of
//! sha512(network + container ID)), whose root tbf shapes it. DEL deletes the ifb (the
//! host end's qdiscs go with the veth). Each ifb is recorded (under the run directory)
//! before it is made, so GC and `netd cleanup` find those whose DEL never came.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::error::{Error, Result};
use crate::netlink::tc::{Psched, Tbf};
use crate::netlink::{Link, Socket};
use crate::records::Record;
use crate::state::file_key;

/// The record of an attachment's ifb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shaped {
    /// Network name.
    pub network: String,
    /// Container ID.
    pub container_id: String,
    /// Interface in the container.
    pub ifname: String,
    /// The ifb's name.
    pub ifb: String,
}

impl Shaped {
    /// The attachment's record (with the ifb name the reference would give it).
    pub fn new(network: &str, container_id: &str, ifname: &str) -> Self {
        Self { network: network.into(), container_id: container_id.into(), ifname: ifname.into(), ifb: ifb_name(network, container_id) }
    }

    /// Its record key.
    pub fn key(&self) -> String {
        file_key(&[&self.network, &self.container_id, &self.ifname])
    }
}

/// One direction's limit, in bits per second and bits of burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Bits per second.
    pub rate: u64,
    /// Bits the bucket holds.
    pub burst: u64,
}

impl Limit {
    /// A limit from a rate and a burst: both or neither (None), each positive, the burst
    /// under 4 GiB in bytes — the reference's rules, with its messages.
    pub fn new(rate: i64, burst: i64) -> Result<Option<Self>> {
        let bad = |why: &'static str| Error::BadOption { key: "bandwidth".into(), value: format!("rate {rate}, burst {burst}"), why };
        match (rate, burst) {
            _ if rate < 0 || burst < 0 => Err(bad("rate and burst must be positive integers")),
            (0, 0) => Ok(None),
            (_, 0) => Err(bad("if rate is set, burst must also be set")),
            (0, _) => Err(bad("if burst is set, rate must also be set")),
            _ if burst as u64 / 8 >= u64::from(u32::MAX) => Err(bad("burst cannot be more than 4GB")),
            _ => Ok(Some(Self { rate: rate as u64, burst: burst as u64 })),
        }
    }

    fn tbf(&self) -> Tbf {
        Tbf::new(self.rate, self.burst, Psched::read())
    }
}

/// The ifb of an attachment.
pub fn ifb_name(network: &str, container_id: &str) -> String {
    let digest = Sha512::digest(format!("{network}{container_id}").as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("bwp{hex}")
}

/// Shapes `host` (the host end of the container's veth): `ingress` into the container,
/// `egress` out of it through the attachment's ifb, recorded under `run` first. Returns
/// the ifb when one was made. On failure nothing of it stays.
pub fn apply(run: &Path, host: &Link, ingress: Option<Limit>, egress: Option<Limit>, att: &Shaped) -> Result<Option<Link>> {
    let ifb = att.ifb.as_str();
    let mut sock = Socket::open()?;
    if let Some(l) = ingress {
        sock.add_tbf(host.index, &l.tbf())?;
    }
    let Some(l) = egress else { return Ok(None) };
    let records = Record::CniBandwidth.open(run)?;
    records.save(&att.key(), att)?;
    let made = (|| {
        sock.create_ifb(ifb, host.mtu)?;
        let link = sock.link_by_name(ifb)?.ok_or_else(|| Error::LinkExists(ifb.to_string()))?;
        sock.add_ingress_qdisc(host.index)?;
        sock.add_redirect(host.index, link.index)?;
        sock.add_tbf(link.index, &l.tbf())?;
        Ok::<_, Error>(link)
    })();
    if made.is_err() {
        let _ = remove(ifb);
        let _ = records.remove(&att.key());
    }
    made.map(Some)
}

/// Deletes the attachment's ifb and its record; either already gone is fine.
pub fn detach(run: &Path, att: &Shaped) -> Result<()> {
    remove(&att.ifb)?;
    Record::CniBandwidth.open(run)?.remove(&att.key())
}

/// Deletes the ifb and record of every attachment of `network` whose key is not in
/// `valid` (GC).
pub fn gc(run: &Path, network: &str, valid: &[String]) -> Result<()> {
    let records = Record::CniBandwidth.open(run)?;
    for k in records.keys().into_iter().filter(|k| !valid.contains(k)) {
        if let Some(att) = records.load::<Shaped>(&k).filter(|a| a.network == network) {
            detach(run, &att)?;
        }
    }
    Ok(())
}

/// Deletes every recorded ifb (`netd cleanup`); returns how many were there.
pub fn remove_recorded(run: &Path) -> Result<usize> {
    let records = Record::CniBandwidth.open(run)?;
    let mut n = 0;
    for att in records.keys().into_iter().filter_map(|k| records.load::<Shaped>(&k)) {
        n += usize::from(Socket::open()?.link_by_name(&att.ifb)?.is_some());
        detach(run, &att)?;
    }
    Ok(n)
}

fn remove(ifb: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    if let Some(l) = sock.link_by_name(ifb)?.filter(|l| l.kind.as_deref() == Some("ifb")) {
        sock.delete_link(l.index)?;
    }
    Ok(())
}

/// Checks the shaping is as asked: the tbf of each direction with the parameters `apply`
/// gave it.
pub fn check(host: &Link, ingress: Option<Limit>, egress: Option<Limit>, ifb: &str) -> Result<()> {
    let mut sock = Socket::open()?;
    let tbf_of = |sock: &mut Socket, index: u32| -> Result<Option<Tbf>> {
        Ok(sock.qdiscs(index)?.into_iter().find(|q| q.kind == "tbf").and_then(|q| Tbf::from_options(&q.options)))
    };
    if let Some(l) = ingress {
        let found = tbf_of(&mut sock, host.index)?;
        if found != Some(l.tbf()) {
            return Err(Error::Check(format!("{}: ingress tbf is {found:?}, not {:?}", host.name, l.tbf())));
        }
    }
    if let Some(l) = egress {
        let link = sock.link_by_name(ifb)?.ok_or_else(|| Error::Check(format!("no ifb {ifb}")))?;
        let found = tbf_of(&mut sock, link.index)?;
        if found != Some(l.tbf()) {
            return Err(Error::Check(format!("{ifb}: egress tbf is {found:?}, not {:?}", l.tbf())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_the_reference_checks_them() {
        assert_eq!(Limit::new(0, 0).unwrap(), None);
        assert_eq!(Limit::new(1000, 80).unwrap(), Some(Limit { rate: 1000, burst: 80 }));
        for (r, b, why) in [(1000, 0, "burst must also be set"), (0, 8, "rate must also be set"), (-1, 8, "positive"), (1, 8 << 32, "4GB")]
        {
            assert!(Limit::new(r, b).unwrap_err().to_string().contains(why), "{r} {b}");
        }
    }

    #[test]
    fn ifb_names_as_the_reference_makes_them() {
        let n = ifb_name("net", "ctr");
        assert_eq!(n.len(), 15);
        assert!(n.starts_with("bwp") && n[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(n, ifb_name("net", "ctr2"));
    }
}
