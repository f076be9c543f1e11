//! The network store: each user network is one CNI conflist file, `<dir>/<name>.conflist`,
//! that podman or containerd could use unchanged (bridge → portmap, host-local IPAM with
//! the engine's own data and state directories), so a berth network and a CNI network
//! are the same thing. berth's own facts ride in a top-level `berth` key, which CNI
//! tools ignore.

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::name::Name;
use crate::network::driver::Driver;
use crate::network::endpoint::BridgeNetwork;

/// The conflist's CNI version: what podman 4 and containerd 1.7 read.
const CNI_VERSION: &str = "1.0.0";

/// Where networks are stored and what their conflists point the plugins at.
#[derive(Debug, Clone)]
pub struct Store {
    /// Directory of `<name>.conflist` files.
    pub dir: PathBuf,
    /// host-local `dataDir` (the engine's IPAM store).
    pub ipam: PathBuf,
    /// The plugins' `stateDir` (port claims, rule records, firewall lock).
    pub run: PathBuf,
}

fn corrupt(name: &str, why: impl std::fmt::Display) -> Error {
    Error::CorruptNetwork { name: name.to_string(), why: why.to_string() }
}

impl Store {
    fn path(&self, name: &Name) -> PathBuf {
        self.dir.join(format!("{name}.conflist"))
    }

    /// The conflist of `net`.
    pub fn conflist(&self, net: &BridgeNetwork) -> Value {
        let mut range = json!({"subnet": net.subnet.to_string()});
        if let Some(gw) = net.gateway {
            range["gateway"] = json!(gw.to_string());
        }
        // `--ip-range` as host-local's own bounds, so the plugins honour it too.
        if let Some(r) = net.ip_range.and_then(|_| crate::network::endpoint::range_set(net).ok()) {
            range["rangeStart"] = json!(r.0[0].start.to_string());
            range["rangeEnd"] = json!(r.0[0].end.to_string());
        }
        let mut ranges = vec![json!([range])];
        if let Some(v6) = net.subnet6 {
            let mut r6 = json!({"subnet": v6.to_string()});
            if let Some(gw) = net.gateway6 {
                r6["gateway"] = json!(gw.to_string());
            }
            ranges.push(json!([r6]));
        }
        let berth = json!({"externalBridge": net.external_bridge, "labels": net.labels, "created": net.created, "ipRange": net.ip_range, "driver": net.driver});
        if let Some(p) = net.driver.parented() {
            return Self::parented_conflist(net, p, ranges, berth, &self.ipam);
        }
        let mut bridge = json!({
            "type": "bridge", "bridge": net.bridge, "isGateway": true, "isDefaultGateway": true,
            "ipMasq": net.ip_masq, "hairpinMode": true,
            "gatewayMode": if net.unprotected { "nat-unprotected" } else { "nat" },
            "internal": net.internal,
            "stateDir": self.run.display().to_string(),
            "ipam": {"type": "host-local", "ranges": ranges, "dataDir": self.ipam.display().to_string()}
        });
        if let Some(mtu) = net.mtu {
            bridge["mtu"] = json!(mtu);
        }
        json!({
            "cniVersion": CNI_VERSION, "name": net.name,
            "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true, "stateDir": self.run.display().to_string()}],
            "berth": berth
        })
    }

    /// A macvlan/ipvlan network's conflist: the plugin of its kind on the parent, with
    /// host-local ranges whose gateway is set only when one was given (Docker 29: no
    /// default route otherwise) and the default route it then gives.
    fn parented_conflist(
        net: &BridgeNetwork,
        p: &crate::network::driver::Parented,
        mut ranges: Vec<Value>,
        berth: Value,
        ipam: &std::path::Path,
    ) -> Value {
        let mut routes = Vec::new();
        for (i, (gw, any)) in [(net.gateway, "0.0.0.0/0"), (net.gateway6, "::/0")].into_iter().enumerate() {
            if let Some(r) = ranges.get_mut(i).and_then(|r| r.get_mut(0)).and_then(Value::as_object_mut) {
                if gw.is_none() {
                    r.remove("gateway");
                }
                if !net.internal && (gw.is_some() || net.driver.routed()) {
                    routes.push(json!({"dst": any}));
                }
            }
        }
        let mut plugin = json!({
            "type": net.driver.name(), "master": p.parent, "mode": p.mode,
            "ipam": {"type": "host-local", "ranges": ranges, "routes": routes, "dataDir": ipam.display().to_string()}
        });
        if let Some(mtu) = net.mtu {
            plugin["mtu"] = json!(mtu);
        }
        json!({"cniVersion": CNI_VERSION, "name": net.name, "plugins": [plugin], "berth": berth})
    }

