//! firewall: lets the attachment's addresses through a restrictive forward policy, after
//! the administrator's chain, and with `ingressPolicy: same-bridge` isolates its bridge
//! from the other isolated bridges; chained after an interface plugin.

use std::path::PathBuf;

use netd::firewall::filter::{self, Filters};
use netd::firewall::FilterRules;
use netd::netlink::Socket;
use serde::Deserialize;

use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, NetConf};

/// The firewall plugin.
pub struct Firewall;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirewallConf {
    #[serde(default)]
    backend: String,
    #[serde(default)]
    iptables_admin_chain_name: String,
    #[serde(default)]
    ingress_policy: String,
    state_dir: Option<String>,
}

struct Ctx {
    filters: Filters,
    admin: String,
    isolate: bool,
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: FirewallConf = conf.plugin()?;
    let kind = match c.backend.as_str() {
        "" | "auto" => "auto",
        k @ ("iptables" | "nftables") => k,
        "firewalld" => {
            return Err(CniError::invalid("firewall: backend firewalld is not supported; use iptables or nftables (or leave it empty)"))
        }
        other => return Err(CniError::invalid(format!("firewall: unknown backend {other:?} (iptables, nftables)"))),
    };
    let admin = match c.iptables_admin_chain_name.as_str() {
        "" => netd::firewall::ADMIN_CHAIN.to_string(),
        n if n.len() <= 28 && n.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') => n.to_string(),
        n => return Err(CniError::invalid(format!("firewall: iptablesAdminChainName {n:?} must be 1-28 letters, digits, '-' or '_'"))),
    };
    let isolate = match c.ingress_policy.as_str() {
        "" | "open" => false,
        "same-bridge" => true,
        other => return Err(CniError::invalid(format!("firewall: unknown ingressPolicy {other:?} (open, same-bridge)"))),
    };
    let run_dir = PathBuf::from(c.state_dir.unwrap_or_else(|| "/run/berth".into()));
    Ok(Ctx { filters: Filters::open(&run_dir, kind)?, admin, isolate })
}

/// The bridge among the result's host interfaces (the first host interface that is one).
fn bridge_of(prev: &CniResult) -> Result<String, CniError> {
    let mut sock = Socket::open().map_err(netd::Error::from)?;
    for i in prev.interfaces.iter().filter(|i| i.sandbox.is_empty()) {
        if sock.link_by_name(&i.name).map_err(netd::Error::from)?.is_some_and(|l| l.kind.as_deref() == Some("bridge")) {
            return Ok(i.name.clone());
        }
    }
    Err(CniError::invalid("firewall: ingressPolicy same-bridge needs a bridge among prevResult's host interfaces"))
}

impl Ctx {
    fn rules(&self, conf: &NetConf, args: &Args, prev: &CniResult, bridge: Option<String>) -> FilterRules {
        FilterRules {
            network: conf.name.clone(),
            container_id: args.container_id.clone(),
            ifname: args.ifname.clone(),
            addrs: prev.container_ips(),
            admin_chain: self.admin.clone(),
            isolate: bridge,
            backend: Default::default(),
        }
    }
}

fn prev_of(conf: &NetConf) -> Result<CniResult, CniError> {
    conf.prev_result.clone().ok_or_else(|| CniError::invalid("firewall: must be called as a chained plugin (no prevResult)"))
}

impl Plugin for Firewall {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let prev = prev_of(conf)?;
        let bridge = if c.isolate { Some(bridge_of(&prev)?) } else { None };
        let rules = c.rules(conf, args, &prev, bridge);
        if rules.addrs.is_empty() {
            return Err(CniError::invalid("firewall: prevResult has no container address"));
        }
        c.filters.add(&rules)?;
        Ok(prev)
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        // Without a record (an ADD killed before it wrote one) the config says what to undo.
        let fallback = conf.prev_result.as_ref().map(|p| c.rules(conf, args, p, None));
        c.filters.del(&conf.name, &args.container_id, &args.ifname, fallback.as_ref())?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        prev_of(conf)?;
        let rules = c.filters.record(&conf.name, &args.container_id, &args.ifname).ok_or_else(|| {
            CniError::new(code::UNKNOWN_CONTAINER, format!("firewall: no rules recorded for container {}", args.container_id))
        })?;
        c.filters.check(&rules)?;
        Ok(())
    }

    fn gc(&self, _args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let valid: Vec<String> =
            conf.valid_attachments.iter().flatten().map(|a| filter::key(&conf.name, &a.container_id, &a.ifname)).collect();
        c.filters.gc(&conf.name, &valid)?;
        Ok(())
    }
}
