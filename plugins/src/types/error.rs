//! CNI errors: the spec's codes, the JSON shape, and the one place that maps engine
//! errors to codes.

use serde::Serialize;

/// The CNI spec's error codes (and berth's own, 100 and up): what a plugin prints.
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

    /// An invalid-config error (code 7), the most common refusal.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::new(super::code::INVALID_CONFIG, msg)
    }

    /// The JSON the runtime reads, in the config's version.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["cniVersion"] = serde_json::Value::String(cni_version.to_string());
        v
    }
}

/// The CNI code of an engine error's kind.
pub fn code_of(kind: netd::error::Kind) -> u32 {
    use netd::error::Kind as K;
    match kind {
        K::Invalid | K::NotFound | K::Forbidden => code::INVALID_CONFIG,
        K::UnknownContainer => code::UNKNOWN_CONTAINER,
        K::BadNetns => code::INVALID_ENV,
        K::Busy | K::InUse => code::IN_USE,
        K::Exhausted => code::RANGE_EXHAUSTED,
        K::Unsupported => code::NOT_AVAILABLE,
        K::TryLater => code::TRY_AGAIN,
        K::Io => code::IO,
        K::Internal => code::INTERNAL,
    }
}

impl From<netd::Error> for CniError {
    fn from(e: netd::Error) -> Self {
        CniError::new(code_of(e.kind()), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_get_the_codes_runtimes_expect() {
        let cases = [
            (netd::Error::NoSuchNetwork("x".into()), code::INVALID_CONFIG),
            (netd::Error::NetworkExists("x".into()), code::IN_USE),
            (netd::Error::PredefinedNetwork("bridge".into()), code::INVALID_CONFIG),
            (netd::Error::NetworkInUse { network: "x".into(), endpoints: 1 }, code::IN_USE),
            (netd::Error::BadSubnet { subnet: "x".into(), why: "bad".into() }, code::INVALID_CONFIG),
            (netd::Error::LockTimeout { path: "/l".into(), waited: std::time::Duration::from_secs(1) }, code::TRY_AGAIN),
            (netd::Error::NoFreeSubnet, code::RANGE_EXHAUSTED),
            (netd::Error::KernelLacks("vrf"), code::NOT_AVAILABLE),
        ];
        for (e, c) in cases {
            assert_eq!(CniError::from(e).code, c);
        }
    }
}