    /// Reads a network back from its conflist.
    pub fn parse(name: &str, doc: &Value) -> Result<BridgeNetwork> {
        let kinds = [Some("bridge"), Some("macvlan"), Some("ipvlan")];
        let bridge = doc
            .get("plugins")
            .and_then(Value::as_array)
            .and_then(|p| p.iter().find(|p| kinds.contains(&p.get("type").and_then(Value::as_str))))
            .ok_or_else(|| corrupt(name, "no bridge, macvlan or ipvlan plugin"))?;
        let driver: Driver = match doc.pointer("/berth/driver") {
            Some(d) => serde_json::from_value(d.clone()).map_err(|e| corrupt(name, e))?,
            None => Driver::Bridge,
        };
        if driver.name() != bridge.get("type").and_then(Value::as_str).unwrap_or_default() {
            return Err(corrupt(name, "the berth driver and the plugin differ"));
        }
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let range = bridge.pointer("/ipam/ranges/0/0").ok_or_else(|| corrupt(name, "no ipam range"))?;
        let subnet: IpNetwork = s(range.get("subnet")).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(name, "bad subnet"))?;
        let gateway: Option<IpAddr> = s(range.get("gateway")).map(|g| g.parse().map_err(|_| corrupt(name, "bad gateway"))).transpose()?;
        let r6 = bridge.pointer("/ipam/ranges/1/0");
        let subnet6: Option<IpNetwork> =
            r6.map(|r| s(r.get("subnet")).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(name, "bad IPv6 subnet"))).transpose()?;
        let gateway6: Option<IpAddr> =
            s(r6.and_then(|r| r.get("gateway"))).map(|g| g.parse().map_err(|_| corrupt(name, "bad IPv6 gateway"))).transpose()?;
        let br = match &driver {
            Driver::Bridge => {
                let br = s(bridge.get("bridge")).ok_or_else(|| corrupt(name, "no bridge name"))?;
                Name::interface(&br)?;
                br
            }
            _ => String::new(),
        };
        if let Some(p) = driver.parented() {
            Name::interface(&p.parent)?;
        }
        Ok(BridgeNetwork {
            name: s(doc.get("name")).unwrap_or_else(|| name.to_string()),
            bridge: br,
            subnet,
            gateway,
            ip_masq: bridge.get("ipMasq").and_then(Value::as_bool).unwrap_or(false),
            mtu: bridge.get("mtu").and_then(Value::as_u64).map(|m| m as u32),
            external_bridge: doc.pointer("/berth/externalBridge").and_then(Value::as_bool).unwrap_or(false),
            unprotected: s(bridge.get("gatewayMode")).as_deref() == Some("nat-unprotected"),
            internal: bridge.get("internal").and_then(Value::as_bool).unwrap_or(false),
            labels: doc.pointer("/berth/labels").and_then(|l| serde_json::from_value(l.clone()).ok()).unwrap_or_default(),
            created: s(doc.pointer("/berth/created")),
            ip_range: s(doc.pointer("/berth/ipRange")).map(|r| r.parse().map_err(|_| corrupt(name, "bad ipRange"))).transpose()?,
            subnet6,
            gateway6,
            driver,
        })
    }

    /// The stored network `name` (a conflist; a record of an older berth is read too).
    pub fn load(&self, name: &Name) -> Result<Option<BridgeNetwork>> {
        match fs::read(self.path(name)) {
            Ok(data) => {
                let doc: Value = serde_json::from_slice(&data).map_err(|e| corrupt(name.as_str(), e))?;
                return Self::parse(name.as_str(), &doc).map(Some);
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("read", self.path(name), e)),
            Err(_) => {}
        }
        match fs::read(self.dir.join(format!("{name}.json"))) {
            Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| corrupt(name.as_str(), e)),
            Err(_) => Ok(None),
        }
    }

    /// Every stored network, by name.
    pub fn list(&self) -> Result<Vec<BridgeNetwork>> {
        let Ok(rd) = fs::read_dir(&self.dir) else { return Ok(Vec::new()) };
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| {
                let f = e.file_name().to_string_lossy().to_string();
                f.strip_suffix(".conflist").or_else(|| f.strip_suffix(".json")).map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            let Ok(name) = Name::network(&n) else { continue };
            if let Some(net) = self.load(&name)? {
                out.push(net);
            }
        }
        Ok(out)
    }

    /// Writes `net`'s conflist (atomically, 0600).
    pub fn save(&self, net: &BridgeNetwork) -> Result<()> {
        let name = Name::network(&net.name)?;
        let data = serde_json::to_vec_pretty(&self.conflist(net)).map_err(|e| corrupt(&net.name, e))?;
        crate::state::write_atomic(&self.path(&name), &data)?;
        let _ = fs::remove_file(self.dir.join(format!("{name}.json")));
        Ok(())
    }

    /// Removes the stored network; missing is fine.
    pub fn remove(&self, name: &Name) -> Result<()> {
        for p in [self.path(name), self.dir.join(format!("{name}.json"))] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("remove", p, e)),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether two networks share an address.
