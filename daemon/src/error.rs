//! Typed errors of the engine: each variant names the step and carries the object.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// A failed netlink request, with what it tried to do and to which object.
#[derive(Debug, thiserror::Error)]
#[error("netlink: {op} {object}: {source}")]
pub struct NetlinkError {
    /// The operation, e.g. "create veth".
    pub op: &'static str,
    /// The link, address or route concerned.
    pub object: String,
    /// The kernel's answer.
    #[source]
    pub source: io::Error,
}

impl NetlinkError {
    /// Wraps an io error with the step and object it belongs to.
    pub fn io(op: &'static str, object: &str, source: io::Error) -> Self {
        Self { op, object: object.to_string(), source }
    }

    /// The errno the kernel answered, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A file or system call failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another process held a lock for longer than berth waits.
    #[error("timed out after {waited:?} waiting for lock {path} (another berth or CNI plugin holds it; BERTH_LOCK_TIMEOUT sets the wait)")]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long berth waited.
        waited: std::time::Duration,
    },
    /// The network namespace given does not exist or cannot be entered.
    #[error("network namespace {path}: {source}")]
    Netns {
        /// The netns path as given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A name (network, interface, container, image) failed its grammar.
    #[error(transparent)]
    Name(#[from] crate::name::NameError),
    /// No network has that name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// A network of that name exists already.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// `bridge`, `host`, `none` and `default` are Docker's own.
    #[error("{0} is a pre-defined network and cannot be created or removed")]
    PredefinedNetwork(String),
    /// The network still has endpoints.
    #[error("network {network} has {endpoints} active endpoint(s)")]
    NetworkInUse {
        /// The network.
        network: String,
        /// How many endpoints it has.
        endpoints: usize,
    },
    /// The subnet asked for overlaps another network's.
    #[error("subnet {subnet} overlaps {other} of network {network}")]
    SubnetOverlap {
        /// The subnet asked for.
        subnet: ipnetwork::IpNetwork,
        /// The other network's subnet.
        other: ipnetwork::IpNetwork,
        /// The other network.
        network: String,
    },
    /// Every default subnet overlaps a network or a route of the host.
    #[error("no free subnet left in the default pools; pass --subnet")]
    NoFreeSubnet,
    /// Another network uses the bridge.
    #[error("bridge {bridge} is already used by network {network}")]
    BridgeInUse {
        /// The bridge.
        bridge: String,
        /// The network using it.
        network: String,
    },
    /// The container is on that network already.
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached {
        /// The network.
        network: String,
        /// The container.
        container: String,
    },
    /// The container is not on that network.
    #[error("container {container} is not connected to network {network}")]
    NotAttached {
        /// The network.
        network: String,
        /// The container.
        container: String,
    },
    /// Every `ethN` name of the container is taken.
    #[error("container {0} has no free interface name left")]
    NoFreeInterface(String),
    /// The daemon answered a request with an error.
    #[error("netd: {message}")]
    Daemon {
        /// The HTTP status it answered with.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The daemon's socket cannot be reached or spoke something else than its API.
    #[error("netd at {socket}: {why}")]
    DaemonUnreachable {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// A stored network cannot be read.
    #[error("network {name} is stored corrupt: {why}")]
    CorruptNetwork {
        /// The network.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A network driver option (`-o`, the API's `Options`, a conflist key) is unknown or
    /// has a value it cannot take.
    #[error("network option {key}={value:?}: {why}")]
    BadOption {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong, with what is accepted.
        why: &'static str,
    },
    /// A subnet cannot be used as asked.
    #[error("subnet {subnet}: {why}")]
    BadSubnet {
        /// The subnet as given.
        subnet: String,
        /// What is wrong.
        why: String,
    },
    /// An address bound of a range (rangeStart, rangeEnd, gateway, ip-range) is outside
    /// its subnet (host-local's wording).
    #[error("{what} {value} not in network {subnet}")]
    OutsideSubnet {
        /// Which bound.
        what: &'static str,
        /// Its value.
        value: String,
        /// The subnet.
        subnet: String,
    },
    /// A range set cannot be built (empty, mixed families, overlapping ranges).
    #[error("range set: {0}")]
    BadRangeSet(String),
    /// A specific address cannot be handed out (the gateway, outside every range).
    #[error("requested IP address {ip}: {why}")]
    BadRequestedAddress {
        /// The address.
        ip: IpAddr,
        /// Why not.
        why: &'static str,
    },
    /// A port mapping (`-p`, CNI `portMappings`) is malformed or out of range.
    #[error("port mapping {spec:?}: {why}")]
    BadPortMapping {
        /// The mapping or the part of it at fault.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A port number is outside 1-65535.
    #[error("{what} {port} out of range 1-65535")]
    PortOutOfRange {
        /// hostPort or containerPort.
        what: &'static str,
        /// The number given.
        port: i64,
    },
    /// A sysctl key is not a plain path below /proc/sys.
    #[error("invalid sysctl key {0:?}")]
    BadSysctl(String),
    /// A tuning setting is malformed or not allowed (the allowlist, a key outside net.*).
    #[error("tuning: {0}")]
    BadTuning(String),
    /// The interface a chained plugin should change is not in the namespace.
    #[error("interface {ifname} not found in {netns}")]
    NoSuchInterface {
        /// The interface.
        ifname: String,
        /// The namespace searched.
        netns: PathBuf,
    },
    /// A firewall rule would carry control characters (hostile input); nothing applied.

    #[error("refusing a firewall rule with control characters: {0:?}")]
    ControlCharacters(String),
    /// No such firewall backend.
    #[error("unknown firewall backend {0:?} (iptables or auto)")]
    UnknownBackend(String),
    /// An engine call broke a precondition of the API (a bug of the caller).
    #[error("internal: {0}")]
    Internal(&'static str),
    /// A DHCP exchange failed: no server answered, it refused, or its answer was unusable.
    #[error("dhcp: {0}")]
    Dhcp(String),
    /// An address asked for (`--ip`) is outside the network's subnets.
    #[error("address {ip} is not in a subnet of network {network}")]
    AddressOutsideSubnet {
        /// The address.
        ip: IpAddr,
        /// The network.
        network: String,
    },
    /// The range set has no free address left.
    #[error("no IP addresses available in range set {0}")]
    RangeExhausted(String),
    /// The bridge has as many ports as the kernel allows (BR_MAX_PORTS).
    #[error("bridge {0} is full: a Linux bridge takes at most 1023 ports")]
    BridgeFull(String),
    /// A specific address was requested but it is taken.
    #[error("requested IP address {ip} is already allocated to container {owner}")]
    AddressTaken {
        /// The address asked for.
        ip: IpAddr,
        /// Who holds it.
        owner: String,
    },
    /// A host port is already published by another container or bound by a process.
    #[error("host port {port}/{proto} on {host_ip} is already in use{by}")]
    PortInUse {
        /// The host port.
        port: u16,
        /// tcp, udp or sctp.
        proto: String,
        /// The host address it is bound to ("0.0.0.0" for all).
        host_ip: String,
        /// Who holds it, as ": by container X" or an empty string.
        by: String,
    },
    /// The kernel has no such link kind (not built): nothing was made.
    #[error("this kernel lacks the {0} link kind (not built into it): {0} links cannot be made here")]
    KernelLacks(&'static str),
    /// The kernel was built without a feature (bridge VLAN filtering): nothing was made.
    #[error("this kernel lacks {0} (not built into it): nothing was made")]
    KernelLacksFeature(&'static str),
    /// An interface exists where the engine must create one.
    #[error("interface {0} already exists")]
    LinkExists(String),
    /// A link exists with the name of the bridge but is not a bridge.
    #[error("{0} already exists but is not a bridge")]
    NotABridge(String),
    /// The bridge holds an address that conflicts with the gateway.
    #[error("bridge {bridge} already has address {found}, expected {wanted} (set forceAddress to replace it)")]
    BridgeAddress {
        /// The bridge name.
        bridge: String,
        /// The address it has.
        found: String,
        /// The address configured.
        wanted: String,
    },
    /// A bridge of the network's name is someone else's (it has another address).
    #[error("bridge {bridge} already has address {found} (is another runtime using it?); create a network with `berth network create --subnet CIDR NAME` and run with --net NAME")]
    ForeignBridge {
        /// The bridge name.
        bridge: String,
        /// The address it has.
        found: String,
    },
    /// An external command (iptables-restore) failed.
    #[error("{cmd} failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The kernel refused an nf_tables change or query.
    #[error("nftables: {what}: {source}")]
    Nftables {
        /// What was asked, naming the chain, set or mapping.
        what: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// State on disk or in the kernel does not match what was configured (CHECK).
    #[error("check failed: {0}")]
    Check(String),
}

/// What kind of failure an error is: the one thing a front end needs to answer it in its
/// own protocol. The CNI plugins derive their error code from it, the Docker API server
/// its HTTP status; the engine keeps no table of either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request or configuration is wrong (a name, a CIDR, an option).
    Invalid,
    /// A named network does not exist.
    NotFound,
    /// The container's interface or attachment is not there.
    UnknownContainer,
    /// The container's network namespace cannot be used.
    BadNetns,
    /// Refused by policy: a predefined network.
    Forbidden,
    /// Still used: a network with endpoints, a container already attached.
    Busy,
    /// Taken by something else: an address, a host port, a link or network name.
    InUse,
    /// Nothing left to allocate: addresses, subnets.
    Exhausted,
    /// This kernel cannot do it (a link kind or feature not built in).
    Unsupported,
    /// Transient: a lock held too long, a daemon away, DHCP not answering.
    TryLater,
    /// A file could not be read or written.
    Io,
    /// Anything else: the kernel refused, state is inconsistent.
    Internal,
}

impl Kind {
    /// Its name, for protocols that carry it as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::NotFound => "not-found",
            Kind::UnknownContainer => "unknown-container",
            Kind::BadNetns => "bad-netns",
            Kind::Forbidden => "forbidden",
            Kind::Busy => "busy",
            Kind::InUse => "in-use",
            Kind::Exhausted => "exhausted",
            Kind::Unsupported => "unsupported",
            Kind::TryLater => "try-later",
            Kind::Io => "io",
            Kind::Internal => "internal",
        }
    }

    /// The kind an HTTP status from netd stands for (a client's view of its answer).
    pub fn of_status(status: u16) -> Kind {
        match status {
            400 => Kind::Invalid,
            403 => Kind::Forbidden,
            404 => Kind::NotFound,
            409 => Kind::InUse,
            501 => Kind::Unsupported,
            503 => Kind::TryLater,
            _ => Kind::Internal,
        }
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> Kind {
        use Error as E;
        match self {
            E::Name(_) | E::NotABridge(_) | E::BridgeAddress { .. } | E::SubnetOverlap { .. } | E::ControlCharacters(_) => Kind::Invalid,
            E::BadOption { .. } | E::BadSubnet { .. } | E::OutsideSubnet { .. } | E::BadRangeSet(_) => Kind::Invalid,
            E::AddressOutsideSubnet { .. } => Kind::Invalid,
            E::BadRequestedAddress { .. } | E::BadPortMapping { .. } | E::BadSysctl(_) | E::UnknownBackend(_) => Kind::Invalid,
            E::PortOutOfRange { .. } | E::BadTuning(_) => Kind::Invalid,
            E::NoSuchNetwork(_) => Kind::NotFound,
            E::NoSuchInterface { .. } | E::NotAttached { .. } => Kind::UnknownContainer,
            E::Netns { .. } => Kind::BadNetns,
            E::PredefinedNetwork(_) => Kind::Forbidden,
            E::NetworkInUse { .. } | E::AlreadyAttached { .. } => Kind::Busy,
            E::NetworkExists(_) | E::AddressTaken { .. } | E::PortInUse { .. } | E::LinkExists(_) | E::BridgeInUse { .. } => Kind::InUse,
            E::ForeignBridge { .. } | E::NoFreeInterface(_) => Kind::InUse,
            E::RangeExhausted(_) | E::NoFreeSubnet | E::BridgeFull(_) => Kind::Exhausted,
            E::KernelLacks(_) | E::KernelLacksFeature(_) => Kind::Unsupported,
            E::Dhcp(_) | E::LockTimeout { .. } | E::DaemonUnreachable { .. } => Kind::TryLater,
            E::Io { .. } => Kind::Io,
            E::Internal(_) | E::CorruptNetwork { .. } | E::Check(_) => Kind::Internal,
            E::Netlink(_) | E::Command { .. } | E::Nftables { .. } => Kind::Internal,
            E::Daemon { status, .. } => Kind::of_status(*status),
        }
    }
}

/// Shorthand for the engine's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an `Io` error for a path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_one_kind() {
        let cases = [
            (Error::NoSuchNetwork("x".into()), Kind::NotFound),
            (Error::NetworkExists("x".into()), Kind::InUse),
            (Error::PredefinedNetwork("bridge".into()), Kind::Forbidden),
            (Error::NetworkInUse { network: "x".into(), endpoints: 1 }, Kind::Busy),
            (Error::BadSubnet { subnet: "x".into(), why: "bad".into() }, Kind::Invalid),
            (Error::LockTimeout { path: "/l".into(), waited: std::time::Duration::from_secs(1) }, Kind::TryLater),
            (Error::KernelLacks("vrf"), Kind::Unsupported),
            (Error::Daemon { status: 409, message: "x".into() }, Kind::InUse),
        ];
        for (e, k) in cases {
            assert_eq!(e.kind(), k, "{e}");
        }
    }
}
