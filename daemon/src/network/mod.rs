//! Network drivers: the bridge (docker0-style networks), links on a master (macvlan,
//! ipvlan, VLAN), dummy and tap links, host devices.

pub mod bandwidth;
pub mod bridge;
pub mod child;
pub mod driver;
pub mod dummy;
pub mod endpoint;
pub mod host_device;
pub mod ipvlan;
pub mod macvlan;
pub mod ptp;
pub mod sbr;
pub mod shared;
pub mod spoofchk;
pub mod tap;
pub mod vlan;
pub mod vrf;
pub mod wire;
