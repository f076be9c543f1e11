//! ipvlan modes and flags, by the names CNI configs and Docker's `-o ipvlan_mode`/
//! `ipvlan_flag` use. ipvlan links share their master's MAC (no per-container DHCP);
//! l3/l3s route rather than switch. The link is made by [`super::child`].

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::netlink::ChildKind;

/// IFLA_IPVLAN_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Switched on the master's L2 (the default).
    #[default]
    L2,
    /// Routed: no ARP or broadcast; the LAN needs routes to the containers.
    L3,
    /// As l3, through netfilter and conntrack.
    L3s,
}

/// IFLA_IPVLAN_FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flag {
    /// Links of one master reach each other (the default).
    #[default]
    Bridge,
    /// They do not.
    Private,
    /// Their traffic goes out to the switch and back.
    Vepa,
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "l2" => Mode::L2,
            "l3" => Mode::L3,
            "l3s" => Mode::L3s,
            _ => return Err(Error::BadOption { key: "mode".into(), value: s.into(), why: "one of l2, l3, l3s" }),
        })
    }
}

impl FromStr for Flag {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "bridge" => Flag::Bridge,
            "private" => Flag::Private,
            "vepa" => Flag::Vepa,
            _ => return Err(Error::BadOption { key: "ipvlan_flag".into(), value: s.into(), why: "one of bridge, private, vepa" }),
        })
    }
}

/// The link kind with this mode and flag.
pub fn kind(mode: Mode, flag: Flag) -> ChildKind {
    let mode = match mode {
        Mode::L2 => 0,
        Mode::L3 => 1,
        Mode::L3s => 2,
    };
    let flags = match flag {
        Flag::Bridge => 0,
        Flag::Private => 1,
        Flag::Vepa => 2,
    };
    ChildKind::Ipvlan { mode, flags }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_flags_by_name() {
        assert_eq!(kind("".parse().unwrap(), "".parse().unwrap()), ChildKind::Ipvlan { mode: 0, flags: 0 });
        assert_eq!(kind("l3s".parse().unwrap(), "vepa".parse().unwrap()), ChildKind::Ipvlan { mode: 2, flags: 2 });
        assert!("l4".parse::<Mode>().is_err());
        assert!("passthru".parse::<Flag>().is_err());
    }
}
