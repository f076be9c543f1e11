//! portmap: publishes container ports on the host (DNAT, hairpin and localhost masquerade)
//! from `runtimeConfig.portMappings`, chained after an interface plugin.

use std::net::IpAddr;
use std::path::PathBuf;

use netd::firewall::{self, Firewall, PortRules};
use netd::network::bridge::enable_route_localnet;
use netd::portmap::{Claims, PortMapping, Proto};
use netd::state::{file_key, StateDir};
use serde::Deserialize;

use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, NetConf};

/// The portmap plugin.
pub struct Portmap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    host_port: i64,
    container_port: i64,
    #[serde(default)]
    protocol: String,
    #[serde(default, rename = "hostIP")]
    host_ip: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RuntimeConfig {
    #[serde(default)]
    port_mappings: Vec<Wire>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortmapConf {
    #[serde(default)]
    runtime_config: RuntimeConfig,
    snat: Option<bool>,
    #[serde(default)]
    conditions_v4: Vec<String>,
    #[serde(default)]
    conditions_v6: Vec<String>,
    mark_masq_bit: Option<u8>,
    state_dir: Option<String>,
    #[serde(default)]
    firewall_backend: String,
}

struct Ctx {
    conf: PortmapConf,
    mappings: Vec<PortMapping>,
    run_dir: PathBuf,
    state: StateDir,
}

fn invalid(msg: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: PortmapConf = conf.plugin()?;
    if c.mark_masq_bit.is_some_and(|b| b > 31) {
        return Err(invalid("portmap: markMasqBit must be 0-31".into()));
    }
    let mut mappings = Vec::new();
    for w in &c.runtime_config.port_mappings {
        let ip = match w.host_ip.as_str() {
            "" => None,
            s => Some(
                s.parse::<IpAddr>()
                    .map_err(|_| invalid(format!("portmap: invalid hostIP {s:?}")))?,
            ),
        };
        let proto: Proto = w.protocol.parse()?;
        mappings.push(PortMapping::new(ip, w.host_port, w.container_port, proto)?);
    }
    let run_dir = PathBuf::from(c.state_dir.clone().unwrap_or_else(|| "/run/berth".into()));
    let state = StateDir::open(run_dir.join("cni-portmap"))?;
    Ok(Ctx {
        conf: c,
        mappings,
        run_dir,
        state,
    })
}

fn owner(conf: &NetConf, args_id: &str, ifname: &str) -> String {
    file_key(&[&conf.name, args_id, ifname])
}

impl Ctx {
    fn fw(&self) -> Result<Box<dyn Firewall>, CniError> {
        Ok(firewall::select(
            &self.conf.firewall_backend,
            &self.run_dir,
            self.conf
                .mark_masq_bit
                .unwrap_or(firewall::DEFAULT_MARK_BIT),
        )?)
    }

    fn claims(&self) -> Result<Claims, CniError> {
        Ok(Claims::open(self.run_dir.join("ports"))?)
    }

    fn rules(&self, conf: &NetConf, args: &Args, prev: &CniResult) -> PortRules {
        PortRules {
            network: conf.name.clone(),
            container_id: args.container_id.clone(),
            ifname: args.ifname.clone(),
            addrs: prev.container_ips(),
            mappings: self.mappings.clone(),
            snat: self.conf.snat.unwrap_or(true),
            conditions_v4: self.conf.conditions_v4.clone(),
            conditions_v6: self.conf.conditions_v6.clone(),
        }
    }

    /// Removes one attachment's rules and claims, then its record.
    fn teardown(&self, key: &str, rules: &PortRules) -> Result<(), CniError> {
        self.fw()?.remove_ports(rules)?;
        self.claims()?.release(key, &rules.mappings)?;
        self.state.remove(key)?;
        Ok(())
    }
}

impl Plugin for Portmap {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let prev = conf.prev_result.clone().ok_or_else(|| {
            invalid("portmap: must be called as a chained plugin (no prevResult)".into())
        })?;
        if c.mappings.is_empty() {
            return Ok(prev);
        }
        let rules = c.rules(conf, args, &prev);
        if rules.addrs.is_empty() {
            return Err(invalid(
                "portmap: prevResult has no container address".into(),
            ));
        }
        let key = owner(conf, &args.container_id, &args.ifname);
        // A repeated ADD (after a crash) first removes what the previous one installed.
        if let Some(old) = c.state.load::<PortRules>(&key) {
            c.teardown(&key, &old)?;
        }
        let claims = c.claims()?;
        claims.claim(&key, &rules.mappings, true)?;
        let res = (|| {
            for i in prev.interfaces.iter().filter(|i| i.sandbox.is_empty()) {
                enable_route_localnet(&i.name)?;
            }
            c.state.save(&key, &rules)?;
            c.fw()?.add_ports(&rules)?;
            Ok::<_, CniError>(())
        })();
        if let Err(e) = res {
            let _ = c.teardown(&key, &rules);
            return Err(e);
        }
        Ok(prev)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let key = owner(conf, &args.container_id, &args.ifname);
        let rules = match c.state.load::<PortRules>(&key) {
            Some(r) => r,
            None => match &conf.prev_result {
                Some(prev) if !c.mappings.is_empty() => c.rules(conf, args, prev),
                _ => return Ok(()),
            },
        };
        c.teardown(&key, &rules)
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        if c.mappings.is_empty() {
            return Ok(());
        }
        let key = owner(conf, &args.container_id, &args.ifname);
        let rules = c.state.load::<PortRules>(&key).ok_or_else(|| {
            CniError::new(
                code::UNKNOWN_CONTAINER,
                format!(
                    "portmap: no port mappings recorded for container {}",
                    args.container_id
                ),
            )
        })?;
        c.fw()?.check_ports(&rules)?;
        Ok(())
    }

    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let valid: Vec<String> = conf
            .valid_attachments
            .iter()
            .flatten()
            .map(|a| owner(conf, &a.container_id, &a.ifname))
            .collect();
        let prefix = format!("{}~", file_key(&[&conf.name]));
        for k in c
            .state
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(&prefix) && !valid.contains(k))
        {
            match c.state.load::<PortRules>(&k) {
                Some(rules) => c.teardown(&k, &rules)?,
                None => c.state.remove(&k)?,
            }
        }
        Ok(())
    }
}
