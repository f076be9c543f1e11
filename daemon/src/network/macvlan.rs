//! macvlan modes: a container interface with its own MAC on a host interface (the
//! "master"), so the container sits on the master's LAN. The link itself is made by
//! [`super::child`], as ipvlan and VLAN links are.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::netlink::ChildKind;

/// IFLA_MACVLAN_MODE values, by their names in CNI configs and `ip link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No traffic between macvlans of one master.
    Private,
    /// Traffic between macvlans goes out to the switch and back.
    Vepa,
    /// macvlans of one master reach each other directly (the default).
    #[default]
    Bridge,
    /// One macvlan takes the master over.
    Passthru,
}

impl Mode {
    /// The link kind with this mode.
    pub fn kind(self) -> ChildKind {
        ChildKind::Macvlan { mode: self.value() }
    }

    fn value(self) -> u32 {
        match self {
            Mode::Private => 1,
            Mode::Vepa => 2,
            Mode::Bridge => 4,
            Mode::Passthru => 8,
        }
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "bridge" => Mode::Bridge,
            "private" => Mode::Private,
            "vepa" => Mode::Vepa,
            "passthru" => Mode::Passthru,
            _ => {
                return Err(Error::BadOption { key: "mode".into(), value: s.into(), why: "one of bridge, private, vepa, passthru" });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name() {
        assert_eq!("".parse::<Mode>().unwrap(), Mode::Bridge);
        assert_eq!("private".parse::<Mode>().unwrap().value(), 1);
        assert_eq!("passthru".parse::<Mode>().unwrap().value(), 8);
        assert!("source".parse::<Mode>().is_err());
    }
}
