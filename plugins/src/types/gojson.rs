//! JSON decoded as Go's `encoding/json` decodes it, which is what every other CNI runtime
//! and plugin speaks: an object key matches a struct field by its exact name first, else
//! case-insensitively; unknown keys are ignored. containerd's CRI sends
//! `runtimeConfig.portMappings` as `[{"HostPort": 30080, "ContainerPort": 80, ...}]`; the
//! reference plugins take it because Go folds case, and so must berth's.
//!
//! One place does it: [`decode`] deserialises through [`GoValue`], a deserializer over a
//! `serde_json::Value` that renames each object's keys to the fields the target struct
//! declares (serde tells a deserializer the field names), at every depth. [`get`] and
//! [`pointer()`] do the same for the few keys read straight from a `Value`. A struct read
//! with `#[serde(flatten)]` gets no field names from serde: decode such parts on their own.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Decodes `v` into `T` with Go's key matching.
pub fn decode<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    T::deserialize(GoValue(v))
}

/// `obj[key]` with Go's key matching: the exact key, else the first that equals it
/// ignoring case.
pub fn get<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A JSON pointer (`/runtimeConfig/mac`) with Go's key matching at each step.
pub fn pointer<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').skip(1).try_fold(v, |cur, step| match cur {
        Value::Array(a) => step.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => get(cur, step),
    })
}

/// Renames `map`'s keys to `fields` where only case differs; an exact key wins over a
/// folded one naming the same field (Go lets the last one win; both are the same value in
/// every config seen in practice, and serde would refuse the duplicate).
fn fold(map: Map<String, Value>, fields: &'static [&'static str]) -> Vec<(String, Value)> {
    // (name, value, whether the key was spelled exactly so)
    let mut out: Vec<(String, Value, bool)> = Vec::with_capacity(map.len());
    for (k, v) in map {
        let exact = fields.contains(&k.as_str());
        let name = match fields.iter().find(|f| !exact && f.eq_ignore_ascii_case(&k)) {
            Some(f) => f.to_string(),
            None => k,
        };
        match out.iter_mut().find(|(o, _, _)| *o == name) {
            // The exact spelling is kept over a folded one, whichever came first.
            Some(slot) if slot.2 && !exact => {}
            Some(slot) => *slot = (name, v, exact),
            None => out.push((name, v, exact)),
        }
    }
    out.into_iter().map(|(k, v, _)| (k, v)).collect()
}

/// A `serde_json::Value` that deserialises with Go's key matching.
pub struct GoValue(pub Value);

struct GoMap {
    entries: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for GoMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let v = self.value.take().ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(GoValue(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct GoSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for GoSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(GoValue(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<'de> de::Deserializer<'de> for GoValue {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(m) => visitor.visit_map(GoMap { entries: m.into_iter().collect::<Vec<_>>().into_iter(), value: None }),
            Value::Array(a) => visitor.visit_seq(GoSeq(a.into_iter())),
            other => de::Deserializer::deserialize_any(other, visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(m) => visitor.visit_map(GoMap { entries: fold(m, fields).into_iter(), value: None }),
            other => de::Deserializer::deserialize_struct(other, name, fields, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(GoValue(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_enum(self.0, name, variants, visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_bytes(self.0, visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_byte_buf(self.0, visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_unit(self.0, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        drop(self);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit_struct seq tuple tuple_struct map identifier
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Mapping {
        host_port: u16,
        container_port: u16,
        #[serde(default)]
        protocol: String,
        #[serde(default, rename = "hostIP")]
        host_ip: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Rc {
        #[serde(default)]
        port_mappings: Vec<Mapping>,
        mac: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Conf {
        cni_version: String,
        #[serde(default)]
        runtime_config: Option<Rc>,
        #[serde(default)]
        ip_masq: bool,
    }

    #[test]
    fn containerds_cri_port_mappings_decode() {
        // containerd 1.6/1.7's CRI: Go field names, as its CNI library marshals them.
        let c: Conf = decode(json!({"cniVersion": "1.0.0", "runtimeConfig": {"portMappings": [
            {"HostPort": 30080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]}}))
        .unwrap();
        let m = &c.runtime_config.unwrap().port_mappings[0];
        assert_eq!((m.host_port, m.container_port, m.protocol.as_str(), m.host_ip.as_str()), (30080, 80, "tcp", ""));
    }

    #[test]
    fn podman_and_crio_shapes_decode() {
        // podman 4 (CNI backend) writes the canonical spelling; CRI-O passes runtimeConfig
        // through ocicni with lowercase-first keys and Go-cased capability values.
        let podman: Conf = decode(json!({"cniVersion": "0.4.0", "ipMasq": true,
            "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}}))
        .unwrap();
        assert!(podman.ip_masq);
        assert_eq!(podman.runtime_config.unwrap().port_mappings[0].host_port, 8080);
        let crio: Conf = decode(json!({"CNIVersion": "1.0.0", "RuntimeConfig": {"PortMappings": [
            {"hostport": 9090, "containerport": 90, "protocol": "udp", "hostip": "127.0.0.1"}], "MAC": "02:00:00:00:00:01"},
            "IPMasq": true}))
        .unwrap();
        assert_eq!(crio.cni_version, "1.0.0");
        assert!(crio.ip_masq);
        let rc = crio.runtime_config.unwrap();
        assert_eq!((rc.port_mappings[0].host_port, rc.port_mappings[0].host_ip.as_str()), (9090, "127.0.0.1"));
        assert_eq!(rc.mac.as_deref(), Some("02:00:00:00:00:01"));
    }

    #[test]
    fn exact_names_win_and_unknown_keys_are_ignored() {
        let c: Conf = decode(json!({"cniVersion": "1.0.0", "IPMASQ": false, "ipMasq": true, "whatever": {"x": 1}})).unwrap();
        assert!(c.ip_masq, "the exact key wins over a folded one");
        let c: Conf = decode(json!({"ipMasq": true, "IPMASQ": false, "cniVersion": "1.0.0"})).unwrap();
        assert!(c.ip_masq, "whichever comes first");
        // Types are still checked.
        assert!(decode::<Conf>(json!({"cniVersion": 1})).is_err());
        assert!(decode::<Conf>(json!({"cniVersion": "1.0.0", "runtimeConfig": {"portMappings": [{"HostPort": "x"}]}})).is_err());
    }

    #[test]
    fn lookups_fold_case() {
        let v = json!({"RuntimeConfig": {"MAC": "x", "ips": ["a"]}, "runtimeConfig": {"mac": "y"}});
        assert_eq!(pointer(&v, "/runtimeConfig/mac"), Some(&json!("y")));
        let w = json!({"RuntimeConfig": {"Mac": "x", "IPs": ["a"]}});
        assert_eq!(pointer(&w, "/runtimeConfig/mac"), Some(&json!("x")));
        assert_eq!(pointer(&w, "/runtimeConfig/ips/0"), Some(&json!("a")));
        assert_eq!(get(&w, "nothing"), None);
    }
}
