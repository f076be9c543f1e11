//! The ptp plugin over the engine's [`netd::network::ptp`]: keys `ipMasq`,
//! `ipMasqBackend` (iptables|nftables; berth's default otherwise), `mtu`, `dns`, and a
//! required `ipam`. The result lists the host veth, then the container's (addresses on
//! interface 1); `dns` from the config when set, else the IPAM plugin's. The masquerade
//! is recorded per attachment, so DEL removes it even when the netns is gone.

use std::path::PathBuf;

use netd::firewall::masq::{self, Masqs};
use netd::firewall::MasqRules;
use netd::network::ptp;
use serde::Deserialize;

use super::one_link::{iface_config, ipam, netns};
use crate::exec::delegate;
use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Dns, Interface, IpConfig, NetConf};

/// The ptp plugin.
pub struct Ptp;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PtpConf {
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    ip_masq_backend: String,
    mtu: Option<u32>,
    #[serde(default)]
    dns: Dns,
    #[serde(default)]
    ipam: serde_json::Value,
    #[serde(default)]
    state_dir: Option<String>,
}

struct Ctx {
    conf: PtpConf,
    ipam_type: String,
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let c: PtpConf = conf.plugin()?;
    if !matches!(c.ip_masq_backend.as_str(), "" | "iptables" | "nftables") {
        return Err(CniError::invalid(format!("ptp: unknown ipMasqBackend {:?} (iptables, nftables)", c.ip_masq_backend)));
    }
    if let Some(mtu) = c.mtu.filter(|m| *m != 0 && !(68..=65535).contains(m)) {
        return Err(CniError::invalid(format!("ptp: mtu {mtu}: from 68 to 65535")));
    }
    let ipam_type = super::one_link::ipam_type(&c.ipam).ok_or_else(|| CniError::invalid("ptp: \"ipam\" with a \"type\" is required"))?;
    Ok(Ctx { conf: c, ipam_type })
}

fn masqs(c: &PtpConf) -> Result<Masqs, CniError> {
    let run_dir = PathBuf::from(c.state_dir.clone().unwrap_or_else(|| "/run/berth".into()));
    Ok(Masqs::open(&run_dir, &c.ip_masq_backend)?)
}

fn masq_rules(conf: &NetConf, args: &Args, ips: &[IpConfig]) -> MasqRules {
    MasqRules {
        network: conf.name.clone(),
        container_id: args.container_id.clone(),
        ifname: args.ifname.clone(),
        addrs: ips.iter().map(|i| i.address).collect(),
        backend: Default::default(),
    }
}

impl Plugin for Ptp {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        let ns = netns(args)?;
        let r = ipam(Some(&c.ipam_type), "ADD", args)?.ok_or_else(|| CniError::new(code::INTERNAL, "IPAM returned no result"))?;
        let undo_ipam = || {
            let _ = delegate(&c.ipam_type, "DEL", args);
        };
        let Some(gateways) = r.ips.iter().map(|i| i.gateway).collect::<Option<Vec<_>>>() else {
            undo_ipam();
            return Err(CniError::invalid("ptp: the IPAM result has an address without a gateway: ptp routes everything through it"));
        };
        let attached = match ptp::attach(&ns, &args.ifname, c.conf.mtu.filter(|m| *m > 0), &iface_config(&r), &gateways) {
            Ok(a) => a,
            Err(e) => {
                undo_ipam();
                return Err(e.into());
            }
        };
        if c.conf.ip_masq {
            if let Err(e) = masqs(&c.conf).and_then(|m| Ok(m.add(&masq_rules(conf, args, &r.ips))?)) {
                let _ = netd::network::bridge::detach(Some(ns.path()), &args.ifname);
                undo_ipam();
                return Err(e);
            }
        }
        let with_mtu = crate::types::version::at_least(&conf.cni_version, "1.1.0");
        let iface = |l: &netd::netlink::Link, sandbox: String| Interface {
            name: l.name.clone(),
            mac: l.mac.clone(),
            mtu: with_mtu.then_some(l.mtu),
            sandbox,
        };
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            interfaces: vec![iface(&attached.host, String::new()), iface(&attached.container, ns.path().display().to_string())],
            ips: r.ips.iter().map(|i| IpConfig { interface: Some(1), ..i.clone() }).collect(),
            routes: r.routes.clone(),
            dns: if c.conf.dns == Dns::default() { r.dns.clone() } else { c.conf.dns.clone() },
        })
    }

    /// The address is released, the masquerade removed, the pair deleted; a netns or
    /// link already gone is fine.
    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        ipam(Some(&c.ipam_type), "DEL", args)?;
        masqs(&c.conf)?.del(&conf.name, &args.container_id, &args.ifname)?;
        netd::network::bridge::detach(args.netns.as_deref(), &args.ifname)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| CniError::invalid("ptp: CHECK requires prevResult"))?;
        super::one_link::check("ptp", "veth", args, Some(&c.ipam_type), Some(prev))?;
        if c.conf.ip_masq {
            let m = masqs(&c.conf)?;
            let rec = m.record(&conf.name, &args.container_id, &args.ifname).unwrap_or_else(|| masq_rules(conf, args, &prev.ips));
            m.check(&rec)?;
        }
        Ok(())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let valid: Vec<String> =
            conf.valid_attachments.iter().flatten().map(|a| masq::key(&conf.name, &a.container_id, &a.ifname)).collect();
        masqs(&c.conf)?.gc(&conf.name, &valid)?;
        ipam(Some(&c.ipam_type), "GC", args)?;
        Ok(())
    }

    fn status(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        ipam(Some(&ctx(conf)?.ipam_type), "STATUS", args)?;
        Ok(())
    }
}