pub fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_round_trip() {
        let st = Store { dir: "/x".into(), ipam: "/var/lib/berth/ipam".into(), run: "/run/berth".into() };
        let net = BridgeNetwork {
            name: "app".into(),
            bridge: "br-1".into(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: Some("10.89.0.1".parse().unwrap()),
            ip_masq: true,
            mtu: Some(1400),
            external_bridge: true,
            unprotected: true,
            internal: true,
            labels: [("a".to_string(), "b".to_string())].into(),
            created: Some("2026-11-23T19:45:24Z".into()),
            ip_range: Some("10.89.0.128/25".parse().unwrap()),
            subnet6: Some("fd00:89::/64".parse().unwrap()),
            gateway6: Some("fd00:89::1".parse().unwrap()),
            driver: Driver::Bridge,
        };
        let doc = st.conflist(&net);
        assert_eq!(doc["plugins"][0]["ipam"]["dataDir"], "/var/lib/berth/ipam");
        assert_eq!(doc["plugins"][1]["type"], "portmap");
        assert_eq!(doc["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"], "10.89.0.128");
        assert_eq!(doc["plugins"][0]["ipam"]["ranges"][0][0]["rangeEnd"], "10.89.0.254");
        assert_eq!(doc["plugins"][0]["ipam"]["ranges"][1][0]["subnet"], "fd00:89::/64");
        assert_eq!(Store::parse("app", &doc).unwrap(), net);
    }

    #[test]
    fn macvlan_conflist_round_trip() {
        let st = Store { dir: "/x".into(), ipam: "/var/lib/berth/ipam".into(), run: "/run/berth".into() };
        let mut driver = Driver::by_name("macvlan").unwrap();
        driver.option("parent", "lan0").unwrap();
        let mut net = BridgeNetwork {
            name: "lan".into(),
            bridge: String::new(),
            subnet: "192.0.2.0/24".parse().unwrap(),
            gateway: None,
            ip_masq: false,
            mtu: None,
            external_bridge: false,
            unprotected: false,
            internal: false,
            labels: Default::default(),
            created: None,
            ip_range: None,
            subnet6: None,
            gateway6: None,
            driver,
        };
        let doc = st.conflist(&net);
        assert_eq!(doc["plugins"][0]["type"], "macvlan");
        assert_eq!(doc["plugins"][0]["master"], "lan0");
        assert_eq!(doc["plugins"][0]["mode"], "bridge");
        assert!(doc["plugins"][0]["ipam"]["ranges"][0][0].get("gateway").is_none());
        assert_eq!(doc["plugins"][0]["ipam"]["routes"], serde_json::json!([]), "no gateway given: no default route");
        assert_eq!(Store::parse("lan", &doc).unwrap(), net);
        net.gateway = Some("192.0.2.1".parse().unwrap());
        let doc = st.conflist(&net);
        assert_eq!(doc["plugins"][0]["ipam"]["routes"], serde_json::json!([{"dst": "0.0.0.0/0"}]));
        assert_eq!(doc["plugins"][0]["ipam"]["ranges"][0][0]["gateway"], "192.0.2.1");
        assert_eq!(Store::parse("lan", &doc).unwrap(), net);
    }
}
