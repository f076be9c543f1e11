//! Publishing an attachment's ports: claim the host ports, let `route_localnet` route
//! 127.0.0.1 DNAT, install the firewall rules, record what was installed. One code path
//! for the CNI `portmap` plugin and the runtime.

use crate::error::Result;
use crate::firewall::{Firewall, PortRules};
use crate::network::bridge::{disable_route_localnet, enable_route_localnet};
use crate::state::{file_key, StateDir};

use super::{Claims, PortMapping};

/// Where published ports are recorded and claimed.
pub struct Publisher {
    /// Records of installed rules, one per attachment.
    pub state: StateDir,
    /// Host-port claims.
    pub claims: Claims,
    /// The firewall backend.
    pub fw: Box<dyn Firewall>,
}

/// The record key of an attachment.
pub fn key(network: &str, container_id: &str, ifname: &str) -> String {
    file_key(&[network, container_id, ifname])
}

/// Which of `host_ifaces` (an attachment's host-side interfaces) routes to `addr`, as
/// the reference portmap picks the interface for `route_localnet`: the one hairpin
/// traffic comes in and goes out by. A route out of any other interface (the host's
/// uplink, for an address on no bridge) is none of the attachment's.
pub fn routed_host_if(addr: std::net::IpAddr, host_ifaces: &[String]) -> Result<Option<String>> {
    Ok(routed_if(addr)?.filter(|name| host_ifaces.contains(name)))
}

/// The interface the host routes `addr` out of (`ip route get`), if any.
fn routed_if(addr: std::net::IpAddr) -> Result<Option<String>> {
    let Some(index) = crate::netlink::Socket::open()?.route_oif(addr)? else { return Ok(None) };
    Ok(nix::net::if_::if_indextoname(index).ok().map(|n| n.to_string_lossy().into_owned()))
}

/// A record as this version uses it: one written before `host_if` gets the interface
/// the host routes the container's address out of now, so a rebuild installs its
/// hairpin element and a DEL removes it (the record itself is not rewritten).
fn upgraded(mut rules: PortRules) -> PortRules {
    if rules.host_if.as_deref() == Some(crate::firewall::LEGACY_HOST_IF) {
        let routed = || rules.addrs.first().and_then(|a| routed_if(a.ip()).ok().flatten());
        rules.host_if = if rules.snat { routed() } else { None };
    }
    rules
}

/// The port record `k` of `dir` as this version uses it: a record written before
/// `host_if` gets the interface its address is routed out of now. How every reader of
/// port records (publish, unpublish, GC, CHECK, reconcile's rebuild) loads one.
pub fn load(dir: &StateDir, k: &str) -> Option<PortRules> {
    dir.load::<PortRules>(k).map(upgraded)
}

/// Drops stale UDP conntrack entries of these host ports; failure only costs a warning.
fn flush(maps: &[crate::portmap::PortMapping]) {
    match super::conntrack::flush_udp(maps) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(entries = n, "flushed stale UDP conntrack entries"),
        Err(e) => tracing::warn!(error = %e, "could not flush UDP conntrack entries"),
    }
}

impl Publisher {
    /// Publishes `rules` (all or nothing). `host_ifaces` get `route_localnet` so mappings
    /// answer on 127.0.0.1. A previous record for the same attachment is torn down first.
    pub fn publish(&self, rules: &PortRules, host_ifaces: &[String]) -> Result<()> {
        let _changing = self.changing()?;
        let k = key(&rules.network, &rules.container_id, &rules.ifname);
        if let Some(old) = self.load(&k) {
            self.unpublish_record(&k, &old)?;
        }
        if rules.mappings.iter().any(PortMapping::is_ephemeral) {
            return Err(crate::Error::Internal("port mappings must be claimed (ephemeral ports picked) before publishing"));
        }
        let rules = &PortRules { backend: self.fw.backend(), mark_bit: self.fw.mark_bit(), ..rules.clone() };
        self.claims.claim(&k, &rules.mappings, true)?;
        crate::fault::point("publish-claimed");
        let res = (|| {
            self.localnet(&k, host_ifaces)?;
            // Recorded before the rules go in: a kill in between still lets DEL find them.
            self.state.save(&k, rules)?;
            crate::fault::point("publish-recorded");
            self.fw.add_ports(rules)
        })();
        if let Err(e) = res {
            let _ = self.unpublish_record(&k, rules);
            return Err(e);
        }
        flush(&rules.mappings);
        Ok(())
    }

    /// Removes what was published for the attachment. Without a record (state lost, or
    /// an ADD killed before it wrote one) `fallback` rules are removed if given, else the
    /// claims the attachment holds are released. Nothing published is success.
    pub fn unpublish(&self, network: &str, container_id: &str, ifname: &str, fallback: Option<&PortRules>) -> Result<()> {
        let k = key(network, container_id, ifname);
        match self.load(&k) {
            Some(r) => self.unpublish_record(&k, &r),
            None => match fallback {
                // What this backend would have installed.
                Some(r) if !r.mappings.is_empty() => {
                    self.unpublish_record(&k, &PortRules { backend: self.fw.backend(), mark_bit: self.fw.mark_bit(), ..r.clone() })
                }
                // No record: an ADD killed between claiming and recording. Its claims
                // are found by owner (the mappings asked for may not say which ports
                // an ephemeral request got).
                _ => self.claims.release_owner(&k),
            },
        }
    }

