//! The only code that builds netlink messages: links, addresses, routes.

mod addr;
mod link;
mod route;
mod socket;
pub mod tc;

pub use link::{fill_random, format_mac, random_hex, random_mac, ChildKind, ChildRequest, Link, VethRequest};
pub use route::Route;
pub(crate) use socket::exchange;
pub use socket::Socket;
