//! DHCP addressing for container interfaces (the CNI `dhcp` IPAM plugin): a daemon that
//! runs the DHCPv4 client of each attachment inside its netns — the lease at ADD, its
//! renewals at T1/T2 for as long as the attachment lives, RELEASE at DEL — and keeps every
//! lease on disk, so a restarted daemon goes on renewing what it handed out (the
//! reference daemon forgets them: its #235/#767).
//!
//! Plugin and daemon speak berth's own protocol (one JSON request and one JSON reply per
//! connection on a unix socket, see [`daemon`]): the reference's is Go's net/rpc, so
//! berth's plugin needs berth's daemon and the other way round.

pub mod client;
pub mod daemon;

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// What one attachment asks the daemon for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// The network's name.
    pub network: String,
    /// CNI_NETNS (a path in the daemon's mount namespace, after its `-hostprefix`).
    pub netns: String,
    /// CNI_IFNAME.
    pub ifname: String,
    /// Option codes to ask for beyond the defaults (subnet mask, router, DNS, domain, 121).
    #[serde(default)]
    pub request: Vec<u8>,
    /// Options to send: code and value bytes (the `provide` key).
    #[serde(default)]
    pub provide: Vec<(u8, Vec<u8>)>,
    /// How long one exchange may take before ADD fails.
    #[serde(default = "default_timeout", with = "secs")]
    pub timeout: Duration,
    /// Ask for broadcast answers even when renewing.
    #[serde(default)]
    pub broadcast: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let f = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(f.clamp(0.1, 600.0)))
    }
}

impl Request {
    /// The attachment's key (file name of its lease).
    pub fn key(&self) -> String {
        crate::state::file_key(&[&self.network, &self.container_id, &self.ifname])
    }

    /// The client identifier sent: type 0 and "container/network/ifname", as the
    /// reference's, so a server sees one client per attachment whatever its MAC.
    pub fn client_id(&self) -> Vec<u8> {
        let mut id = vec![0u8];
        id.extend_from_slice(format!("{}/{}/{}", self.container_id, self.network, self.ifname).as_bytes());
        id
    }
}

/// A lease as an ACK granted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The address.
    pub ip: Ipv4Addr,
    /// Its prefix length (from the subnet mask).
    pub prefix: u8,
    /// The server that granted it.
    pub server: Ipv4Addr,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 121 (preferred over the routers when present).
    pub routes: Vec<(Ipv4Network, Ipv4Addr)>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Lease time, seconds.
    pub secs: u32,
    /// Renewal time (T1), seconds after `obtained`.
    pub t1: u32,
    /// Rebinding time (T2).
    pub t2: u32,
    /// When it was granted or last renewed, Unix seconds.
    pub obtained: u64,
}

impl Lease {
    /// Whether it has run out at Unix time `now`.
    pub fn expired(&self, now: u64) -> bool {
        now >= self.obtained + u64::from(self.secs)
    }
}
