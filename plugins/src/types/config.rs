//! Network configuration as a plugin receives it on stdin.

use netd::name::Name;
use serde::Deserialize;
use serde_json::Value;

use super::error::{code, CniError};
use super::gojson;
use super::result::CniResult;
use super::version;

/// One entry of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// Container ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
}

/// The keys every plugin reads; plugin-specific keys are read from `raw`.
#[derive(Debug, Clone)]
pub struct NetConf {
    /// Config version.
    pub cni_version: String,
    /// Network name.
    pub name: String,
    /// Plugin type.
    pub plugin_type: String,
    /// The previous plugin's result, if chained.
    pub prev_result: Option<CniResult>,
    /// GC's list of attachments to keep.
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The whole document, for plugin-specific keys and for delegating to IPAM.
    pub raw: Value,
}

impl NetConf {
    /// Parses and checks the common keys: JSON decode errors are code 6, a missing or
    /// unsupported version code 1, missing keys code 7.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let raw: Value = serde_json::from_slice(stdin)
            .map_err(|e| CniError::new(code::DECODE, format!("failed to parse network configuration: {e}")))?;
        if !raw.is_object() {
            return Err(CniError::new(code::DECODE, "network configuration is not a JSON object"));
        }
        let cni_version = gojson::get(&raw, "cniVersion").and_then(Value::as_str).unwrap_or("").to_string();
        if cni_version.is_empty() {
            return Err(CniError::new(code::INVALID_CONFIG, "network configuration has no cniVersion"));
        }
        if !version::SUPPORTED.contains(&cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("incompatible CNI versions: config is {cni_version:?}, plugin supports {:?}", version::SUPPORTED),
            ));
        }
        let name = gojson::get(&raw, "name").and_then(Value::as_str).unwrap_or("").to_string();
        if !name.is_empty() {
            Name::network(&name).map_err(|e| CniError::new(code::INVALID_CONFIG, e.to_string()))?;
        }
        let plugin_type = gojson::get(&raw, "type").and_then(Value::as_str).unwrap_or("").to_string();
        let prev_result = match gojson::get(&raw, "prevResult") {
            None | Some(Value::Null) => None,
            Some(v) => Some(CniResult::from_json(v).map_err(|e| CniError::new(code::DECODE, format!("failed to parse prevResult: {e}")))?),
        };
        // prevResult comes from whoever ran the chain: its names are checked like input.
        for i in prev_result.iter().flat_map(|r| r.interfaces.iter()) {
            Name::interface(&i.name).map_err(|e| CniError::new(code::INVALID_CONFIG, format!("prevResult: {e}")))?;
        }
        let valid_attachments: Option<Vec<Attachment>> = match gojson::get(&raw, "cni.dev/valid-attachments") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                gojson::decode(v.clone())
                    .map_err(|e| CniError::new(code::DECODE, format!("failed to parse cni.dev/valid-attachments: {e}")))?,
            ),
        };
        for a in valid_attachments.iter().flatten() {
            Name::container(&a.container_id)
                .and_then(|_| Name::interface(&a.ifname))
                .map_err(|e| CniError::new(code::INVALID_CONFIG, format!("cni.dev/valid-attachments: {e}")))?;
        }
        Ok(Self { cni_version, name, plugin_type, prev_result, valid_attachments, raw })
    }

    /// Deserialises the plugin-specific view of the config, keys matched as Go matches
    /// them ([`gojson`]); errors are code 7.
    pub fn plugin<T: serde::de::DeserializeOwned>(&self) -> Result<T, CniError> {
        gojson::decode(self.raw.clone())
            .map_err(|e| CniError::new(code::INVALID_CONFIG, format!("invalid {} configuration: {e}", self.plugin_type)))
    }

    /// A top-level key of the config, matched as Go matches keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        gojson::get(&self.raw, key)
    }

    /// A JSON pointer into the config (`/runtimeConfig/mac`), matched as Go matches keys.
    pub fn pointer(&self, path: &str) -> Option<&Value> {
        gojson::pointer(&self.raw, path)
    }

    /// The network name, required by plugins that keep state per network.
    pub fn require_name(&self) -> Result<&str, CniError> {
        if self.name.is_empty() {
            Err(CniError::new(code::INVALID_CONFIG, "network configuration has no name"))
        } else {
            Ok(&self.name)
        }
    }
}
