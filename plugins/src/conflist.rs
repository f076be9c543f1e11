//! Running a network configuration list (conflist) the way libcni does: each plugin in
//! order for ADD with the previous result chained in, in reverse for DEL, with
//! `runtimeConfig` filled from the capabilities each plugin declares.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::exec::{exec, find_plugin, Invocation};
use crate::types::{code, version, Attachment, CniError};

/// A parsed conflist.
#[derive(Debug, Clone)]
pub struct ConfList {
    /// Its cniVersion.
    pub cni_version: String,
    /// Network name.
    pub name: String,
    /// The plugin configurations, in order.
    pub plugins: Vec<Value>,
}

/// What the runtime knows about the attachment.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConf {
    /// Container ID.
    pub container_id: String,
    /// netns path.
    pub netns: String,
    /// Interface name.
    pub ifname: String,
    /// CNI_ARGS.
    pub args: String,
    /// Capability arguments, e.g. `{"portMappings": [...]}`.
    pub capability_args: Map<String, Value>,
}

impl ConfList {
    /// Parses a conflist document.
    pub fn parse(data: &[u8]) -> Result<Self, CniError> {
        let v: Value = serde_json::from_slice(data).map_err(|e| CniError::new(code::DECODE, format!("failed to parse conflist: {e}")))?;
        let cni_version = v.get("cniVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let name = v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let plugins = v.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default();
        if name.is_empty() || plugins.is_empty() {
            return Err(CniError::new(code::INVALID_CONFIG, "conflist needs a name and at least one plugin"));
        }
        if !version::SUPPORTED.contains(&cni_version.as_str()) {
            return Err(CniError::new(code::INCOMPATIBLE_VERSION, format!("unsupported conflist cniVersion {cni_version:?}")));
        }
        Ok(Self { cni_version, name, plugins })
    }
}

/// Executes conflists with plugins from `path`.
#[derive(Debug, Clone)]
pub struct Runner {
    /// CNI_PATH.
    pub path: Vec<PathBuf>,
}

impl Runner {
    fn stdin(&self, list: &ConfList, i: usize, prev: Option<&Value>, rt: &RuntimeConf, extra: &Map<String, Value>) -> Value {
        let mut conf = list.plugins[i].clone();
        conf["cniVersion"] = json!(list.cni_version);
        conf["name"] = json!(list.name);
        if let Some(p) = prev {
            conf["prevResult"] = p.clone();
        }
        let caps: Vec<String> = conf
            .get("capabilities")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter(|(_, v)| v.as_bool() == Some(true)).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        let mut rc = Map::new();
        for c in caps {
            if let Some(v) = rt.capability_args.get(&c) {
                rc.insert(c, v.clone());
            }
        }
        if !rc.is_empty() {
            conf["runtimeConfig"] = Value::Object(rc);
        }
        for (k, v) in extra {
            conf[k] = v.clone();
        }
        conf
    }

    fn run(
        &self,
        command: &str,
        list: &ConfList,
        i: usize,
        prev: Option<&Value>,
        rt: &RuntimeConf,
        extra: &Map<String, Value>,
    ) -> Result<Vec<u8>, CniError> {
        let ty = list.plugins[i].get("type").and_then(Value::as_str).unwrap_or("");
        let bin = find_plugin(&self.path, ty)?;
        let inv = Invocation {
            command: command.into(),
            container_id: rt.container_id.clone(),
            netns: rt.netns.clone(),
            ifname: rt.ifname.clone(),
            args: rt.args.clone(),
            path: self.path.clone(),
        };
        let stdin = self.stdin(list, i, prev, rt, extra).to_string();
        exec(&bin, &inv, stdin.as_bytes())
    }

    /// ADD through every plugin; on failure the chain is deleted again, so nothing is left.
    pub fn add(&self, list: &ConfList, rt: &RuntimeConf) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for i in 0..list.plugins.len() {
            match self.run("ADD", list, i, prev.as_ref(), rt, &Map::new()) {
                Ok(out) => {
                    prev = Some(
                        serde_json::from_slice(&out)
                            .map_err(|e| CniError::new(code::DECODE, format!("plugin {i} printed an invalid result: {e}")))?,
                    );
                }
                Err(e) => {
                    let _ = self.del(list, rt, prev.as_ref());
                    return Err(e);
                }
            }
        }
        prev.ok_or_else(|| CniError::new(code::INTERNAL, "no result"))
    }

    /// DEL through every plugin in reverse order; keeps going and returns the first error.
    pub fn del(&self, list: &ConfList, rt: &RuntimeConf, prev: Option<&Value>) -> Result<(), CniError> {
        let mut first = None;
        for i in (0..list.plugins.len()).rev() {
            if let Err(e) = self.run("DEL", list, i, prev, rt, &Map::new()) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// CHECK through every plugin with the cached result.
    pub fn check(&self, list: &ConfList, rt: &RuntimeConf, prev: &Value) -> Result<(), CniError> {
        for i in 0..list.plugins.len() {
            self.run("CHECK", list, i, Some(prev), rt, &Map::new())?;
        }
        Ok(())
    }

    /// GC through every plugin with the attachments to keep.
    pub fn gc(&self, list: &ConfList, valid: &[Attachment]) -> Result<(), CniError> {
        let mut extra = Map::new();
        extra.insert(
            "cni.dev/valid-attachments".into(),
            Value::Array(valid.iter().map(|a| json!({"containerID": a.container_id, "ifname": a.ifname})).collect()),
        );
        for i in 0..list.plugins.len() {
            self.run("GC", list, i, None, &RuntimeConf::default(), &extra)?;
        }
        Ok(())
    }
}