    fn unpublish_record(&self, k: &str, rules: &PortRules) -> Result<()> {
        let _changing = self.changing()?;
        crate::firewall::as_recorded(self.fw.as_ref(), rules.backend, rules.mark_bit, self.run_dir(), |fw| fw.remove_ports(rules))?;
        crate::fault::point("unpublish-removed");
        flush(&rules.mappings);
        self.claims.release(k, &rules.mappings)?;
        self.localnet(k, &[])?;
        self.state.remove(k)
    }

    /// The run directory the claims live in.
    fn run_dir(&self) -> &std::path::Path {
        let dir = self.claims.dir();
        dir.parent().unwrap_or(dir)
    }

    /// Reconcile's lock (shared), in the run directory.
    fn changing(&self) -> Result<std::fs::File> {
        crate::records::changing(self.run_dir())
    }

    /// Makes attachment `key` the holder of `route_localnet` on `ifaces` (none: it holds
    /// nothing any more). The sysctl is on while any attachment holds it on that interface
    /// and off again after the last, so a bridge without 127.0.0.1 mappings does not
    /// route loopback addresses. References are files `route-localnet/<iface>/<key>`, and
    /// `route-localnet/.keys/<key>` lists the interfaces a key holds, so a change costs
    /// the same with one attachment or a thousand (no scan of every interface's directory).
    fn localnet(&self, key: &str, ifaces: &[String]) -> Result<()> {
        let dir = crate::records::Record::RouteLocalnet.path(self.run_dir());
        let _l = crate::state::lock_file(&dir.join(".lock"))?;
        let index = dir.join(KEYS);
        if !index.is_dir() {
            index_localnet(&dir, &index)?;
        }
        let held: Vec<String> = std::fs::read_to_string(index.join(key)).unwrap_or_default().lines().map(str::to_string).collect();
        // The index lists at least what the key holds at every moment (a kill anywhere
        // leaves no reference it does not list): the union first, the final set last.
        let mut union = held.clone();
        union.extend(ifaces.iter().filter(|i| !held.contains(i)).cloned());
        if union != held {
            crate::state::write_atomic(&index.join(key), union.join("\n").as_bytes())?;
        }
        for i in held.iter().filter(|i| !ifaces.contains(i)) {
            let d = dir.join(i);
            let _ = std::fs::remove_file(d.join(key));
            // rmdir succeeds only when no other attachment holds the interface.
            if std::fs::remove_dir(&d).is_ok() {
                match disable_route_localnet(i) {
                    Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                    r => r?,
                }
            }
        }
        for i in ifaces {
            crate::name::Name::interface(i)?;
            // The interface's directory is made by its first holder.
            let reference = dir.join(i).join(key);
            crate::state::in_private_dir(&reference, || std::fs::write(&reference, b""))
                .map_err(|e| crate::Error::io("create", &reference, e))?;
            enable_route_localnet(i)?;
        }
        if ifaces.is_empty() {
            match std::fs::remove_file(index.join(key)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(crate::Error::io("remove", index.join(key), e)),
                _ => {}
            }
        } else if union != ifaces {
            crate::state::write_atomic(&index.join(key), ifaces.join("\n").as_bytes())?;
        }
        Ok(())
    }

    /// The record of an attachment, if it published anything.
    pub fn record(&self, network: &str, container_id: &str, ifname: &str) -> Option<PortRules> {
        self.load(&key(network, container_id, ifname))
    }

    /// The record of attachment `k` as this version uses it.
    fn load(&self, k: &str) -> Option<PortRules> {
        load(&self.state, k)
    }

    /// Unpublishes every attachment of `network` whose key is not in `valid`, and drops
    /// claims whose owner is not valid (left by an ADD killed before its record).
    pub fn gc(&self, network: &str, valid: &[String]) -> Result<()> {
        let prefix = format!("{}~", file_key(&[network]));
        self.claims.gc(&prefix, valid)?;
        for k in self.state.keys().into_iter().filter(|k| k.starts_with(&prefix) && !valid.contains(k)) {
            match self.load(&k) {
                Some(r) => self.unpublish_record(&k, &r)?,
                None => self.state.remove(&k)?,
            }
        }
        Ok(())
    }
}

/// The directory of `route-localnet/` that lists, per attachment key, the interfaces it
/// holds.
const KEYS: &str = ".keys";

/// Builds the per-key index from the per-interface references (state of a version
/// before the index), once.
fn index_localnet(dir: &std::path::Path, index: &std::path::Path) -> Result<()> {
    let mut by_key: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let iface = e.file_name().to_string_lossy().to_string();
        if iface.starts_with('.') || !e.path().is_dir() {
            continue;
        }
        for k in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            by_key.entry(k.file_name().to_string_lossy().to_string()).or_default().push(iface.clone());
        }
    }
    let tmp = dir.join(".keys.new");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| crate::Error::io("create", &tmp, e))?;
    for (k, ifaces) in by_key {
        std::fs::write(tmp.join(&k), ifaces.join("\n")).map_err(|e| crate::Error::io("create", tmp.join(&k), e))?;
    }
    // Whole or not at all: a kill before the rename leaves no index, and the next call
    // builds it again.
    std::fs::rename(&tmp, index).map_err(|e| crate::Error::io("rename", index, e))
}
