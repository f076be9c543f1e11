//! The only code that builds netlink messages: links, addresses, routes, rules, qdiscs.

mod addr;
mod detached;
mod link;
mod route;
mod rule;
mod socket;
pub mod tc;

pub use link::{
    bridge_request, bridge_vlan_request, fill_random, format_mac, port_vlan, random_hex, random_mac, trunk_vlans, vrf_request, ChildKind,
    ChildRequest, Link, VethRequest,
};
pub use route::{KernelRoute, Route};
pub use rule::{rule_request, Rule};
pub(crate) use socket::exchange;
pub use socket::Socket;
