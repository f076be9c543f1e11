//! bridge: a veth from the container into a Linux bridge, addresses from the IPAM
//! plugin named in `ipam.type` (run by exec through CNI_PATH), the network's forward and masquerade rules.

use std::path::PathBuf;

use ipnetwork::IpNetwork;
use netd::firewall::{self, Firewall, NetworkRules};
use netd::netlink::Socket;
use netd::netns::NetNs;
use netd::network::bridge::{self, BridgeSpec, IfaceConfig};
use netd::network::wire::{self, Wiring};
use netd::network::{shared, spoofchk};
use netd::state::{file_key, StateDir};
use serde::Deserialize;

use crate::exec::delegate;
use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Dns, Interface, IpConfig, NetConf, RouteConfig};

/// The bridge plugin.
pub struct Bridge;

fn default_bridge() -> String {
    "cni0".into()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BridgeConf {
    #[serde(default = "default_bridge")]
    bridge: String,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    is_default_gateway: bool,
    #[serde(default)]
    force_address: bool,
    #[serde(default)]
    ip_masq: bool,
    /// berth's: destinations `ipMasq` spares (a multi-node cluster's pod CIDR).
    #[serde(default)]
    ip_masq_exclude: Vec<IpNetwork>,
    mtu: Option<u32>,
    #[serde(default)]
    hairpin_mode: bool,
    #[serde(default)]
    promisc_mode: bool,
    /// Isolate the container's bridge port from the other isolated ports.
    #[serde(default)]
    port_isolation: bool,
    /// IPv6 duplicate address detection on the container's interface (off by default,
    /// as the reference).
    #[serde(default)]
    enabledad: bool,
    /// Leave the container's interface down (layer 2 only: no IPAM).
    #[serde(default)]
    disable_container_interface: bool,
    #[serde(default)]
    vlan: u32,
    /// Tagged VLANs of the port: `{"id": N}` or `{"minID": A, "maxID": B}`.
    #[serde(default)]
    vlan_trunk: Vec<Trunk>,
    /// Keep VLAN 1 on the port when VLANs are set (default true, as the reference).
    #[serde(default = "yes")]
    preserve_default_vlan: bool,
    #[serde(default)]
    macspoofchk: bool,
    #[serde(default)]
    ipam: serde_json::Value,
    #[serde(default)]
    dns: Dns,
    state_dir: Option<String>,
    #[serde(default)]
    firewall_backend: String,
    /// Docker's gateway mode: "nat" (default: traffic routed directly to the subnet from
    /// other interfaces is dropped) or "nat-unprotected".
    #[serde(default)]
    gateway_mode: String,
    /// berth's `internal`: nothing between the bridge and other interfaces.
    #[serde(default)]
    internal: bool,
}

/// One `vlanTrunk` entry.
#[derive(Debug, Deserialize)]
struct Trunk {
    id: Option<u32>,
    #[serde(rename = "minID")]
    min_id: Option<u32>,
    #[serde(rename = "maxID")]
    max_id: Option<u32>,
}

fn yes() -> bool {
    true
}

/// The trunk as inclusive ranges, checked as the reference checks it.
fn trunk_ranges(trunk: &[Trunk]) -> Result<Vec<(u16, u16)>, CniError> {
    let vid = |v: u32, what: &str| {
        u16::try_from(v).ok().filter(|v| (1..=4094).contains(v)).ok_or_else(|| {
            CniError::new(code::INVALID_CONFIG, format!("bridge: incorrect trunk {what} parameter {v} (must be between 1 and 4094)"))
        })
    };
    let mut out = Vec::new();
    for t in trunk {
        match (t.id, t.min_id, t.max_id) {
            (Some(id), None, None) => {
                let v = vid(id, "id")?;
                out.push((v, v));
            }
            (None, Some(min), Some(max)) => {
                let (a, b) = (vid(min, "minID")?, vid(max, "maxID")?);
                if a > b {
                    return Err(CniError::new(code::INVALID_CONFIG, "bridge: minID is greater than maxID in trunk parameter"));
                }
                out.push((a, b));
            }
            _ => return Err(CniError::new(code::INVALID_CONFIG, "bridge: a trunk entry is {\"id\": N} or {\"minID\": A, \"maxID\": B}")),
        }
    }
    Ok(out)
}

struct Ctx {
    conf: BridgeConf,
    /// `vlanTrunk` checked.
    trunk: Vec<(u16, u16)>,
    ipam_type: String,
    state: StateDir,
    run_dir: PathBuf,
}

fn ctx(conf: &NetConf) -> Result<Ctx, CniError> {
    conf.require_name()?;
    let mut c: BridgeConf = conf.plugin()?;
    netd::name::Name::interface(&c.bridge).map_err(|e| CniError::new(code::INVALID_CONFIG, format!("bridge: {e}")))?;
    if c.vlan > 4094 {
        return Err(CniError::new(code::INVALID_CONFIG, format!("bridge: invalid VLAN ID {} (must be between 0 and 4094)", c.vlan)));
    }
    let trunk = trunk_ranges(&c.vlan_trunk)?;
    if c.vlan != 0 && !trunk.is_empty() {
        return Err(CniError::new(code::INVALID_CONFIG, "bridge: cannot set vlan and vlanTrunk at the same time"));
    }
    if (c.vlan != 0 || !trunk.is_empty()) && (c.is_gateway || c.is_default_gateway) {
        // The reference then puts the gateway on a veth of the bridge in that VLAN.
        return Err(CniError::new(code::UNSUPPORTED_FIELD, "bridge: isGateway with vlan or vlanTrunk is not supported yet"));
    }
    if c.is_default_gateway {
        c.is_gateway = true;
    }
    if !matches!(c.gateway_mode.as_str(), "" | "nat" | "nat-unprotected") {
        return Err(CniError::new(code::INVALID_CONFIG, format!("bridge: gatewayMode {:?}: use nat or nat-unprotected", c.gateway_mode)));
    }
    let ipam_type = crate::types::gojson::get(&c.ipam, "type").and_then(|t| t.as_str()).unwrap_or("").to_string();
    let no_ipam = c.ipam.is_null() || c.ipam.as_object().is_some_and(|o| o.is_empty());
    if ipam_type.is_empty() && !no_ipam {
        return Err(CniError::new(code::INVALID_CONFIG, "bridge: ipam.type is required (or no ipam at all, for a layer-2 attachment)"));
    }
    if c.disable_container_interface && !ipam_type.is_empty() {
        return Err(CniError::new(code::INVALID_CONFIG, "bridge: cannot use IPAM when disableContainerInterface is set"));
    }
    let run_dir = PathBuf::from(c.state_dir.clone().unwrap_or_else(|| "/run/berth".into()));
    // The engine's endpoint registry, shared with the runtime and the daemon.
    let state = shared::registry(&run_dir)?;
    Ok(Ctx { conf: c, ipam_type, state, run_dir, trunk })
}

/// Runs the IPAM plugin; a layer-2 attachment (no `ipam`) has none to run.
fn run_ipam(c: &Ctx, command: &str, args: &Args) -> Result<Option<CniResult>, CniError> {
    if c.ipam_type.is_empty() {
        return Ok(None);
    }
    delegate(&c.ipam_type, command, args)
}

fn key(conf: &NetConf, args: &Args) -> String {
    wire::key(&conf.name, &args.container_id, &args.ifname)
}

fn fw(c: &Ctx) -> Result<Box<dyn Firewall>, CniError> {
    Ok(firewall::select(&c.conf.firewall_backend, &c.run_dir, firewall::DEFAULT_MARK_BIT)?)
}

impl Bridge {
    fn setup(&self, c: &Ctx, args: &Args, conf: &NetConf, ipam: &CniResult) -> Result<CniResult, CniError> {
        let netns_path = args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?;
        let ns = NetNs::open(netns_path)?;
        let spec = BridgeSpec {
            name: c.conf.bridge.clone(),
            mtu: c.conf.mtu,
            is_gateway: c.conf.is_gateway,
            force_address: c.conf.force_address,
            hairpin: c.conf.hairpin_mode,
            promisc: c.conf.promisc_mode,
            isolated: c.conf.port_isolation,
            dad: c.conf.enabledad,
            vlan: c.conf.vlan as u16,
            vlan_trunk: c.trunk.clone(),
            preserve_default_vlan: c.conf.preserve_default_vlan,
            container_down: c.conf.disable_container_interface,
        };
        let addrs: Vec<IpNetwork> = ipam.ips.iter().map(|i| i.address).collect();
        let mut routes: Vec<RouteConfig> = ipam.routes.clone();
        if c.conf.is_default_gateway {
            for ip in &ipam.ips {
                let Some(gw) = ip.gateway else { continue };
                let dst = netd::netlink::Route::default_dst(gw);
                if !routes.iter().any(|r| r.dst == dst) {
                    routes.push(RouteConfig { dst, gw: Some(gw) });
                }
            }
        }
        let iface = IfaceConfig {
            addrs: addrs.clone(),
            routes: routes.iter().map(|r| (r.dst, r.gw.or_else(|| default_gw(ipam, r.dst)))).collect(),
            keep_ipv6: false,
        };
        let w = Wiring {
            network: conf.name.clone(),
            spec,
            gateways: ipam.ips.iter().filter_map(|i| i.gateway.and_then(|g| IpNetwork::new(g, i.address.prefix()).ok())).collect(),
            iface,
            rules: network_rules(c, conf, &addrs),
        };
        let fwl = fw(c)?;
        let att = wire::wire(&c.state, fwl.as_ref(), &args.container_id, &ns, &args.ifname, &w)?;
        if c.conf.macspoofchk {
            let checked = spoofchk::Checked {
                network: conf.name.clone(),
                container_id: args.container_id.clone(),
                ifname: args.ifname.clone(),
                port: att.host.name.clone(),
                mac: att.container.mac.clone(),
            };
            if let Err(e) = spoofchk::apply(&c.run_dir, &checked) {
                let fallback = |a: &[IpNetwork]| network_rules(c, conf, a);
                let hosts = [att.host.name.clone()];
                let _ = wire::unwire(
                    &c.state,
                    fwl.as_ref(),
                    &conf.name,
                    &args.container_id,
                    Some(netns_path.as_ref()),
                    &args.ifname,
                    &c.conf.bridge,
                    &hosts,
                    &fallback,
                );
                return Err(e.into());
            }
        }
        let mtu = |l: &netd::netlink::Link| {
            if crate::types::version::at_least(&conf.cni_version, "1.1.0") && l.mtu > 0 {
                Some(l.mtu)
            } else {
                None
            }
        };
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            interfaces: vec![
                Interface { name: att.bridge.name.clone(), mac: att.bridge.mac.clone(), mtu: mtu(&att.bridge), sandbox: String::new() },
                Interface { name: att.host.name.clone(), mac: att.host.mac.clone(), mtu: mtu(&att.host), sandbox: String::new() },
                Interface {
                    name: att.container.name.clone(),
                    mac: att.container.mac.clone(),
                    mtu: mtu(&att.container),
                    sandbox: netns_path.display().to_string(),
                },
            ],
            ips: ipam.ips.iter().map(|i| IpConfig { interface: Some(2), ..i.clone() }).collect(),
            routes,
            dns: if c.conf.dns == Dns::default() { ipam.dns.clone() } else { c.conf.dns.clone() },
        })
    }
}

