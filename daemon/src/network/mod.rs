//! Network drivers. Only the bridge driver exists: docker0-style networks.

pub mod bridge;
pub mod endpoint;
pub mod shared;
pub mod wire;
