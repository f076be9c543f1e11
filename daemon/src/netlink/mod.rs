//! The only code that builds netlink messages: links, addresses, routes.

mod addr;
mod link;
mod route;
mod socket;

pub use link::{format_mac, parse_mac, random_mac, fill_random, Link, VethRequest};
pub use route::Route;
pub use socket::Socket;