/// The network's own rules this config asks for, one set per subnet.
fn network_rules(c: &Ctx, conf: &NetConf, addrs: &[IpNetwork]) -> Vec<NetworkRules> {
    let mut subnets: Vec<IpNetwork> = addrs.iter().filter_map(|a| IpNetwork::new(a.network(), a.prefix()).ok()).collect();
    subnets.dedup();
    subnets
        .into_iter()
        .map(|subnet| NetworkRules {
            network: conf.name.clone(),
            subnet,
            bridge: c.conf.bridge.clone(),
            masquerade: c.conf.ip_masq,
            masq_exclude: c.conf.ip_masq_exclude.clone(),
            protect: c.conf.gateway_mode != "nat-unprotected",
            internal: c.conf.internal,
            backend: Default::default(),
        })
        .collect()
}

/// A route without a gateway goes through the gateway of its family, as the reference does.
fn default_gw(ipam: &CniResult, dst: IpNetwork) -> Option<std::net::IpAddr> {
    ipam.ips.iter().find(|i| i.address.is_ipv4() == dst.is_ipv4()).and_then(|i| i.gateway)
}

impl Plugin for Bridge {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let c = ctx(conf)?;
        if let Some(p) = &args.netns {
            NetNs::open(p)?;
        }
        let ipam = match run_ipam(&c, "ADD", args)? {
            Some(r) if r.ips.is_empty() => {
                let _ = run_ipam(&c, "DEL", args);
                return Err(CniError::new(code::INVALID_CONFIG, "IPAM plugin returned no IP configuration"));
            }
            Some(r) => r,
            None if c.ipam_type.is_empty() => CniResult::default(),
            None => return Err(CniError::new(code::INTERNAL, "IPAM returned no result")),
        };
        match self.setup(&c, args, conf, &ipam) {
            Ok(r) => Ok(r),
            Err(e) => {
                // Undo: the address goes back to the pool, nothing is left behind.
                let _ = run_ipam(&c, "DEL", args);
                Err(e)
            }
        }
    }

    fn del(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        run_ipam(&c, "DEL", args)?;
        // A netns already gone frees its veth later, in a kernel work queue; the host end
        // named in prevResult goes now, so DEL leaves nothing behind when it returns.
        let host_veths: Vec<String> = conf
            .prev_result
            .iter()
            .flat_map(|r| r.interfaces.iter())
            .filter(|i| i.sandbox.is_empty() && i.name != c.conf.bridge)
            .map(|i| i.name.clone())
            .collect();
        // Without a record, the rules to release follow from the addresses it had.
        let fallback = |addrs: &[IpNetwork]| {
            let mut all = addrs.to_vec();
            all.extend(conf.prev_result.iter().flat_map(|r| r.container_ips()));
            network_rules(&c, conf, &all)
        };
        let (netns, ifname) = (args.netns.as_deref(), args.ifname.as_str());
        spoofchk::remove(&c.run_dir, &conf.name, &args.container_id, ifname)?;
        wire::unwire(&c.state, fw(&c)?.as_ref(), &conf.name, &args.container_id, netns, ifname, &c.conf.bridge, &host_veths, &fallback)?;
        Ok(())
    }

    fn check(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        let prev = conf.prev_result.as_ref().ok_or_else(|| CniError::new(code::INVALID_CONFIG, "bridge: CHECK requires prevResult"))?;
        run_ipam(&c, "CHECK", args)?;
        let ns = NetNs::open(args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?)?;
        let bridge::Inspected { link, addrs, .. } = bridge::inspect(&ns, &args.ifname)?.ok_or_else(|| {
            CniError::new(code::INTERNAL, format!("bridge: interface {} not found in {}", args.ifname, ns.path().display()))
        })?;
        if link.up == c.conf.disable_container_interface {
            let (is, want) = if link.up { ("up", "down") } else { ("down", "up") };
            return Err(CniError::new(code::INTERNAL, format!("bridge: interface {} is {is}, not {want}", args.ifname)));
        }
        for want in prev.container_ips() {
            if !addrs.contains(&want) {
                return Err(CniError::new(code::INTERNAL, format!("bridge: interface {} lacks address {want}", args.ifname)));
            }
        }
        let mut sock = Socket::open().map_err(netd::Error::from)?;
        let br = sock.link_by_name(&c.conf.bridge).map_err(netd::Error::from)?;
        if br.is_none_or(|b| b.kind.as_deref() != Some("bridge")) {
            return Err(CniError::new(code::INTERNAL, format!("bridge: bridge {} not found", c.conf.bridge)));
        }
        let fwl = fw(&c)?;
        for m in shared::held(&c.state, &key(conf, args)).unwrap_or_default() {
            fwl.check_network(&m)?;
        }
        if c.conf.macspoofchk {
            spoofchk::check(&c.run_dir, &conf.name, &args.container_id, &args.ifname)?;
        }
        Ok(())
    }

    fn gc(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        run_ipam(&c, "GC", args)?;
        let valid: Vec<String> =
            conf.valid_attachments.iter().flatten().map(|a| file_key(&[&conf.name, &a.container_id, &a.ifname])).collect();
        let fwl = fw(&c)?;
        for k in shared::holders(&c.state, &conf.name).into_iter().filter(|k| !valid.contains(k)) {
            wire::forget(&c.state, fwl.as_ref(), &conf.name, &k)?;
        }
        spoofchk::gc(&c.run_dir, &conf.name, &valid)?;
        Ok(())
    }

    fn status(&self, args: &Args, conf: &NetConf) -> Result<(), CniError> {
        let c = ctx(conf)?;
        run_ipam(&c, "STATUS", args)?;
        Ok(())
    }
}
