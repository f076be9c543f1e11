//! 802.1Q VLAN links: a container interface tagging its frames with one VID on its
//! master. One link per (master, VID): a second attachment on the same VLAN is refused
//! (the kernel's EEXIST, as the reference's #243). The link is made by [`super::child`].

use crate::error::{Error, Result};
use crate::netlink::ChildKind;

/// The link kind for VID `id`, checked: 0–4094 as the reference's `vlanId` (4095 is
/// reserved); Docker's `parent=IF.VID` asks for 1–4094 (see [`parent_vid`]).
pub fn kind(id: i64) -> Result<ChildKind> {
    match u16::try_from(id) {
        Ok(id) if id <= 4094 => Ok(ChildKind::Vlan { id }),
        _ => Err(Error::BadOption { key: "vlanId".into(), value: id.to_string(), why: "from 0 to 4094" }),
    }
}

/// Splits Docker's `parent=eth0.10` into the base interface and a VID of 1–4094; a
/// parent without a dot is (base, None).
pub fn parent_vid(parent: &str) -> Result<(&str, Option<u16>)> {
    let Some((base, vid)) = parent.rsplit_once('.') else { return Ok((parent, None)) };
    match vid.parse::<u16>() {
        Ok(v) if (1..=4094).contains(&v) && !base.is_empty() => Ok((base, Some(v))),
        _ => Err(Error::BadOption { key: "parent".into(), value: parent.into(), why: "a VLAN parent is BASE.VID with a VID of 1 to 4094" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vids_in_range() {
        assert_eq!(kind(0).unwrap(), ChildKind::Vlan { id: 0 });
        assert_eq!(kind(4094).unwrap(), ChildKind::Vlan { id: 4094 });
        assert!(kind(4095).is_err() && kind(-1).is_err() && kind(70000).is_err());
    }

    #[test]
    fn parents_with_a_vid() {
        assert_eq!(parent_vid("eth0").unwrap(), ("eth0", None));
        assert_eq!(parent_vid("eth0.10").unwrap(), ("eth0", Some(10)));
        assert_eq!(parent_vid("br.lan.4094").unwrap(), ("br.lan", Some(4094)));
        assert!(
            parent_vid("eth0.0").is_err() && parent_vid("eth0.4095").is_err() && parent_vid(".5").is_err() && parent_vid("eth0.x").is_err()
        );
    }
}
