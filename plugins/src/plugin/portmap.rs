//! portmap: publishes container ports on the host (DNAT, hairpin and localhost masquerade)
//! from `runtimeConfig.portMappings`, chained after an interface plugin.

use std::net::IpAddr;
use std::path::PathBuf;

use netd::firewall::{self, PortRules};
use netd::portmap::{publish, Claims, PortMapping, Proto, Publisher};
use netd::records::Record;
use netd::state::StateDir;
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

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: PortmapConf = conf.plugin()?;
    if c.mark_masq_bit.is_some_and(|b| b > 31) {
        return Err(CniError::invalid("portmap: markMasqBit must be 0-31"));
    }
    for cond in c.conditions_v4.iter().chain(&c.conditions_v6) {
        netd::name::firewall_arg(cond).map_err(|e| CniError::invalid(format!("portmap: {e}")))?;
    }
    let mut mappings = Vec::new();
    for w in &c.runtime_config.port_mappings {
        let ip = match w.host_ip.as_str() {
            "" => None,
            s => Some(s.parse::<IpAddr>().map_err(|_| CniError::invalid(format!("portmap: invalid hostIP {s:?}")))?),
        };
        let proto: Proto = w.protocol.parse()?;
        mappings.push(PortMapping::new(ip, w.host_port, w.container_port, proto)?);
    }
    let run_dir = PathBuf::from(c.state_dir.clone().unwrap_or_else(|| "/run/berth".into()));
    let state = Record::CniPortmap.open(&run_dir)?;
    Ok(Ctx { conf: c, mappings, run_dir, state })
}

impl Ctx {
    fn publisher(&self) -> Result<Publisher, CniError> {
        // conditionsV4/V6 are iptables arguments: they decide `auto`.
        let conditions = !self.conf.conditions_v4.is_empty() || !self.conf.conditions_v6.is_empty();
        let kind = match self.conf.firewall_backend.as_str() {
            "" | "auto" if conditions => "iptables",
            k => k,
        };
        let fw = firewall::select(kind, &self.run_dir, self.conf.mark_masq_bit.unwrap_or(firewall::DEFAULT_MARK_BIT))?;
        Ok(Publisher { state: self.state.clone(), claims: Claims::open(Record::PortClaims.path(&self.run_dir))?, fw })
    }

    /// The attachment's rules; `host_if` is the listed host interface that routes to
    /// the container (looked up only where hairpin rules need it; a failed lookup costs
    /// hairpin connections only, and must not fail a DEL).
    fn rules(&self, conf: &NetConf, args: &Args, prev: &CniResult) -> PortRules {
        let addrs = prev.container_ips();
        let snat = self.conf.snat.unwrap_or(true);
        let host_if = match addrs.first() {
            Some(a) if snat && !self.mappings.is_empty() => publish::routed_host_if(a.ip(), &host_ifaces(prev)).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "portmap: no host interface found for hairpin connections");
                None
            }),
            _ => None,
        };
        PortRules {
            network: conf.name.clone(),
            container_id: args.container_id.clone(),
            ifname: args.ifname.clone(),
            addrs,
            mappings: self.mappings.clone(),
            snat,
            host_if,
            conditions_v4: self.conf.conditions_v4.clone(),
            conditions_v6: self.conf.conditions_v6.clone(),
            backend: Default::default(),
            mark_bit: self.conf.mark_masq_bit.unwrap_or(firewall::DEFAULT_MARK_BIT),
        }
    }
}

/// The interfaces of a result that are on the host (no sandbox).
fn host_ifaces(prev: &CniResult) -> Vec<String> {
    prev.interfaces.iter().filter(|i| i.sandbox.is_empty()).map(|i| i.name.clone()).collect()
}

impl Plugin for Portmap {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let prev =
            conf.prev_result.clone().ok_or_else(|| CniError::invalid("portmap: must be called as a chained plugin (no prevResult)"))?;
        if c.mappings.is_empty() {
            return Ok(prev);
        }
        let rules = c.rules(conf, args, &prev);
        if rules.addrs.is_empty() {
            return Err(CniError::invalid("portmap: prevResult has no container address"));
        }
        // route_localnet where 127.0.0.1's DNAT goes out, as the reference sets it.
        c.publisher()?.publish(&rules, rules.host_if.as_slice())?;
        Ok(prev)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let fallback = conf.prev_result.as_ref().map(|prev| c.rules(conf, args, prev));
        c.publisher()?.unpublish(&conf.name, &args.container_id, &args.ifname, fallback.as_ref())?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        if c.mappings.is_empty() {
            return Ok(());
        }
        let p = c.publisher()?;
        let rules = p.record(&conf.name, &args.container_id, &args.ifname).ok_or_else(|| {
            CniError::new(code::UNKNOWN_CONTAINER, format!("portmap: no port mappings recorded for container {}", args.container_id))
        })?;
        p.fw.check_ports(&rules)?;
        Ok(())
    }

    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let valid: Vec<String> =
            conf.valid_attachments.iter().flatten().map(|a| publish::key(&conf.name, &a.container_id, &a.ifname)).collect();
        c.publisher()?.gc(&conf.name, &valid)?;
        Ok(())
    }
}
