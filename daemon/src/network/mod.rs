//! Network drivers: the bridge (docker0-style networks), macvlan links, host devices.

pub mod bridge;
pub mod endpoint;
pub mod host_device;
pub mod macvlan;
pub mod shared;
pub mod wire;
