//! The CNI result, kept in its newest form and converted on output for older versions.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::version;

/// An interface in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// netns path for container interfaces; absent for host interfaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with prefix.
    pub address: IpNetwork,
    /// Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    /// Destination.
    pub dst: IpNetwork,
    /// Next hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// DNS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A result (ADD's answer, and `prevResult` in chained configs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CniResult {
    /// The version it is written in.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// Interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// DNS.
    #[serde(default)]
    pub dns: Dns,
}

impl CniResult {
    /// Serialises in `ver`'s format: before 1.0.0 every IP carries "version": "4"/"6",
    /// and interface MTU only exists from 1.1.0.
    pub fn to_json(&self, ver: &str) -> serde_json::Value {
        let mut r = self.clone();
        r.cni_version = ver.to_string();
        if !version::at_least(ver, "1.1.0") {
            for i in &mut r.interfaces {
                i.mtu = None;
            }
        }
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        if version::has_ip_version_field(ver) {
            if let Some(ips) = v.get_mut("ips").and_then(|x| x.as_array_mut()) {
                for (ip, cfg) in ips.iter_mut().zip(&r.ips) {
                    ip["version"] = serde_json::Value::String(if cfg.address.is_ipv4() { "4" } else { "6" }.into());
                }
            }
        }
        v
    }

    /// Reads a result in any supported version (the `version` field is ignored).
    pub fn from_json(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        super::gojson::decode(v.clone())
    }

    /// Addresses that belong to a container interface (or to no interface in particular).
    pub fn container_ips(&self) -> Vec<IpNetwork> {
        self.ips
            .iter()
            .filter(|ip| ip.interface.is_none_or(|i| self.interfaces.get(i).is_none_or(|x| !x.sandbox.is_empty())))
            .map(|ip| ip.address)
            .collect()
    }
}
