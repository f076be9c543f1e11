//! CNI errors: the spec's codes, the JSON shape, and the one place that maps engine
//! errors to codes.

use serde::Serialize;

/// Well-known CNI error codes.
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN: u32 = 11;
    /// Plugin not available (STATUS).
    pub const NOT_AVAILABLE: u32 = 50;
    /// berth-specific: no address left in the range.
    pub const RANGE_EXHAUSTED: u32 = 100;
    /// berth-specific: a host port or address is already taken.
    pub const IN_USE: u32 = 101;
    /// Anything else.
    pub const INTERNAL: u32 = 999;
}

/// A CNI error as printed on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    /// The error code.
    pub code: u32,
    /// A one-line message.
    pub msg: String,
    /// Optional details.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with a code and message.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into(), details: String::new() }
    }

    /// The JSON the runtime reads, in the config's version.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["cniVersion"] = serde_json::Value::String(cni_version.to_string());
        v
    }
}

impl From<netd::Error> for CniError {
    fn from(e: netd::Error) -> Self {
        use netd::Error as E;
        let c = match &e {
            E::InvalidConfig(_) | E::Name(_) | E::NotABridge(_) | E::BridgeAddress { .. } => code::INVALID_CONFIG,
            E::Netns { .. } => code::INVALID_ENV,
            E::RangeExhausted(_) => code::RANGE_EXHAUSTED,
            E::AddressTaken { .. } | E::PortInUse { .. } | E::LinkExists(_) => code::IN_USE,
            E::Io { .. } => code::IO,
            E::LockTimeout { .. } => code::TRY_AGAIN,
            E::Check(_) => code::INTERNAL,
            E::Netlink(_) | E::Command { .. } => code::INTERNAL,
        };
        CniError::new(c, e.to_string())
    }
}
