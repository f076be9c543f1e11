//! Listing containers with Docker's filters, for `ps` and `GET /containers/json`.

use std::collections::BTreeMap;

use super::{all, Container, Status};
use crate::error::{Error, Result};
use crate::paths::Paths;

/// `--filter` / `filters=`: each key's values are alternatives, keys must all match.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    by: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `KEY=VALUE` filters (the CLI's form).
    pub fn parse(given: &[String]) -> Result<Self> {
        let mut f = Filters::default();
        for g in given {
            let (k, v) = g.split_once('=').ok_or_else(|| Error::Flag {
                flag: "--filter",
                value: g.clone(),
                why: "use KEY=VALUE (name, status, label, network or id)".into(),
            })?;
            f.add(k, v)?;
        }
        Ok(f)
    }

    /// Parses the API's `filters` JSON: `{"label":["a=b"],"status":["running"]}` (or
    /// the older `{"status":{"running":true}}`).
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Flag { flag: "filters", value: text.to_string(), why: why.into() };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
        let mut f = Filters::default();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                serde_json::Value::Object(o) => o.iter().filter(|(_, on)| on.as_bool() == Some(true)).map(|(s, _)| s.clone()).collect(),
                _ => return Err(bad("each filter is a list of values")),
            };
            for x in list {
                f.add(k, &x)?;
            }
        }
        Ok(f)
    }

    fn add(&mut self, k: &str, v: &str) -> Result<()> {
        let bad = |why: &str| Error::Flag { flag: "--filter", value: format!("{k}={v}"), why: why.into() };
        match k {
            "name" | "label" | "network" | "id" | "ancestor" => {}
            "status" if ["created", "running", "exited", "paused", "restarting", "removing", "dead"].contains(&v) => {}
            "status" => return Err(bad("status is one of created, running, exited, paused, restarting, removing, dead")),
            _ => return Err(bad("unknown filter; use name, status, label, network, ancestor or id")),
        }
        self.by.entry(k.to_string()).or_default().push(v.to_string());
        Ok(())
    }

    /// Whether a status filter is given (then stopped containers are listed too).
    pub fn has_status(&self) -> bool {
        self.by.contains_key("status")
    }

    /// Whether the container passes: a key's values are alternatives, except labels, which
    /// must all hold (Docker's rule, which docker-compose relies on to find one service's
    /// containers by project and service label).
    pub fn matches(&self, c: &Container) -> bool {
        self.by.iter().all(|(k, vals)| {
            let test = |v: &String| match k.as_str() {
                "name" => c.name.contains(v.trim_start_matches('/')),
                "id" => c.id.starts_with(v.as_str()),
                // Docker's state names: running excludes paused and restarting ones.
                "status" => c.state_text() == v,
                "network" => c.spec.net.display() == *v,
                "ancestor" => c.spec.image == *v || c.spec.image_id.starts_with(v.trim_start_matches("sha256:")),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => c.spec.labels.get(lk).is_some_and(|x| x == lv),
                    None => c.spec.labels.contains_key(v.as_str()),
                },
                _ => false,
            };
            if k == "label" {
                vals.iter().all(test)
            } else {
                vals.iter().any(test)
            }
        })
    }
}

/// The containers `ps` shows, newest first: running and restarting ones (every one with
/// `all` or a status filter) that pass `filters`. What died unseen is released (and removed with
/// `--rm`) as it is listed.
pub fn list(paths: &Paths, all_of_them: bool, filters: &Filters) -> Result<Vec<Container>> {
    let mut out = Vec::new();
    for c in all(paths)? {
        let shown = |c: &Container| {
            (all_of_them || c.effective_status() == Status::Running || c.restarting() || filters.has_status()) && filters.matches(c)
        };
        if let Some(c) = crate::process::monitor::sweep(paths, c)?.filter(shown) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The running containers as network documents name them (`network inspect`, the
/// daemon's `GET /networks`): one read of the records.
pub fn attached(paths: &Paths) -> Vec<netd::docker::Attached> {
    all(paths)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.alive())
        .map(|c| {
            let network = match (&c.spec.net, c.state.endpoint.clone()) {
                (super::NetMode::Bridge(n), Some(ep)) => Some((n.clone(), ep)),
                _ => None,
            };
            netd::docker::Attached { id: c.id, name: c.name, network }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Filters;

    #[test]
    fn labels_all_hold_other_keys_are_alternatives() {
        let f = Filters::parse(&["label=a=1".into(), "label=b".into(), "status=running".into(), "status=exited".into()]).unwrap();
        assert_eq!(f.by["label"].len(), 2);
        assert!(Filters::from_json(r#"{"label":["x=1"],"status":{"running":true}}"#).is_ok());
        assert!(Filters::from_json(r#"{"bogus":["x"]}"#).is_err());
    }
}
