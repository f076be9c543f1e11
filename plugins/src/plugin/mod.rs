//! The plugins: each a [`crate::skel::Plugin`] over the netd engine.

pub mod bandwidth;
pub mod bridge;
pub mod dhcp;
pub mod dummy;
pub mod firewall;
pub mod host_device;
pub mod host_local;
pub mod ipvlan;
pub mod loopback;
pub mod macvlan;
pub mod one_link;
pub mod portmap;
pub mod ptp;
pub mod sbr;
pub mod static_ipam;
pub mod tap;
pub mod tuning;
pub mod vlan;
pub mod vrf;
