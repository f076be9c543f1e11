//! netd: berth's network engine. One implementation of each concept (a veth, an IPAM
//! allocation, a port mapping, a firewall rule set) that the CNI plugins, the `netd`
//! daemon and the `berth` runtime all call.

pub mod child;
pub mod clock;
pub mod dhcp;
pub mod docker;
pub mod engine;
pub mod error;
pub mod fault;
pub mod netlink;
pub mod netns;
pub mod sysctl;

pub use error::{Error, Result};
pub mod firewall;
pub mod ipam;
pub mod logging;
pub mod name;
pub mod network;
pub mod portmap;
pub mod proc;
pub mod reconcile;
pub mod records;
pub mod state;
pub mod tuning;
