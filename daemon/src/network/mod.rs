//! Network drivers: the bridge (docker0-style networks), macvlan, dummy and tap links, host devices.

pub mod bridge;
pub mod dummy;
pub mod endpoint;
pub mod host_device;
pub mod macvlan;
pub mod shared;
pub mod tap;
pub mod wire;
