//! Restoring berth's firewall rules from its records after something removed them (a
//! firewall reload, `iptables -F`): every recorded network rule set and port publication
//! is checked and re-installed where anything is missing.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;
use crate::firewall::{self, Backend, FilterRules, MasqRules, NetworkRules, PortRules};
use crate::records::{self, Record};

/// What a reconcile pass repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// Network rule sets re-installed.
    pub networks: usize,
    /// Attachments whose port rules were rebuilt.
    pub ports: usize,
    /// `firewall` plugin attachments whose rules were re-installed.
    pub filters: usize,
    /// ptp `ipMasq` attachments whose rules were re-installed.
    pub masqs: usize,
    /// bridge `macspoofchk` checks re-installed.
    pub spoofchks: usize,
}

/// Every recorded rule of one backend (and mark bit).
#[derive(Default)]
struct Recorded {
    networks: Vec<NetworkRules>,
    ports: Vec<PortRules>,
    filters: Vec<FilterRules>,
    masqs: Vec<MasqRules>,
}

/// Every recorded network rule set and publication, grouped by the backend (and mark
/// bit) that installed them.
type ByBackend = BTreeMap<(Backend, u8), Recorded>;

fn records(run_dir: &Path) -> ByBackend {
    let mut networks: BTreeMap<String, NetworkRules> = BTreeMap::new();
    for d in Record::NETWORK_RULES {
        let Ok(dir) = d.open(run_dir) else { continue };
        for k in dir.keys() {
            for n in dir.load::<Vec<NetworkRules>>(&k).unwrap_or_default() {
                networks.insert(format!("{}|{}|{}|{}", n.backend, n.network, n.subnet, n.bridge), n);
            }
        }
    }
    let mut out = ByBackend::new();
    for n in networks.into_values() {
        out.entry((n.backend, firewall::DEFAULT_MARK_BIT)).or_default().networks.push(n);
    }
    for dir in Record::PORT_RULES.iter().filter_map(|d| d.open(run_dir).ok()) {
        for p in dir.keys().into_iter().filter_map(|k| crate::portmap::publish::load(&dir, &k)) {
            out.entry((p.backend, p.mark_bit)).or_default().ports.push(p);
        }
    }
    if let Ok(dir) = Record::CniFirewall.open(run_dir) {
        for f in dir.keys().into_iter().filter_map(|k| dir.load::<FilterRules>(&k)) {
            out.entry((f.backend, firewall::DEFAULT_MARK_BIT)).or_default().filters.push(f);
        }
    }
    if let Ok(dir) = Record::CniMasq.open(run_dir) {
        for m in dir.keys().into_iter().filter_map(|k| dir.load::<MasqRules>(&k)) {
            out.entry((m.backend, firewall::DEFAULT_MARK_BIT)).or_default().masqs.push(m);
        }
    }
    out
}

/// Checks every record under `run_dir` against the firewall of the backend that made it
/// and re-installs what is missing; removes everything of a backend no record uses any
/// more (after a switch from iptables to nftables, or back). Records are not changed.
pub fn reconcile(run_dir: &Path) -> Result<Repaired> {
    let _quiet = records::quiet(run_dir)?;
    let mut done = Repaired::default();
    let groups = records(run_dir);
    for ((backend, mark_bit), Recorded { networks, ports, filters, masqs }) in &groups {
        let fw = firewall::open(*backend, run_dir, *mark_bit);
        // The base rules first: the 127.0.0.0/8 drop comes back even if every check
        // below passes (a raw-table flush leaves the nat and filter rules alone).
        fw.ensure_base()?;
        for n in networks {
            done.networks += usize::from(fw.repair_network(n)?);
        }
        // Every publication in one batch (per family for iptables): the result is
        // exactly the records, at a cost that does not grow with a probe per rule.
        if !ports.is_empty() {
            fw.rebuild_ports(ports)?;
            done.ports += ports.len();
        }
        // The firewall plugin's attachments: re-installed where anything is missing
        // (removed first, so a partial set is not doubled).
        for f in filters {
            if fw.check_filter(f).is_err() {
                fw.remove_filter(f, false)?;
                fw.add_filter(f)?;
                done.filters += 1;
            }
        }
        for m in masqs {
            if fw.check_masq(m).is_err() {
                fw.remove_masq(m)?;
                fw.add_masq(m)?;
                done.masqs += 1;
            }
        }
    }
    done.spoofchks = crate::network::spoofchk::repair(run_dir)?;
    for backend in [Backend::Iptables, Backend::Nftables] {
        if !groups.keys().any(|(b, _)| *b == backend) && (backend != Backend::Nftables || firewall::Nftables::available()) {
            firewall::open(backend, run_dir, firewall::DEFAULT_MARK_BIT).cleanup()?;
        }
    }
    Ok(done)
}

