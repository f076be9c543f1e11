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
    /// A configuration value is invalid; nothing was changed.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The range set has no free address left.
    #[error("no IP addresses available in range set {0}")]
    RangeExhausted(String),
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
    /// An external command (iptables-restore) failed.
    #[error("{cmd} failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// State on disk or in the kernel does not match what was configured (CHECK).
    #[error("check failed: {0}")]
    Check(String),
}

/// Shorthand for the engine's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an `Io` error for a path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }
}
