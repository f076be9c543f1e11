//! Docker's network drivers beside the bridge: `macvlan` and `ipvlan`. Their containers
//! get a link of their own on a host interface (the "parent"), so they sit on its LAN
//! with their own addresses: no bridge, no NAT, no published ports — and, by the kernel's
//! design, no way to the parent's own addresses. Options and defaults as Docker's:
//! `parent` (an `IF.VID` parent is an 802.1Q link made when missing and removed with the
//! network; no parent: a dummy parent, and the network is internal), `macvlan_mode`,
//! `ipvlan_mode`, `ipvlan_flag`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ipvlan, macvlan};
use crate::error::{Error, Result};
use crate::netlink::ChildKind;

/// A network's driver.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "name")]
pub enum Driver {
    /// A bridge with the network's gateway on it (Docker's default).
    #[default]
    Bridge,
    /// macvlan links on the parent.
    Macvlan(Parented),
    /// ipvlan links on the parent.
    Ipvlan(Parented),
}

/// What berth made as a network's parent, and removes with the network's last user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MadeParent {
    /// The 802.1Q link of a `parent=IF.VID`.
    Vlan,
    /// The dummy parent of a network created without one.
    Dummy,
}

/// A macvlan or ipvlan network's parent and modes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Parented {
    /// The interface the links are made on (empty until `create` picks the dummy).
    pub parent: String,
    /// `macvlan_mode` (bridge, private, vepa, passthru) or `ipvlan_mode` (l2, l3, l3s).
    pub mode: String,
    /// `ipvlan_flag` (bridge, private, vepa); empty for macvlan.
    #[serde(default)]
    pub flag: String,
    /// What berth made for the parent, if anything.
    #[serde(default)]
    pub made: Option<MadeParent>,
}

impl Driver {
    /// The driver by Docker's name (`-d`, the API's `Driver`).
    pub fn by_name(name: &str) -> Result<Self> {
        Ok(match name {
            "" | "bridge" => Driver::Bridge,
            "macvlan" => Driver::Macvlan(Parented { mode: "bridge".into(), ..Default::default() }),
            "ipvlan" => Driver::Ipvlan(Parented { mode: "l2".into(), flag: "bridge".into(), ..Default::default() }),
            _ => return Err(Error::BadOption { key: "driver".into(), value: name.into(), why: "one of bridge, macvlan, ipvlan" }),
        })
    }

    /// Docker's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan(_) => "macvlan",
            Driver::Ipvlan(_) => "ipvlan",
        }
    }

    /// The parent and modes, for the drivers that have them.
    pub fn parented(&self) -> Option<&Parented> {
        match self {
            Driver::Bridge => None,
            Driver::Macvlan(p) | Driver::Ipvlan(p) => Some(p),
        }
    }

    /// Mutable access to the same.
    pub fn parented_mut(&mut self) -> Option<&mut Parented> {
        match self {
            Driver::Bridge => None,
            Driver::Macvlan(p) | Driver::Ipvlan(p) => Some(p),
        }
    }

    /// Applies one of a macvlan or ipvlan driver's options (`-o`); false for a bridge
    /// network (whose options the caller applies).
    pub fn option(&mut self, key: &str, value: &str) -> Result<bool> {
        let (is_ipvlan, p) = match self {
            Driver::Bridge => return Ok(false),
            Driver::Macvlan(p) => (false, p),
            Driver::Ipvlan(p) => (true, p),
        };
        match (key, is_ipvlan) {
            ("parent", _) => {
                if value == "lo" {
                    return Err(Error::BadOption {
                        key: key.into(),
                        value: value.into(),
                        why: "the loopback interface cannot be a parent",
                    });
                }
                let (base, _) = super::vlan::parent_vid(value)?;
                crate::name::Name::interface(base)?;
                crate::name::Name::interface(value)?;
                p.parent = value.to_string();
            }
            ("macvlan_mode", false) => {
                value.parse::<macvlan::Mode>()?;
                p.mode = value.to_string();
            }
            ("ipvlan_mode", true) => {
                value.parse::<ipvlan::Mode>()?;
                p.mode = value.to_string();
            }
            ("ipvlan_flag", true) => {
                value.parse::<ipvlan::Flag>()?;
                p.flag = value.to_string();
            }
            _ => {
                let why = if is_ipvlan { "unsupported (parent, ipvlan_mode, ipvlan_flag)" } else { "unsupported (parent, macvlan_mode)" };
                return Err(Error::BadOption { key: key.into(), value: value.into(), why });
            }
        }
        Ok(true)
    }

    /// The link kind its containers get.
    pub fn kind(&self) -> Result<Option<ChildKind>> {
        Ok(match self {
            Driver::Bridge => None,
            Driver::Macvlan(p) => Some(p.mode.parse::<macvlan::Mode>()?.kind()),
            Driver::Ipvlan(p) => Some(ipvlan::kind(p.mode.parse()?, p.flag.parse()?)),
        })
    }

    /// ipvlan l3/l3s: routed, so containers get a device default route, never a gateway.
    pub fn routed(&self) -> bool {
        matches!(self, Driver::Ipvlan(p) if p.mode == "l3" || p.mode == "l3s")
    }

    /// Its options as `docker network inspect` shows them.
    pub fn docker_options(&self) -> BTreeMap<String, String> {
        let mut o = BTreeMap::new();
        match self {
            Driver::Bridge => {}
            Driver::Macvlan(p) => {
                o.insert("parent".into(), p.parent.clone());
                o.insert("macvlan_mode".into(), p.mode.clone());
            }
            Driver::Ipvlan(p) => {
                o.insert("parent".into(), p.parent.clone());
                o.insert("ipvlan_mode".into(), p.mode.clone());
                o.insert("ipvlan_flag".into(), p.flag.clone());
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_by_driver() {
        let mut d = Driver::by_name("macvlan").unwrap();
        assert!(d.option("parent", "eth0.10").unwrap() && d.option("macvlan_mode", "private").unwrap());
        assert_eq!(d.kind().unwrap(), Some(ChildKind::Macvlan { mode: 1 }));
        assert!(d.option("ipvlan_mode", "l3").is_err() && d.option("parent", "lo").is_err() && d.option("parent", "eth0.5000").is_err());
        let mut i = Driver::by_name("ipvlan").unwrap();
        i.option("ipvlan_mode", "l3s").unwrap();
        i.option("ipvlan_flag", "private").unwrap();
        assert_eq!(i.kind().unwrap(), Some(ChildKind::Ipvlan { mode: 2, flags: 1 }));
        assert!(i.routed());
        assert!(!Driver::Bridge.option("parent", "x").unwrap());
        assert!(Driver::by_name("overlay").is_err());
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["name"], "ipvlan");
        assert_eq!(serde_json::from_value::<Driver>(json).unwrap(), i);
    }
}
