//! Network drivers: the bridge (docker0-style networks), macvlan links, host devices, taps.

pub mod bridge;
pub mod endpoint;
pub mod host_device;
pub mod macvlan;
pub mod shared;
pub mod tap;
pub mod wire;
