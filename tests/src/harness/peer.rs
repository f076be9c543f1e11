//! "Another host": a netns wired to the test host with TEST-NET-1 addresses.

use super::netns::{sh, Netns};

/// The host side is 192.0.2.1/24 on `uplink`; the other host is 192.0.2.2/24 on its eth0.
pub struct OtherHost {
    /// The other host's netns.
    pub ns: Netns,
}

/// The test host's address as the other host sees it.
pub const HOST_IP: &str = "192.0.2.1";
/// The other host's address.
pub const PEER_IP: &str = "192.0.2.2";

impl OtherHost {
    /// Creates and wires it.
    pub fn new() -> Self {
        let ns = Netns::new("other");
        sh("ip link add uplink type veth peer name eth0 netns other");
        sh(&format!("ip addr add {HOST_IP}/24 dev uplink && ip link set uplink up"));
        ns.sh(&format!("ip addr add {PEER_IP}/24 dev eth0 && ip link set eth0 up && ip link set lo up"));
        Self { ns }
    }
}

impl Default for OtherHost {
    fn default() -> Self {
        Self::new()
    }
}
