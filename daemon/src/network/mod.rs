//! Network drivers: the bridge (docker0-style networks) and macvlan links.

pub mod bridge;
pub mod endpoint;
pub mod macvlan;
pub mod shared;
pub mod wire;
