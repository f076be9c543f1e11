//! CNI errors: the spec's codes, the JSON shape, and the one place that maps engine
//! errors to codes.

use serde::Serialize;

pub use netd::error::code;

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

impl From<netd::Error> for CniError {
    fn from(e: netd::Error) -> Self {
        CniError::new(e.cni_code(), e.to_string())
    }
}