/// Puts back what the records say each attachment wired on the host and someone removed
/// (`ip link del` of a bridge, `ip addr flush`, a link set down, a veth released from its
/// bridge): the bridge with its gateway addresses, up; each recorded host veth as its
/// port; forwarding on. One link dump; nothing is changed where all is in place. Returns
/// how many bridges and ports were repaired.
pub fn links(run_dir: &Path) -> Result<usize> {
    use crate::network::{bridge, wire};
    let records = wire::wired(run_dir);
    if records.is_empty() {
        return Ok(0);
    }
    let mut sock = crate::netlink::Socket::open()?;
    let by_name: BTreeMap<String, crate::netlink::Link> = sock.links()?.into_iter().map(|l| (l.name.clone(), l)).collect();
    let mut repaired = 0;
    let mut bridges: BTreeMap<&str, &wire::Wired> = BTreeMap::new();
    for w in &records {
        bridges.entry(w.spec.name.as_str()).or_insert(w);
    }
    let mut v4 = false;
    for (name, w) in bridges {
        let present = by_name.get(name);
        let br = match present {
            Some(l) if l.up => l.clone(),
            _ => {
                repaired += 1;
                bridge::ensure_bridge(&mut sock, &w.spec)?
            }
        };
        if w.spec.is_gateway {
            let have = sock.addresses(br.index)?;
            if w.gateways.iter().any(|g| !have.iter().any(|a| a.ip() == g.ip())) {
                repaired += 1;
                bridge::ensure_gateways(&mut sock, &br, &w.gateways, false)?;
            }
            v4 |= w.gateways.iter().any(|g| g.is_ipv4());
        }
        for port in records.iter().filter(|r| r.spec.name == name) {
            let Some(l) = by_name.get(&port.host).filter(|l| l.kind.as_deref() == Some("veth")) else { continue };
            if l.master != Some(br.index) {
                sock.set_master(l.index, br.index)?;
                if port.spec.hairpin || port.spec.isolated {
                    sock.set_bridge_port(l.index, port.spec.hairpin, port.spec.isolated)?;
                }
                sock.set_up(l.index)?;
                repaired += 1;
            }
        }
    }
    // Forwarding: the host-wide switch every attachment relies on.
    bridge::enable_forwarding(v4, false)?;
    Ok(repaired)
}

/// Puts back `route_localnet` on every interface whose reference records say a
/// 127.0.0.1 mapping needs it, and forwarding where attachments exist: sysctls have no
/// change events, so the watcher reads these few files every tick.
pub fn sysctls(run_dir: &Path) -> Result<usize> {
    let mut fixed = 0;
    for e in std::fs::read_dir(Record::RouteLocalnet.path(run_dir)).into_iter().flatten().flatten() {
        let iface = e.file_name().to_string_lossy().to_string();
        if iface.starts_with('.') {
            continue; // the per-key index and the lock
        }
        let held = std::fs::read_dir(e.path()).map(|mut d| d.next().is_some()).unwrap_or(false);
        let key = format!("/proc/sys/net/ipv4/conf/{iface}/route_localnet");
        if held && crate::name::Name::interface(&iface).is_ok() && std::fs::read_to_string(&key).is_ok_and(|v| v.trim() != "1") {
            crate::network::bridge::enable_route_localnet(&iface)?;
            fixed += 1;
        }
    }
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1");
    if !forwarding && !crate::network::wire::wired(run_dir).is_empty() {
        crate::network::bridge::enable_forwarding(true, false)?;
        fixed += 1;
    }
    Ok(fixed)
}

/// Whether berth has records of anything installed under `run_dir`.
fn has_records(run_dir: &Path) -> bool {
    records::any_firewall(run_dir)
}

/// Keeps the firewall and sysctls true to the records: every `tick` it reads the sysctls
/// berth relies on and the nf_tables
/// generation (one netlink round trip); when it moved, it probes the base jumps and, if a
/// flush or reload removed them, re-installs everything the records say. Where the
/// generation cannot be read (iptables-legacy), it probes every tick. Runs until `stop`
/// returns true; returns how many repairs it made.
pub fn watch(run_dir: &Path, tick: std::time::Duration, stop: &dyn Fn() -> bool) -> usize {
    let mut seen: Option<u32> = None;
    let mut repairs = 0;
    while !stop() {
        match sysctls(run_dir) {
            Ok(0) => {}
            Ok(n) => tracing::info!(sysctls = n, "sysctls restored"),
            Err(e) => tracing::warn!(error = %e, "restoring sysctls failed"),
        }
        let gen = firewall::generation::current().ok();
        if gen.is_none() || gen != seen {
            if has_records(run_dir) {
                let broken = records(run_dir).keys().any(|(b, m)| matches!(firewall::open(*b, run_dir, *m).base_intact(), Ok(false)));
                if broken {
                    match reconcile(run_dir) {
                        Ok(r) => {
                            repairs += 1;
                            tracing::info!(networks = r.networks, ports = r.ports, filters = r.filters, "firewall rules restored");
                        }
                        Err(e) => tracing::warn!(error = %e, "restoring firewall rules failed"),
                    }
                }
            }
            // The generation read before the probe: a change during the probe, or our
            // own repair, moves it again and is probed next tick.
            seen = gen;
        }
        std::thread::sleep(tick);
    }
    repairs
}
